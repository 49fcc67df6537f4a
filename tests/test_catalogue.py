"""The survey catalogue as data: ``registry/taxonomy.yaml`` and one card per ``registry/methods/<id>.yaml``.

The checks are written as small functions that return the problems they find, so each one is also run
on a deliberately broken input to show it can fail. The facet, deployment and implementation rules live
in :mod:`specplug.catalogue_checks` (plugins run them on their own cards too):

- training: heads are trained (never 'none'); 'distillation' only for a standalone draft model; a head or
  adapter on a frozen target is 'peft' (the full rule: ``MethodCard.training``'s description);
- lossless: true exactly when the acceptance rule is lossless; a lossless option goes in 'acceptance';
- deployment: known tags, each with its system node's tag;
- implementations: every method a plugin registers (``get_registry().methods``) is described by its card
  as registered: a specplug_reference entry; on every specplug entry the plugin's ``needs`` and its
  required ``options``; a vllm_specplug entry with level 2 when the method has needs level 2 provides,
  level 1 when it has none, and no vllm_specplug entry when level 2 cannot provide them; a tree-drafting
  proposer makes the card's refinement 'single_pass_tree'. A card that promises a specplug engine for an
  id no installed plugin registers fails too.
- quickstarts: exactly the runnable cards carry one; it installs from the wheelhouse, only specplug's
  packages and the card's own among them, and ends by running the card's id (``--method`` or
  ``--verifier``) with ``--compare --json "PROMPT"``. The full tier runs them (``tests/test_quickstarts.py``).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
import typing
from collections import Counter
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from specplug.catalogue_checks import (
    LEVEL2_NEEDS,
    bibliography_problems,
    deployment_problems,
    facet_problems,
    quickstart_problems,
    vllm_level,
)
from specplug.catalogue_checks import implementation_problems as registered_problems
from specplug.methods import MethodOptions, MethodSpec
from specplug.protocols import Need
from specplug.registry import RegistryError, build_registry, get_registry, load_card_file
from specplug.taxonomy import (
    FACETS,
    AcceptanceRule,
    Engine,
    GenerationStrategy,
    Implementation,
    MethodCard,
    Modality,
    RefinementStrategy,
    Scope,
    Status,
    Taxonomy,
)

REPO = Path(__file__).resolve().parent.parent
METHODS = REPO / "registry" / "methods"
#: plugin folders of this repository (their distribution names equal the folder names)
FAMILY_PLUGINS = {p.name for p in (REPO / "plugins").glob("specplug-*") if (p / "pyproject.toml").exists()}
CARD_FILES = sorted(METHODS.glob("*.yaml"))
#: Section labels as the survey numbers them (v3, Fig. 4): "IV.D.1" is its §IV-D1.
SECTION_RE = re.compile(r"^(IV|V|VI|VII)(\.[A-E](\.[1-2])?)?$")


@pytest.fixture(scope="module")
def cards() -> dict[str, MethodCard]:
    return {path.stem: load_card_file(path) for path in CARD_FILES}


@pytest.fixture(scope="module")
def taxonomy() -> Taxonomy:
    return Taxonomy.model_validate(yaml.safe_load((REPO / "registry" / "taxonomy.yaml").read_text(encoding="utf-8")))


# -- checks (each returns a list of problems) -------------------------------------------------------


def stem_problems(path: Path, card: MethodCard) -> list[str]:
    return [] if card.id == path.stem else [f"{path.name}: id {card.id!r} differs from the file name"]


def alias_problems(cards: list[MethodCard]) -> list[str]:
    """Aliases must not shadow another card's id, nor be claimed twice, nor repeat the card's own id."""
    problems = []
    ids = {c.id for c in cards}
    owners = Counter(a.lower().replace("-", "_") for c in cards for a in set(c.aliases))
    for card in cards:
        for alias in card.aliases:
            key = alias.lower().replace("-", "_")
            if key in ids:
                problems.append(f"{card.id}: alias {alias!r} is a card id")
            if owners[key] > 1:
                problems.append(f"{card.id}: alias {alias!r} is claimed by {owners[key]} cards")
            if not re.match(r"^[a-z][a-z0-9_]*$", alias):
                problems.append(f"{card.id}: alias {alias!r} is not lower-case snake_case")
    return problems


def related_problems(cards: list[MethodCard]) -> list[str]:
    ids = {c.id for c in cards}
    return [
        f"{c.id}: related id {r!r} does not exist" if r not in ids else f"{c.id}: relates to itself"
        for c in cards
        for r in c.related
        if r not in ids or r == c.id
    ]


def arxiv_year_problems(cards: list[MethodCard]) -> list[str]:
    """An arXiv id YYMM.NNNNN was posted in 20YY; the paper's year may be that year or the next."""
    problems = []
    for card in cards:
        if card.paper is None or card.paper.arxiv is None:
            continue
        posted = 2000 + int(card.paper.arxiv[:2])
        if card.paper.year not in (posted, posted + 1):
            problems.append(f"{card.id}: year {card.paper.year} does not fit arXiv {card.paper.arxiv} ({posted})")
        if card.paper.arxiv[2:4] > "12" or card.paper.arxiv[2:4] == "00":
            problems.append(f"{card.id}: arXiv {card.paper.arxiv} has no valid month")
    return problems


def coverage_problems(cards: list[MethodCard]) -> list[str]:
    problems = []
    for field, enum in (("generation", GenerationStrategy), ("refinement", RefinementStrategy), ("acceptance", AcceptanceRule)):
        used = {getattr(c, field) for c in cards}
        problems += [f"no card has {field} {v.value!r}" for v in enum if v not in used]
    used_modalities = {m for c in cards for m in c.modalities}
    problems += [f"no card has modality {m.value!r}" for m in Modality if m not in used_modalities]
    return problems


def taxonomy_problems(taxonomy: Taxonomy, cards: list[MethodCard]) -> list[str]:
    problems = []
    nodes = [node for _, node in taxonomy.walk()]
    counts = Counter(node.id for node in nodes)
    problems += [f"node id {i!r} appears {n} times" for i, n in counts.items() if n > 1]
    for node in nodes:
        if (node.facet is None) != (node.value is None):
            problems.append(f"node {node.id!r}: facet and value must be given together")
        if node.facet == "deployment":
            pass  # free-form tags on system cards; checked against the cards below
        elif node.facet is not None:
            enum = FACETS.get(node.facet)
            if enum is None:
                problems.append(f"node {node.id!r}: unknown facet {node.facet!r}")
            elif node.value not in {v.value for v in enum}:
                problems.append(f"node {node.id!r}: {node.value!r} is not a {node.facet} value")
        if node.survey_section is not None and not SECTION_RE.match(node.survey_section):
            problems.append(f"node {node.id!r}: survey_section {node.survey_section!r} is not like 'IV.D.1'")
        if not node.description.strip():
            problems.append(f"node {node.id!r}: empty description")
    for facet, enum in (("generation", GenerationStrategy), ("refinement", RefinementStrategy), ("acceptance", AcceptanceRule)):
        present = {n.value for n in nodes if n.facet == facet}
        problems += [f"no taxonomy node for {facet} {v.value!r}" for v in enum if v.value not in present]
    # The system children are matched by the deployment tags cards carry.
    system = next((r for r in taxonomy.roots if r.id == "system"), None)
    if system is None:
        return problems + ["no 'system' root"]
    tags = {t for c in cards for t in c.deployment}
    child_ids = {child.id for child in system.children}
    problems += [
        f"node {child.id!r}: must filter on facet 'deployment' with value {child.id!r}"
        for child in system.children
        if (child.facet, child.value) != ("deployment", child.id)
    ]
    problems += [f"no card is deployed as {i!r}" for i in sorted(child_ids - tags)]
    for card in cards:
        if card.scope is Scope.system and not child_ids & set(card.deployment):
            problems.append(f"{card.id}: a system card needs one of {sorted(child_ids)} in its deployment")
    return problems


def section_problems(taxonomy: Taxonomy) -> list[str]:
    """Nodes that share a survey section say why (or that it could not be checked) in their section_note."""
    by_section: dict[str, list[str]] = {}
    for _, node in taxonomy.walk():
        if node.survey_section:
            by_section.setdefault(node.survey_section, []).append(node.id)
    return [
        f"node {node.id!r} shares section {node.survey_section} with {sorted(set(by_section[node.survey_section]) - {node.id})} "
        "but has no section_note saying why"
        for _, node in taxonomy.walk()
        if node.survey_section and len(by_section[node.survey_section]) > 1 and not (node.section_note or "").strip()
    ]


def plugin_problems(registry) -> list[str]:
    """Every registered method against its card, and every card's specplug engines against the plugins."""
    problems = []
    for method_id, spec in sorted(registry.methods.items()):
        problems += registered_problems(registry.cards[method_id], spec)
    registered = set(registry.methods) | set(registry.verifiers)
    for card in registry.cards.values():
        promised = sorted(i.engine.value for i in card.implementations if i.engine in (Engine.specplug_reference, Engine.vllm_specplug))
        if promised and card.id not in registered:
            problems.append(
                f"{card.id}: the card lists {promised} but no installed plugin registers {card.id!r} "
                f"(install plugins/specplug-{card.id.replace('_', '-')}, or drop the entries)"
            )
    for verifier_id in sorted(registry.verifiers):
        if Engine.specplug_reference not in registry.cards[verifier_id].engines:
            problems.append(f"{verifier_id}: a registered verifier, so its card lists a specplug_reference entry")
    return problems


def implementation_problems(cards: list[MethodCard]) -> list[str]:
    """specplug packages follow the naming rule, and status tells whether specplug runs the method."""
    problems = []
    ours = {Engine.specplug_reference, Engine.vllm_specplug}
    for card in cards:
        runs_here = bool(card.engines & ours)
        if runs_here and card.status is Status.catalogued:
            problems.append(f"{card.id}: specplug runs it, so status cannot be 'catalogued'")
        if not runs_here and card.status is not Status.catalogued:
            problems.append(f"{card.id}: status {card.status.value!r} but no specplug implementation")
        for impl in card.implementations:
            # one distribution per method ('specplug-<id>'), or a family plugin of this repository that
            # implements several methods (specplug-draft: sps; specplug-layerskip: draft_verify, swift)
            allowed = {None, "specplug-" + card.id.replace("_", "-")} | FAMILY_PLUGINS
            if impl.engine in ours and impl.package not in allowed:
                problems.append(f"{card.id}: package {impl.package!r} should be 'specplug-{card.id.replace('_', '-')}'")
            if impl.engine is Engine.vllm_specplug and impl.config.get("model") != f"specplug.vllm.{card.id}":
                problems.append(f"{card.id}: the vllm_specplug config must name specplug.vllm.{card.id}")
    return problems


# -- the catalogue itself ------------------------------------------------------------------------


@pytest.mark.parametrize("path", CARD_FILES, ids=lambda p: p.stem)
def test_every_card_file_validates_and_is_named_by_its_id(path):
    card = load_card_file(path)
    assert stem_problems(path, card) == []
    assert card.summary.strip() and len(card.summary) < 400, "summary: one or two sentences"
    if card.survey_section is not None:
        assert SECTION_RE.match(card.survey_section), card.survey_section
    if card.scope is not Scope.verification:
        assert card.generation is not None, "only verification cards may leave generation empty"


def test_catalogue_size_and_unique_ids(cards):
    assert len(cards) >= 60, f"only {len(cards)} cards"
    assert len({c.id for c in cards.values()}) == len(cards)


def test_registry_loads_the_catalogue_without_problems(cards):
    registry = build_registry(load_entry_points=False)
    assert set(cards) <= set(registry.cards)
    assert [p for p in registry.problems if "registry/methods" in p] == []
    # The built-in verifiers find their cards.
    for verifier in ("greedy_match", "speculative_sampling", "typical_acceptance", "tree_verification"):
        assert verifier in registry.verifiers, registry.problems
        assert registry.cards[verifier].scope is Scope.verification


def test_aliases_do_not_clash(cards):
    assert alias_problems(list(cards.values())) == []


def test_related_ids_exist(cards):
    assert related_problems(list(cards.values())) == []


def test_arxiv_ids_fit_the_paper_year(cards):
    assert arxiv_year_problems(list(cards.values())) == []


def test_every_facet_value_has_a_card(cards):
    assert coverage_problems(list(cards.values())) == []


def test_taxonomy_is_consistent(taxonomy, cards):
    assert taxonomy.source.arxiv == "2502.19732"
    assert [r.id for r in taxonomy.roots] == ["generation", "refinement", "acceptance", "system", "applications"]
    assert taxonomy_problems(taxonomy, list(cards.values())) == []


def test_card_sections_exist_in_the_taxonomy(taxonomy, cards):
    sections = {n.survey_section for _, n in taxonomy.walk() if n.survey_section}
    unknown = {c.id: c.survey_section for c in cards.values() if c.survey_section and c.survey_section not in sections}
    assert unknown == {}


def test_implementations_and_status_agree(cards):
    assert implementation_problems(list(cards.values())) == []


def test_lossy_cards_say_so(cards):
    for card in cards.values():
        if card.acceptance in (AcceptanceRule.typical, AcceptanceRule.relaxed):
            assert not card.lossless, card.id


def test_every_card_follows_the_training_and_lossless_rules():
    registry = get_registry()  # catalogue cards and the cards plugins bring
    assert [p for card in registry.cards.values() for p in facet_problems(card)] == []


def test_deployment_tags_place_every_card_under_its_system_node():
    registry = get_registry()
    assert [p for card in registry.cards.values() for p in deployment_problems(card)] == []


def test_shared_survey_sections_are_explained(taxonomy):
    assert section_problems(taxonomy) == []


def test_no_card_lists_et_al_as_an_author():
    registry = get_registry()
    assert [p for card in registry.cards.values() for p in bibliography_problems(card)] == []


def test_cards_say_what_the_plugins_register():
    """Each registered MethodSpec (needs, options, tree) against its card's implementations."""
    registry = get_registry()
    assert registry.methods, "no plugin registered a method: install the plugins/ packages"
    assert plugin_problems(registry) == []


@pytest.mark.vllm
def test_level2_provides_what_the_catalogue_rule_assumes():
    """LEVEL2_NEEDS (used by the rule above) equals what the level 2 patches report (in a fresh process)."""
    pytest.importorskip("vllm")
    code = "from specplug.integrations.vllm import patches; print(' '.join(sorted(str(n) for n in patches.apply())))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=True)
    provided = out.stdout.strip().splitlines()[-1].split()  # the last line: vLLM may log before it
    assert provided == sorted(str(n) for n in LEVEL2_NEEDS), out.stdout[-2000:]


@pytest.mark.vllm
def test_native_vllm_methods_exist_in_installed_vllm(cards):
    speculative = pytest.importorskip("vllm.config.speculative")

    def names(tp) -> set[str]:
        out: set[str] = set()
        for arg in typing.get_args(tp):
            out |= names(arg) if typing.get_origin(arg) is typing.Literal else {arg}
        return out

    known = names(speculative.SpeculativeMethod)
    assert {"ngram", "suffix", "draft_model"} <= known, "could not read vLLM's method names"
    natives = {c.id: impl.vllm_method for c in cards.values() for impl in c.implementations if impl.engine is Engine.vllm_native}
    assert {cid: m for cid, m in natives.items() if m not in known} == {}


# -- the checks can fail --------------------------------------------------------------------------


def _card(**changes) -> MethodCard:
    data = {
        "id": "demo", "name": "Demo", "summary": "A demo.", "generation": "ngram", "refinement": "single_pass_linear",
        "acceptance": "exact_greedy", "lossless": True, "training": "none",
    }
    data.update(changes)
    return MethodCard.model_validate(data)


def test_broken_card_file_is_rejected_naming_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: bad\nname: Bad\nsummary: s\ngeneration: telepathy\nrefinement: single_pass_linear\n"
                   "acceptance: exact_greedy\nlossless: true\ntraining: none\n", encoding="utf-8")
    with pytest.raises(RegistryError, match=r"bad\.yaml.*\n.*generation"):
        load_card_file(bad)

    lossy = tmp_path / "lossy.yaml"
    lossy.write_text(bad.read_text().replace("telepathy", "ngram").replace("exact_greedy", "typical"), encoding="utf-8")
    with pytest.raises(RegistryError, match="lossless"):
        load_card_file(lossy)

    wrong_arxiv = tmp_path / "arxiv.yaml"
    wrong_arxiv.write_text(lossy.read_text().replace("typical", "exact_greedy")
                           + "paper: {title: T, authors: [A], year: 2024, arxiv: '2404.08698v2'}\n", encoding="utf-8")
    with pytest.raises(RegistryError, match=r"paper\.arxiv"):
        load_card_file(wrong_arxiv)


def test_stem_check_catches_a_misnamed_file(tmp_path):
    path = tmp_path / "other.yaml"
    assert stem_problems(path, _card()) == ["other.yaml: id 'demo' differs from the file name"]


def test_alias_and_related_checks_catch_problems():
    a = _card(id="eagle", aliases=["eagle_2"], related=["nowhere"])
    b = _card(id="eagle2", aliases=["eagle_2", "Bad Alias"], related=["eagle2"])
    problems = alias_problems([a, b])
    assert "eagle: alias 'eagle_2' is claimed by 2 cards" in problems
    assert "eagle2: alias 'Bad Alias' is not lower-case snake_case" in problems
    assert alias_problems([a, _card(id="eagle_2")]) == ["eagle: alias 'eagle_2' is a card id"]
    assert related_problems([a, b]) == ["eagle: related id 'nowhere' does not exist", "eagle2: relates to itself"]


def test_year_and_coverage_checks_catch_problems():
    wrong = _card(paper={"title": "T", "authors": ["A"], "year": 2021, "arxiv": "2211.17192"})
    assert arxiv_year_problems([wrong]) == ["demo: year 2021 does not fit arXiv 2211.17192 (2022)"]
    assert arxiv_year_problems([_card(paper={"title": "T", "authors": ["A"], "year": 2023, "arxiv": "2211.17192"})]) == []
    missing = coverage_problems([_card()])
    assert "no card has generation 'retrieval'" in missing
    assert "no card has acceptance 'block'" in missing


def test_taxonomy_check_catches_problems(taxonomy, cards):
    broken = taxonomy.model_copy(deep=True)
    broken.roots[0].children[0].value = "telepathy"
    broken.roots[1].children.pop()  # drops the 'iterative' node
    problems = taxonomy_problems(broken, list(cards.values()))
    assert "node 'predefined_fill': 'telepathy' is not a generation value" in problems
    assert "no taxonomy node for refinement 'iterative'" in problems
    assert any("a system card needs one of" in p for p in taxonomy_problems(taxonomy, [_card(scope="system")]))


def test_implementation_check_catches_problems():
    card = _card(id="pld", status="catalogued", implementations=[
        {"engine": "specplug_reference", "package": "specplug-prompt-lookup"},
        {"engine": "vllm_specplug", "package": "specplug-pld", "config": {"model": "specplug.vllm.other"}},
    ])
    problems = implementation_problems([card])
    assert "pld: specplug runs it, so status cannot be 'catalogued'" in problems
    assert "pld: package 'specplug-prompt-lookup' should be 'specplug-pld'" in problems
    assert "pld: the vllm_specplug config must name specplug.vllm.pld" in problems
    assert implementation_problems([_card(status="preview")]) == ["demo: status 'preview' but no specplug implementation"]


class _NeedsDatastore(MethodOptions):
    datastore: str
    depth: int = 4


def _spec(**changes) -> MethodSpec:
    fields = {"id": "demo", "factory": lambda options: None}
    fields.update(changes)
    return MethodSpec(**fields)


def _impl(engine: str, **fields) -> dict:
    out = {"engine": engine, "package": "specplug-demo"}
    if engine == "vllm_specplug":
        out["config"] = {"model": "specplug.vllm.demo"}
    out.update(fields)
    return out


def test_facet_rules_catch_bad_cards():
    heads_untrained = _card(generation="feature_heads", training="none")
    assert facet_problems(heads_untrained) == [
        "demo: generation 'feature_heads' drafts with trained heads, so training cannot be 'none'"
    ]
    head_distilled = _card(generation="feature_heads", training="distillation")
    assert "a head or adapter trained on a frozen target is 'peft'" in facet_problems(head_distilled)[0]
    assert facet_problems(_card(generation="independent_drafter", training="distillation")) == []
    lossy_sampling = _card(acceptance="speculative_sampling", lossless=False)
    assert facet_problems(lossy_sampling) == [
        "demo: lossless is false but acceptance 'speculative_sampling' is lossless; they must agree"
    ]
    hidden_lossless = _card(acceptance="typical", lossless=False, optional_acceptance=["speculative_sampling"])
    assert "offers the lossless speculative_sampling" in facet_problems(hidden_lossless)[0]
    medusa_like = _card(generation="multi_token_heads", training="peft", acceptance="speculative_sampling",
                        optional_acceptance=["typical"])
    assert facet_problems(medusa_like) == []
    with pytest.raises(ValueError, match="repeats the main acceptance"):
        _card(optional_acceptance=["exact_greedy"])


def test_et_al_is_refused_as_an_author():
    assert bibliography_problems(_card(paper={"title": "T", "authors": ["A", "et al."], "year": 2024})) == [
        "demo: 'et al.' is not an author: list the real authors, or the first ones and set authors_truncated: true"
    ]
    truncated = _card(paper={"title": "T", "authors": ["A"], "authors_truncated": True, "year": 2024})
    assert bibliography_problems(truncated) == [] and truncated.paper.author_line == "A, et al."


def test_deployment_and_section_checks_catch_problems(taxonomy):
    assert deployment_problems(_card(scope="system", deployment=["offloading"])) == [
        "demo: deployment tag 'offloading' belongs to the 'distributed' node, so add 'distributed' too"
    ]
    assert "is unknown" in deployment_problems(_card(deployment=["quantum"]))[0]
    broken = taxonomy.model_copy(deep=True)
    for _, node in broken.walk():
        if node.id == "speech":
            node.section_note = None
    assert section_problems(broken) == [
        "node 'speech' shares section VII.B with ['multimodal'] but has no section_note saying why"
    ]


def test_implementation_rule_catches_a_card_that_says_less_than_the_code():
    level2 = _spec(needs=frozenset({Need.target_topk}), tree=True)
    silent = _card(refinement="single_pass_linear", status="preview",
                   implementations=[_impl("specplug_reference"), _impl("vllm_specplug", level=1)])
    problems = registered_problems(silent, level2)
    assert "demo: the specplug_reference entry says needs [], the plugin registers ['target_topk']" in problems
    assert ("demo: the vllm_specplug entry says level 1; it needs ['target_topk'], so level 2") in problems
    assert "demo: the proposer drafts trees, so refinement is 'single_pass_tree'" in problems
    honest = _card(refinement="single_pass_tree", status="preview", implementations=[
        _impl("specplug_reference", needs=["target_topk"]), _impl("vllm_specplug", level=2, needs=["target_topk"])])
    assert registered_problems(honest, level2) == []

    no_vllm = _card(status="preview", implementations=[_impl("specplug_reference")])
    assert registered_problems(no_vllm, _spec()) == [
        "demo: specplug's vLLM adapter runs it (level 1), so the card lists a vllm_specplug entry with level 1"
    ]
    datastore = _spec(options=_NeedsDatastore)
    missing_option = _card(status="preview", implementations=[
        _impl("specplug_reference"), _impl("vllm_specplug", level=1, options={"datstore": "<dir>"})])
    problems = registered_problems(missing_option, datastore)
    assert "demo: the specplug_reference entry must name the required option(s) ['datastore'] in 'options' (with a placeholder value)" in problems
    assert "demo: the vllm_specplug entry names option(s) ['datstore'] that _NeedsDatastore does not have" in problems

    # A need level 2 does not provide (here: a level 2 that provides nothing): no vllm_specplug entry may
    # promise vLLM, and the card without one is right.
    assert vllm_level(level2, level2_needs=frozenset()) is None
    assert any("level 2 does not provide" in p for p in registered_problems(honest, level2, level2_needs=frozenset()))
    reference_only = honest.model_copy(update={"implementations": honest.implementations[:1]})
    assert registered_problems(reference_only, level2, level2_needs=frozenset()) == []
    assert vllm_level(level2) == 2 and vllm_level(_spec()) == 1


def test_plugin_check_catches_a_card_without_a_plugin():
    registry = get_registry()
    promise = Implementation(engine="specplug_reference", package="specplug-demo")
    registry.cards["demo"] = _card(status="preview", implementations=[promise])
    assert plugin_problems(registry) == [
        "demo: the card lists ['specplug_reference'] but no installed plugin registers 'demo' "
        "(install plugins/specplug-demo, or drop the entries)"
    ]


#: specplug's own distributions: the core and every plugin package (what scripts/wheelhouse.sh builds)
DISTRIBUTIONS = {
    tomllib.loads(path.read_text(encoding="utf-8"))["project"]["name"]
    for path in [REPO / "pyproject.toml", *sorted((REPO / "plugins").glob("specplug-*/pyproject.toml"))]
}


def all_quickstart_problems(registry) -> list[str]:
    return [
        problem
        for card in sorted(registry.cards.values(), key=lambda c: c.id)
        for problem in quickstart_problems(
            card, runnable=registry.is_runnable(card.id), verifier=card.id in registry.verifiers, distributions=DISTRIBUTIONS
        )
    ]


def test_exactly_the_runnable_cards_carry_a_quickstart():
    registry = get_registry()
    assert any(card.quickstart for card in registry.cards.values())
    assert all_quickstart_problems(registry) == []


_INSTALL = ["bash scripts/wheelhouse.sh", 'pip install --find-links dist/wheelhouse "specplug[engine]" specplug-demo']
_RUN = 'specplug generate --method demo --model smollm2-135m --compare --json "PROMPT"'


def test_quickstart_check_catches_problems():
    demo = Implementation(engine="specplug_reference", package="specplug-demo")
    card = _card(status="preview", implementations=[demo], quickstart=[*_INSTALL, _RUN])
    known = DISTRIBUTIONS | {"specplug-demo"}

    def problems(card, runnable=True, verifier=False, distributions=known):
        return quickstart_problems(card, runnable=runnable, verifier=verifier, distributions=distributions)

    assert problems(card) == []
    assert problems(card.model_copy(update={"quickstart": []})) == ["demo: a plugin runs it, so the card carries a quickstart"]
    assert problems(card, runnable=False) == [
        "demo: no installed plugin runs it, so it carries no quickstart (only runnable cards do)"
    ]
    assert "not one" in problems(card, distributions=DISTRIBUTIONS)[0]  # specplug-demo is no package of ours
    from_an_index = card.model_copy(update={"quickstart": ["pip install specplug-demo", _RUN]})
    assert any("install from the wheelhouse" in p for p in problems(from_an_index))
    no_build = card.model_copy(update={"quickstart": [_INSTALL[1], _RUN]})
    assert problems(no_build) == ["demo: 'bash scripts/wheelhouse.sh' must come before the first 'pip install'"]
    other_package = card.model_copy(update={"quickstart": [_INSTALL[0], _INSTALL[1].replace("specplug-demo", "specplug-pld"), _RUN]})
    assert problems(other_package) == ["demo: the quickstart does not install specplug-demo, the card's package"]
    assert problems(card.model_copy(update={"quickstart": [_RUN]}))[0].startswith("demo: the quickstart installs nothing")
    as_verifier = _card(scope="verification", generation=None, quickstart=[*_INSTALL[:1], _INSTALL[1].replace("specplug-demo", "specplug-pld"),
                                                                              "specplug generate --method pld --verifier demo --compare --json \"PROMPT\""])
    assert problems(as_verifier, verifier=True) == []
    assert "registered as a method" in problems(as_verifier, verifier=False)[0]


@pytest.mark.parametrize(
    "last, message",
    [
        ('specplug bench --methods demo --compare --json "PROMPT"', "the last quickstart command must be"),
        ('specplug generate --method pld --compare --json "PROMPT"', "the last quickstart command must be"),
        ('specplug generate --method demo --json "PROMPT"', "the last quickstart command must be"),
        ('specplug generate --method demo --compare --json "Hello"', "the last quickstart command must be"),
        ('specplug generate --method demo --compare --json "PROMPT', "does not parse"),
    ],
)
def test_a_quickstart_must_end_by_running_the_card(last, message):
    _card(quickstart=[*_INSTALL, _RUN])  # the well-formed one validates
    with pytest.raises(ValidationError, match=message):
        _card(quickstart=[*_INSTALL, last])


def test_a_quickstart_takes_the_prompt_last_and_one_line_per_command():
    with pytest.raises(ValidationError, match="only the last quickstart command"):
        _card(quickstart=["specplug train data --out PROMPT", _RUN])
    with pytest.raises(ValidationError, match="one non-empty line"):
        _card(quickstart=["bash scripts/wheelhouse.sh\npip install x", _RUN])
