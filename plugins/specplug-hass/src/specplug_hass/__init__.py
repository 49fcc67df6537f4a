"""HASS for specplug: EAGLE heads trained with harmonized representations (arXiv 2408.15766)."""

from specplug_hass.proposer import HassOptions, HassProposer

__all__ = ["HassOptions", "HassProposer"]
__version__ = "0.1.0"
