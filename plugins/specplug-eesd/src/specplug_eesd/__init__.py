"""Early-exiting speculative decoding (EESD, arXiv 2406.03853) for specplug: the ``eesd`` method and objective."""
