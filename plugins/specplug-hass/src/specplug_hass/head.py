"""The HASS head: EAGLE's head (the eagle plugin's class, obtained by id through the registry) under
the method name ``hass``, and its export as a plain EAGLE folder.

A HASS head folder holds the head as ``specplug train hass`` trained it (metadata method ``hass``)
and, in ``eagle/``, the same weights with metadata method ``eagle``: the folder EAGLE-2's drafting
(``specplug``'s ``eagle2`` method) and vLLM's native ``eagle`` method load.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

__all__ = ["eagle_head_class", "hass_head_class", "save_as_eagle"]

_CLASS = None


def eagle_head_class():
    """The EAGLE head class, built by id through the registry (no import of the eagle plugin)."""
    from specplug.registry import get_registry

    spec = get_registry().objectives.get("eagle")
    if spec is None or spec.head_class is None:
        raise RuntimeError("hass trains an EAGLE head: install specplug-eagle (pip install specplug-eagle)")
    return spec.head_class()


def hass_head_class():
    """``HassHead``: a subclass of the registered EAGLE head class with ``method = "hass"``."""
    global _CLASS
    if _CLASS is None:
        base = eagle_head_class()
        _CLASS = type("HassHead", (base,), {"method": "hass", "__doc__": "An EAGLE head trained by HASS."})
    return _CLASS


def save_as_eagle(head, target, folder: Path, metadata) -> Path:
    """Save ``head``'s weights as an EAGLE head for ``target`` in ``folder`` (metadata method ``eagle``)."""
    eagle = eagle_head_class().for_target(target, head.config)
    missing, unexpected = eagle.load_state_dict(head.state_dict(), strict=False)
    if [m for m in missing if not m.startswith("rotary_emb.")] or unexpected:
        raise ValueError(f"the HASS head does not fit EAGLE's layout: missing {missing}, unexpected {unexpected}")
    return eagle.save_pretrained(Path(folder), replace(metadata, method="eagle", extra={**metadata.extra, "trained_by": "hass"}))
