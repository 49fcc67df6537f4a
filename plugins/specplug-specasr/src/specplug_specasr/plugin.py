"""specplug hooks of specplug-specasr: the ``specasr`` method."""

from __future__ import annotations

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug_specasr.proposer import SpecAsrOptions, SpecAsrProposer


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="specasr", factory=SpecAsrProposer, options=SpecAsrOptions, tree=True, needs=frozenset({Need.target_model})))
