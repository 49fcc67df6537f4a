import specplug_missing_dependency  # noqa: F401  (deliberately absent: this plugin must fail to load)
