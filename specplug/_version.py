"""The version of the specplug distribution (one place; plugins and reports read it)."""

__version__ = "0.1.0"
