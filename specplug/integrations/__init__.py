"""Adapters that run specplug methods inside other engines (each imports its engine lazily)."""
