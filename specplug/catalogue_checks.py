"""The catalogue's rules as checks: each function returns the problems it finds, as sentences.

``tests/test_catalogue.py`` runs them on every card and every registered plugin, and on broken cards to
show that each one can fail. A plugin's own tests can run them on the plugin's card too
(``implementation_problems(card, spec)`` with the registered :class:`~specplug.methods.MethodSpec`).

Facet rules (the field descriptions in :mod:`specplug.taxonomy` give the full rule in words):

- ``training``: decided by what is trained. Heads that draft from the target's features
  (``feature_heads``, ``multi_token_heads``) are always trained, so never ``none``; ``distillation`` is
  for a standalone draft model (``independent_drafter``), while a head or adapter on a frozen target is
  ``peft`` whatever its loss.
- ``lossless``: true exactly when ``acceptance`` is a lossless rule; a lossless rule offered as an option
  belongs in ``acceptance`` itself.
- ``paper.authors``: names only, never 'et al.' (``authors_truncated`` marks a shortened list).
- ``deployment``: tags from :data:`~specplug.taxonomy.DEPLOYMENT_TAGS`; a detail tag brings its system
  node's tag, so the node lists the card.

Implementation rule (cards say what the plugins register, so the two cannot drift), for a registered
method with card ``C`` and spec ``S``:

- ``C`` lists a ``specplug_reference`` entry: the reference engine runs every registered method.
- Every specplug entry (``specplug_reference``, ``vllm_specplug``) of ``C`` gives ``needs`` equal to
  ``S.needs`` and ``options`` naming every required field of ``S.options`` (and only fields it has).
- When level 2 provides all of ``S.needs`` (:data:`LEVEL2_NEEDS`), ``C`` lists a ``vllm_specplug`` entry
  with ``level`` 2 if ``S.needs`` is not empty, else 1, and ``config.model = specplug.vllm.<id>``.
  When it does not, ``C`` lists no ``vllm_specplug`` entry: the adapter would refuse to start.
- ``S.tree`` (the proposer drafts trees) implies ``C.refinement == single_pass_tree``.

Quickstart rule (:func:`quickstart_problems`): a card carries a quickstart exactly when an installed plugin
runs it (a card whose quickstart fails in the full test tier, ``tests/test_quickstarts.py``, cannot stay
runnable). Its install lines work from a checkout as printed: :data:`WHEELHOUSE_BUILD` first, then
:data:`WHEELHOUSE_INSTALL` with specplug's own distributions only, among them the card's package; its last
command runs the method with ``--method ID`` (a registered method) or ``--verifier ID`` (a verifier).

This module imports neither torch nor vllm.
"""

from __future__ import annotations

import re
import shlex

from specplug.methods import MethodSpec
from specplug.protocols import Need
from specplug.taxonomy import (
    DEPLOYMENT_TAGS,
    QUICKSTART_PROMPT,
    LOSSLESS_ACCEPTANCE,
    Engine,
    GenerationStrategy,
    MethodCard,
    RefinementStrategy,
    TrainingCost,
)

__all__ = [
    "LEVEL2_NEEDS",
    "WHEELHOUSE_BUILD",
    "WHEELHOUSE_INSTALL",
    "bibliography_problems",
    "deployment_problems",
    "facet_problems",
    "implementation_problems",
    "quickstart_problems",
    "vllm_level",
]

#: What specplug's vLLM level 2 plugin gives methods (``specplug.integrations.vllm.patches.apply``
#: returns the same set; a vLLM-tier test compares the two).
LEVEL2_NEEDS: frozenset[Need] = frozenset({Need.request_lifecycle, Need.target_topk, Need.target_predictions})

#: How a checkout installs specplug's packages (no package index serves them): build the wheelhouse
#: once, then install from it; pip takes the third-party dependencies from the index.
WHEELHOUSE_BUILD = "bash scripts/wheelhouse.sh"
WHEELHOUSE_INSTALL = "pip install --find-links dist/wheelhouse"

_HEADS = {GenerationStrategy.feature_heads, GenerationStrategy.multi_token_heads}
_OURS = (Engine.specplug_reference, Engine.vllm_specplug)


def facet_problems(card: MethodCard) -> list[str]:
    """The training and lossless rules, as far as a card's other facets make them checkable."""
    problems = []
    if card.generation in _HEADS and card.training is TrainingCost.none:
        problems.append(
            f"{card.id}: generation {card.generation.value!r} drafts with trained heads, so training cannot be 'none'"
        )
    if card.training is TrainingCost.distillation and card.generation is not GenerationStrategy.independent_drafter:
        problems.append(
            f"{card.id}: training 'distillation' is for a standalone draft model (independent_drafter); a head or "
            "adapter trained on a frozen target is 'peft', and an updated target is 'fine_tune'"
        )
    lossless_rule = card.acceptance in LOSSLESS_ACCEPTANCE
    if card.lossless != lossless_rule:
        problems.append(
            f"{card.id}: lossless is {str(card.lossless).lower()} but acceptance {card.acceptance.value!r} is "
            f"{'lossless' if lossless_rule else 'lossy'}; they must agree"
        )
    offered = [a.value for a in card.optional_acceptance if a in LOSSLESS_ACCEPTANCE]
    if offered and not lossless_rule:
        problems.append(
            f"{card.id}: it offers the lossless {', '.join(offered)}, so 'acceptance' names that rule, lossless is "
            f"true and {card.acceptance.value!r} moves to optional_acceptance"
        )
    return problems


def bibliography_problems(card: MethodCard) -> list[str]:
    """Authors are names: a list that stops early says so with ``authors_truncated``, not with 'et al.'."""
    if card.paper is None:
        return []
    return [
        f"{card.id}: {name!r} is not an author: list the real authors, or the first ones and set authors_truncated: true"
        for name in card.paper.authors
        if name.strip().rstrip(".").lower() in ("et al", "others", "and others", "")
    ]


def deployment_problems(card: MethodCard) -> list[str]:
    """Deployment tags come from the vocabulary, and each detail tag brings its system node's tag."""
    problems = []
    for tag in card.deployment:
        node = DEPLOYMENT_TAGS.get(tag)
        if node is None:
            problems.append(f"{card.id}: deployment tag {tag!r} is unknown; use one of {sorted(DEPLOYMENT_TAGS)}")
        elif node not in card.deployment:
            problems.append(f"{card.id}: deployment tag {tag!r} belongs to the {node!r} node, so add {node!r} too")
    if len(set(card.deployment)) != len(card.deployment):
        problems.append(f"{card.id}: a deployment tag is repeated")
    return problems


def vllm_level(spec: MethodSpec, level2_needs: frozenset[Need] = LEVEL2_NEEDS) -> int | None:
    """1 when custom_class alone runs the method, 2 when it needs level 2, None when vLLM cannot run it here."""
    if not spec.needs:
        return 1
    return 2 if set(spec.needs) <= level2_needs else None


def implementation_problems(
    card: MethodCard, spec: MethodSpec, level2_needs: frozenset[Need] = LEVEL2_NEEDS
) -> list[str]:
    """What the card's implementations must say about a registered method (see the module docstring)."""
    problems = []
    ours = [impl for impl in card.implementations if impl.engine in _OURS]
    if not any(impl.engine is Engine.specplug_reference for impl in ours):
        problems.append(f"{card.id}: a plugin registers it, so the card lists a specplug_reference implementation")
    needs = sorted(str(n) for n in spec.needs)
    fields = spec.options.model_fields
    required = sorted(name for name, info in fields.items() if info.is_required())
    for impl in ours:
        where = f"{card.id}: the {impl.engine.value} entry"
        if sorted(impl.needs) != needs:
            problems.append(f"{where} says needs {sorted(impl.needs)}, the plugin registers {needs}")
        missing = [name for name in required if name not in impl.options]
        if missing:
            problems.append(f"{where} must name the required option(s) {missing} in 'options' (with a placeholder value)")
        unknown = sorted(set(impl.options) - set(fields))
        if unknown:
            problems.append(f"{where} names option(s) {unknown} that {spec.options.__name__} does not have")
    level = vllm_level(spec, level2_needs)
    vllm_entries = [impl for impl in ours if impl.engine is Engine.vllm_specplug]
    if level is None and vllm_entries:
        problems.append(
            f"{card.id}: it needs {needs}, which specplug's vLLM level 2 does not provide, so the card lists no "
            "vllm_specplug entry (the adapter would refuse to start)"
        )
    if level is not None:
        if not vllm_entries:
            problems.append(
                f"{card.id}: specplug's vLLM adapter runs it (level {level}), so the card lists a vllm_specplug entry "
                f"with level {level}"
            )
        for impl in vllm_entries:
            if impl.level != level:
                reason = f"it needs {needs}" if needs else "it needs nothing beyond token ids"
                problems.append(f"{card.id}: the vllm_specplug entry says level {impl.level}; {reason}, so level {level}")
            if impl.config.get("model") != f"specplug.vllm.{card.id}":
                problems.append(f"{card.id}: the vllm_specplug config must name model specplug.vllm.{card.id}")
    if spec.tree and card.refinement is not RefinementStrategy.single_pass_tree:
        problems.append(f"{card.id}: the proposer drafts trees, so refinement is 'single_pass_tree'")
    return problems


def _distribution(requirement: str) -> str:
    """``specplug[engine]`` -> ``specplug``: the distribution a requirement names."""
    return re.split(r"[\[<>=!~;\s]", requirement, maxsplit=1)[0].strip().lower().replace("_", "-")


def quickstart_problems(
    card: MethodCard, *, runnable: bool, verifier: bool, distributions: set[str]
) -> list[str]:
    """The quickstart rule (see the module docstring) for one card.

    ``runnable``: an installed plugin registers the card's id; ``verifier``: it is registered as a verifier
    (its quickstart runs ``--verifier ID``); ``distributions``: the names of specplug's own distributions
    (the core and every plugin package), which the wheelhouse holds.
    """
    if not card.quickstart:
        return [f"{card.id}: a plugin runs it, so the card carries a quickstart"] if runnable else []
    if not runnable:
        return [f"{card.id}: no installed plugin runs it, so it carries no quickstart (only runnable cards do)"]
    problems = []
    installs = [i for i, command in enumerate(card.quickstart) if command.startswith("pip install")]
    if not installs:
        problems.append(f"{card.id}: the quickstart installs nothing; start with {WHEELHOUSE_BUILD!r} and {WHEELHOUSE_INSTALL!r} ...")
    elif WHEELHOUSE_BUILD not in card.quickstart[: installs[0]]:
        problems.append(f"{card.id}: {WHEELHOUSE_BUILD!r} must come before the first 'pip install'")
    installed = set()
    for i in installs:
        command = card.quickstart[i]
        if not command.startswith(WHEELHOUSE_INSTALL + " "):
            problems.append(f"{card.id}: install from the wheelhouse as printed elsewhere: {WHEELHOUSE_INSTALL} PACKAGE ..., got {command!r}")
            continue
        names = [_distribution(word) for word in shlex.split(command[len(WHEELHOUSE_INSTALL):]) if not word.startswith("-")]
        unknown = [name for name in names if name not in distributions]
        if unknown:
            problems.append(f"{card.id}: the wheelhouse holds specplug's packages only; {', '.join(unknown)} is not one")
        installed.update(names)
    packages = {impl.package for impl in card.implementations if impl.engine is Engine.specplug_reference and impl.package}
    missing = sorted(packages - installed)
    if installs and missing:
        problems.append(f"{card.id}: the quickstart does not install {', '.join(missing)}, the card's package")
    words = shlex.split(card.quickstart[-1])
    flag = "--verifier" if verifier else "--method"
    if (flag, card.id) not in set(zip(words, words[1:])):
        problems.append(f"{card.id}: it is registered as a {flag[2:]}, so the quickstart ends with "
                        f'specplug generate {flag} {card.id} ... --compare --json "{QUICKSTART_PROMPT}"')
    return problems
