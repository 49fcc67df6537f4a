"""FLy (Li et al., ICLR 2026, arXiv 2511.22972) for specplug."""
