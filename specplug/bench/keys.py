"""File-name keys of the benchmark caches: a model's key, a slug, a short hash of settings."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

__all__ = ["model_key", "short_hash", "slug"]


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")[:60] or "x"


def short_hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:10]


def model_key(model: str) -> str:
    """A model's cache key: its alias's folder name, a local folder's name and path hash, or a slug of a hub id."""
    from specplug.models import _ALIASES

    if model.lower() in _ALIASES:
        return _ALIASES[model.lower()]
    path = Path(model).expanduser()
    if path.exists():
        return f"{slug(path.name)}-{short_hash(str(path.resolve()))}"
    return slug(model)
