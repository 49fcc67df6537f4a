"""Speculative cascades (Faster Cascades via Speculative Decoding, arXiv 2405.19261): ``faster_cascades``."""
