"""Ouroboros as a specplug plugin: :class:`specplug_ouroboros.proposer.OuroborosProposer`."""
