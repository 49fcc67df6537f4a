"""specplug-speech's wiring of kangaroo (Whisper): entry point, registration, card and options."""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_speech.kangaroo import KangarooOptions, KangarooProposer


class TestKangarooRegistration(MethodRegistrationConformance):
    distribution = "specplug-speech"
    plugin_module = "specplug_speech.plugin"
    entry_point = "speech"
    method = "kangaroo"
    plugin_methods = ("distil_whisper", "kangaroo")
    options_class = KangarooOptions
    proposer_class = KangarooProposer
    needs = frozenset({Need.target_model})
    bad_options = [({"exit_layer": 0}, "exit_layer"), ({"stop_below": 2}, "stop_below"), ({"drfat": "x"}, "drfat")]
