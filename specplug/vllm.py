"""Every registered specplug method as a vLLM ``custom_class`` proposer.

Start vLLM with::

    --speculative-config '{"model": "specplug.vllm.<id>", "num_speculative_tokens": 4}'

vLLM imports this module and asks it for the attribute ``<id>``; the module-level ``__getattr__``
below returns an adapter class for the method registered under that id (or alias). Method options
go in ``--additional-config '{"specplug": {"options": {...}}}'``. Everything is checked when the
engine starts. This module does not import vllm; the adapter reads only the config vLLM hands it.
"""

from __future__ import annotations

from typing import Any

__all__: list[str] = []


def __getattr__(name: str) -> Any:
    if name.startswith("_"):
        raise AttributeError(f"module 'specplug.vllm' has no attribute {name!r}")
    return _deferred(name)


def __dir__() -> list[str]:
    from specplug.registry import get_registry

    return sorted(get_registry().methods)


_cache: dict[str, type] = {}


def _deferred(name: str) -> type:
    """A class that resolves ``name`` when vLLM instantiates it.

    Resolving at instantiation (not at attribute lookup) matters: vLLM reads the attribute with
    ``getattr(module, name, None)``, which would swallow an AttributeError and print a bare "has no
    attribute"; raised from ``__init__``, our message (nearest ids, the fix) reaches the user.
    """
    if name not in _cache:

        def __new__(cls, vllm_config: Any, *args: Any, **kwargs: Any):
            from specplug.integrations.vllm.adapter import adapter_class
            from specplug.registry import get_registry

            spec = get_registry().method(name)  # UnknownIdError / NotRunnableError name the fix
            return adapter_class(spec)(vllm_config, *args, **kwargs)

        _cache[name] = type(name, (), {"__new__": __new__, "__module__": __name__, "__doc__": f"specplug method {name!r} for vLLM."})
    return _cache[name]
