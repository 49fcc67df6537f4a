"""A third-party plugin for specplug's tests: proposes by following the most recent bigrams."""
