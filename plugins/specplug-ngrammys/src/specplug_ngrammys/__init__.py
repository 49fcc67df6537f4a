"""The N-Grammys for specplug: context n-grams and the model's bigram table, several drafts per step."""

from specplug_ngrammys.proposer import NgrammysOptions, NgrammysProposer, bigram_table

__all__ = ["NgrammysOptions", "NgrammysProposer", "bigram_table"]
__version__ = "0.1.0"
