"""specplug hooks of specplug-rest: the ``rest`` method and the ``specplug rest`` commands."""

from __future__ import annotations

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec
from specplug_rest.proposer import RestOptions, RestProposer


def build_proposer(options: RestOptions) -> RestProposer:
    """The ``rest`` factory: opens the datastore once; checks the tokenizer when the options say which."""
    fingerprint = None
    if options.model is not None:
        from specplug_rest.tokenizer_id import fingerprint_for_model  # lazy: loads transformers

        fingerprint = fingerprint_for_model(options.model)
    return RestProposer.from_options(options, fingerprint)


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="rest", factory=build_proposer, options=RestOptions, tree=True))


@hookimpl
def specplug_register_commands(cli):
    from specplug_rest.cli import rest

    cli.add_command(rest)
