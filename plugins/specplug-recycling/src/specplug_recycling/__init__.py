"""Token Recycling (Luo et al., arXiv 2408.08696) as a specplug method plugin.

- :mod:`specplug_recycling.tree`: the static tree template and its expansion over the adjacency matrix.
- :mod:`specplug_recycling.proposer`: :class:`AdjacencyMatrix`, :class:`RecyclingProposer`, :class:`RecyclingOptions`.
- :mod:`specplug_recycling.plugin`: the ``recycling`` method's registration.
"""

__version__ = "0.1.0"
