"""specplug hooks of specplug-image: the ``sjd`` method, the ``lantern`` verifier, and CLI commands."""

from specplug.hookspecs import hookimpl
from specplug.methods import MethodSpec, VerifierSpec
from specplug.protocols import Need
from specplug_image.lantern import LanternOptions
from specplug_image.sjd import SJDOptions, SJDProposer


def _lantern(options: LanternOptions):
    from specplug_image.lantern import LanternVerifier

    return LanternVerifier(options)


@hookimpl
def specplug_register_methods(register):
    register(MethodSpec(id="sjd", factory=SJDProposer, options=SJDOptions, needs=frozenset({Need.target_probs})))


@hookimpl
def specplug_register_verifiers(register):
    register(VerifierSpec(id="lantern", factory=_lantern, options=LanternOptions))


@hookimpl
def specplug_register_commands(cli):
    from specplug_image.cli import image, train_digits

    cli.add_command(image)
    models = cli.get_command(None, "models")  # the built-in group: `specplug models train-digits`
    if models is not None and hasattr(models, "add_command"):
        models.add_command(train_digits)
