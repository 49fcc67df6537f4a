"""MTAD (Qin et al., ICLR 2025, arXiv 2407.09722) for specplug."""
