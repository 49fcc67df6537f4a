"""specplug-speech's wiring: entry point, registration, card and options of distil_whisper."""

from specplug.protocols import Need
from specplug.testing import MethodRegistrationConformance
from specplug_speech.proposer import DistilWhisperOptions, DistilWhisperProposer


class TestDistilWhisperRegistration(MethodRegistrationConformance):
    distribution = "specplug-speech"
    plugin_module = "specplug_speech.plugin"
    entry_point = "speech"
    method = "distil_whisper"
    plugin_methods = ("distil_whisper", "kangaroo")
    options_class = DistilWhisperOptions
    proposer_class = DistilWhisperProposer
    needs = frozenset({Need.target_model})
    bad_options = [({"num_layers": 0}, "num_layers"), ({"stop_below": 2}, "stop_below"), ({"dratf": "x"}, "dratf")]
