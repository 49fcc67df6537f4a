"""Cascade Speculative Drafting (CS Drafting, arXiv 2312.11462) for specplug: the ``cs_drafting`` method."""
