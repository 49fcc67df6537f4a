"""Built-in verifiers, registered through the same hook as any plugin's.

Their cards (``registry/methods/<id>.yaml``) come from the catalogue; their specs live with the
verifiers (:data:`specplug.verify.specs.BUILTIN_VERIFIERS`). This module only registers.
"""

from __future__ import annotations

from specplug.hookspecs import hookimpl
from specplug.verify.specs import BUILTIN_VERIFIERS


@hookimpl
def specplug_register_verifiers(register):
    for spec in BUILTIN_VERIFIERS.values():
        register(spec)
