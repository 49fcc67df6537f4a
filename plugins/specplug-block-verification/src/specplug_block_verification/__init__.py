"""Block verification (Sun et al., ICLR 2025, arXiv 2403.10444) for specplug."""
