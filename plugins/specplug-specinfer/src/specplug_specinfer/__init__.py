"""SpecInfer (Miao et al., ASPLOS 2024, arXiv 2305.09781) for specplug."""
