"""specplug hooks of specplug-image: the image commands and the ``image`` suite kind (the methods live
in specplug-lantern and specplug-sjd)."""

from specplug.hookspecs import hookimpl


@hookimpl
def specplug_register_commands(cli):
    from specplug_image.cli import image, train_digits

    cli.add_command(image)
    models = cli.get_command(None, "models")  # the built-in group: `specplug models train-digits`
    if models is not None and hasattr(models, "add_command"):
        models.add_command(train_digits)


@hookimpl
def specplug_register_bench_kinds(register):
    from specplug_image.bench import KIND

    register(KIND)
