"""Test tiers: the fast tier runs fewer hypothesis examples, the full tier hypothesis's own counts.

The tier is read from the environment variable ``SPECPLUG_TEST_TIER`` (``fast``, the default, or
``full``; ``bash scripts/test.sh --full`` sets ``full``). specplug's pytest plugin loads the
hypothesis profile of the same name, and tests that ask for a particular number of examples write::

    @settings(max_examples=examples(300), deadline=None)

which gives 300 examples in the full tier and at most :data:`FAST_MAX_EXAMPLES` in the fast one.
(An explicit ``max_examples`` in ``@settings`` overrides the profile, hence the helper.)
"""

from __future__ import annotations

import os

__all__ = ["FAST_MAX_EXAMPLES", "TIER_ENV", "TIERS", "examples", "register_hypothesis_profiles", "tier"]

TIER_ENV = "SPECPLUG_TEST_TIER"
TIERS = ("fast", "full")
#: hypothesis examples per property test in the fast tier
FAST_MAX_EXAMPLES = 25


def tier() -> str:
    """The test tier this process runs: ``fast`` (the default) or ``full``."""
    value = os.environ.get(TIER_ENV, "").strip().lower() or "fast"
    if value not in TIERS:
        raise ValueError(f"{TIER_ENV}={value!r}: expected one of {', '.join(TIERS)}")
    return value


def examples(n: int) -> int:
    """``n`` hypothesis examples in the full tier; at most :data:`FAST_MAX_EXAMPLES` in the fast tier."""
    return n if tier() == "full" else min(n, FAST_MAX_EXAMPLES)


def register_hypothesis_profiles() -> str:
    """Register the ``fast`` and ``full`` hypothesis profiles, load the current tier's; return its name.

    Both turn the per-example deadline off: tiny models and numba kernels compiling on first use
    make single examples slow on a shared CPU without anything being wrong.
    """
    from hypothesis import settings

    settings.register_profile("fast", max_examples=FAST_MAX_EXAMPLES, deadline=None)
    settings.register_profile("full", deadline=None)
    name = tier()
    settings.load_profile(name)
    return name
