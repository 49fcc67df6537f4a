"""IBM's MLP speculator for specplug: a multi-stage MLP over the target's last state and the tokens drafted so far."""

from specplug_mlp_speculator.proposer import MLPSpeculatorOptions, MLPSpeculatorProposer

__all__ = ["MLPSpeculatorOptions", "MLPSpeculatorProposer"]
__version__ = "0.1.0"
