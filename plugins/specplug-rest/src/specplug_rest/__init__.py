"""REST, retrieval-based speculative decoding (He et al., arXiv 2311.08252), as a specplug plugin.

Modules:

- :mod:`specplug_rest.suffix_array`: building a suffix array with numpy and searching it.
- :mod:`specplug_rest.datastore`: the on-disk datastore format (header + memory-mapped ``.npy``).
- :mod:`specplug_rest.trie`: retrieved continuations -> a token-trie :class:`~specplug.protocols.Draft`.
- :mod:`specplug_rest.proposer`: :class:`RestProposer` and :class:`RestOptions` (engine-free).
- :mod:`specplug_rest.tokenizer_id`: tokenizer fingerprints (imports transformers lazily).
- :mod:`specplug_rest.cli`: ``specplug rest build-datastore``.
"""

__version__ = "0.1.0"
