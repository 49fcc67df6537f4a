"""specplug hooks of specplug-layerskip: the ``draft_verify`` and ``swift`` methods and ``specplug layerskip``."""

from __future__ import annotations

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug_layerskip.options import DraftVerifyOptions, SwiftOptions
from specplug_layerskip.proposer import DraftVerifyProposer, SwiftProposer


@hookimpl
def specplug_register_methods(register):
    needs = frozenset({Need.target_model})
    register(MethodSpec(id="draft_verify", factory=DraftVerifyProposer, options=DraftVerifyOptions, tree=False, needs=needs))
    register(MethodSpec(id="swift", factory=SwiftProposer, options=SwiftOptions, tree=True, needs=needs))


@hookimpl
def specplug_register_commands(cli):
    from specplug_layerskip.cli import layerskip

    cli.add_command(layerskip)
