"""specplug-hello: a bigram-cache drafting method, the worked example of specplug's plugin guide."""

from specplug_hello.proposer import BigramOptions, BigramProposer

__all__ = ["BigramOptions", "BigramProposer"]
