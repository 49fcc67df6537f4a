"""mkdocs hook: regenerate docs/generated/ from the registry before every build (specplug.docs_gen)."""

import logging

from specplug import docs_gen

log = logging.getLogger("mkdocs.hooks.catalogue")


def on_pre_build(config, **kwargs):
    changed = docs_gen.build()
    if changed:
        log.info("specplug: regenerated %d catalogue page(s) in docs/generated/", len(changed))
