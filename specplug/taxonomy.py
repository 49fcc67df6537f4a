"""The survey's taxonomy as typed metadata.

"Speculative Decoding and Beyond" (arXiv 2502.19732) orders methods by how they *generate* candidate
tokens and how they *refine* (verify) them. This module is the only place those facets are defined:
the catalogue cards under ``registry/``, the plugins, the CLI filters and the docs site all read
these types.

Classes:

- :class:`GenerationStrategy`, :class:`RefinementStrategy`, :class:`AcceptanceRule`,
  :class:`TrainingCost`, :class:`Modality`, :class:`Scope`, :class:`Status`, :class:`Engine`:
  closed enums, one per facet.
- :class:`Paper`: the publication a card cites.
- :class:`Implementation`: one engine that runs the method, and how to select it there.
- :class:`MethodCard`: one catalogue entry.
- :class:`TaxonomyNode` / :class:`Taxonomy`: the survey's category tree with our descriptions.
"""

from __future__ import annotations

import re
import shlex
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "AcceptanceRule",
    "Engine",
    "GenerationStrategy",
    "Implementation",
    "MethodCard",
    "Modality",
    "Paper",
    "RefinementStrategy",
    "Scope",
    "Status",
    "Taxonomy",
    "TaxonomyNode",
    "TrainingCost",
    "FACETS",
    "DEPLOYMENT_TAGS",
    "LOSSLESS_ACCEPTANCE",
    "LOSSLESS_RULE",
    "QUICKSTART_PROMPT",
    "TRAINING_ORDER",
    "TRAINING_RULE",
]


class GenerationStrategy(StrEnum):
    """How candidate tokens are produced (survey Sec. IV)."""

    predefined_fill = "predefined_fill"
    """Fill tokens refined in parallel by the target itself (Jacobi, Lookahead, CLLM)."""
    retrieval = "retrieval"
    """Continuations retrieved from a datastore (REST, LLMA)."""
    ngram = "ngram"
    """N-grams from the context or an online table (PLD, ANPD, SuffixDecoding)."""
    independent_drafter = "independent_drafter"
    """A separate, smaller autoregressive model (SpS, BiLD, DistillSpec)."""
    layer_skip = "layer_skip"
    """The target with layers skipped or exited early (Draft&Verify, LayerSkip, Kangaroo)."""
    feature_heads = "feature_heads"
    """A light head autoregressive over the target's features (EAGLE, Hydra, Falcon)."""
    multi_token_heads = "multi_token_heads"
    """Extra heads predicting several future tokens at once (Medusa, Blockwise, MTP)."""


class RefinementStrategy(StrEnum):
    """How candidates are checked (survey Sec. V)."""

    single_pass_linear = "single_pass_linear"
    """One target forward verifies a chain of drafted tokens."""
    single_pass_tree = "single_pass_tree"
    """One target forward verifies a token tree with a tree attention mask."""
    iterative = "iterative"
    """Candidates are repaired over several passes until a fixed point (Jacobi, CLLM)."""


class AcceptanceRule(StrEnum):
    """The rule that decides which drafted tokens are kept."""

    exact_greedy = "exact_greedy"
    """Keep a token while it equals the target's argmax (lossless under greedy decoding)."""
    speculative_sampling = "speculative_sampling"
    """Accept with min(1, p/q), else resample from norm(max(0, p - q)) (lossless)."""
    typical = "typical"
    """Medusa's typical acceptance: keep tokens the target finds plausible enough (lossy)."""
    relaxed = "relaxed"
    """Any other acceptance that trades exactness for speed (lossy)."""
    block = "block"
    """Block verification (Sun et al.): accept a block jointly; lossless, never worse than token-wise."""


class TrainingCost(StrEnum):
    """What a method needs trained before it runs (the survey marks each method so).

    The value is decided by *what* gets trained, never by the loss it is trained with (most heads are
    trained on the target's own outputs, which is a kind of distillation, and are still ``peft``).
    See :data:`TRAINING_RULE`; ``tests/test_catalogue.py`` checks the parts of it a card's other facets
    make checkable.
    """

    none = "none"
    """Nothing: existing weights only (the target, or an off-the-shelf smaller model of its family)."""
    peft = "peft"
    """New parameters (draft heads, adapters, early-exit heads, learned lookahead embeddings, LoRA) are
    trained while the model they attach to stays frozen, whatever the loss."""
    distillation = "distillation"
    """A standalone draft model (one that reads token ids only, not the target's hidden states) is
    trained to agree with the target."""
    fine_tune = "fine_tune"
    """The weights of an existing model (the target, or a pretrained drafter) are updated, wholly or
    mostly; continual pre-training counts here."""
    from_scratch = "from_scratch"
    """A model is pre-trained from random initialisation with the method's objective (MTP heads trained
    with the model, a draft model pre-trained for the purpose)."""


#: Training costs from cheapest to dearest: a card whose paper offers several recipes records the
#: cheapest one the paper reports results for.
TRAINING_ORDER: tuple[TrainingCost, ...] = (
    TrainingCost.none, TrainingCost.peft, TrainingCost.distillation, TrainingCost.fine_tune, TrainingCost.from_scratch,
)

TRAINING_RULE = (
    "What must be trained before the method runs, decided by what is trained (not by the loss): "
    "'none' = existing weights only (the target, or an off-the-shelf smaller model of its family); "
    "'peft' = new parameters (heads, adapters, early-exit heads, lookahead embeddings, LoRA) trained on a "
    "frozen model, whatever the loss, so every head that reads the target's hidden states is 'peft' unless "
    "the target itself is trained; 'distillation' = a standalone draft model (token ids in, no target hidden "
    "states) trained to agree with the target; 'fine_tune' = an existing model's weights updated (continual "
    "pre-training included); 'from_scratch' = a model pre-trained from random initialisation for the method. "
    "When the paper offers several recipes (Medusa-1 and Medusa-2; LayerSkip's pre-training and fine-tuning), "
    "record the cheapest it reports results for, in the order none < peft < distillation < fine_tune < from_scratch."
)

LOSSLESS_RULE = (
    "Whether the method's acceptance keeps the output distribution equal to the target's (greedy: the same "
    "tokens as plain greedy decoding). It must agree with 'acceptance': true exactly for exact_greedy, "
    "speculative_sampling and block. When a method offers a lossless and a lossy acceptance as alternatives "
    "(Medusa: standard verification, or typical acceptance), the card names the lossless one in 'acceptance', "
    "sets lossless true and lists the lossy one in 'optional_acceptance'. When the lossy rule is the method's "
    "contribution (LANTERN, BiLD, FLy), the card is lossy even if one parameter setting recovers standard "
    "verification."
)


class Modality(StrEnum):
    text = "text"
    image = "image"
    speech = "speech"
    multimodal = "multimodal"
    recommendation = "recommendation"


class Scope(StrEnum):
    """What part of the pipeline the method contributes."""

    method = "method"
    """A complete generation-refinement method (a drafter with its verification)."""
    verification = "verification"
    """A refinement rule that works with any drafter."""
    system = "system"
    """System-level deployment: parallel, distributed, edge or hardware (survey Sec. VI)."""
    application = "application"
    """An adaptation to another modality or task (survey Sec. VII)."""


class Status(StrEnum):
    stable = "stable"
    preview = "preview"
    deprecated = "deprecated"
    catalogued = "catalogued"
    """Described in the catalogue, no implementation in specplug yet."""


class Engine(StrEnum):
    """An engine that can run a method."""

    specplug_reference = "specplug_reference"
    """specplug's own PyTorch reference engine."""
    vllm_specplug = "vllm_specplug"
    """vLLM through specplug's custom_class adapter (``specplug.vllm.<id>``)."""
    vllm_native = "vllm_native"
    """A method vLLM ships itself, selected by its own ``method`` name."""
    other = "other"
    """Another engine or the authors' code (see the notes)."""


#: Acceptance rules that keep the target's output distribution (see :data:`LOSSLESS_RULE`).
LOSSLESS_ACCEPTANCE = frozenset({AcceptanceRule.exact_greedy, AcceptanceRule.speculative_sampling, AcceptanceRule.block})

#: The placeholder a card's quickstart ends with, where the user types a prompt.
QUICKSTART_PROMPT = "PROMPT"

_ARXIV_RE = re.compile(r"^\d{4}\.\d{4,5}$")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class Paper(_Strict):
    """The publication a card cites."""

    title: str = Field(description="Title as published.")
    authors: list[str] = Field(
        min_length=1,
        description="Author names as published, in order. Never 'et al.': when the list is not complete, "
        "set authors_truncated (specplug.catalogue_checks.bibliography_problems checks it).",
    )
    authors_truncated: bool = Field(
        default=False, description="True when 'authors' lists only the first authors (the full list was not checked)."
    )
    year: int = Field(ge=1990, le=2100, description="Year of the first public version.")
    venue: str | None = Field(default=None, description="Venue (conference or journal), or 'arXiv' for preprints.")
    arxiv: str | None = Field(default=None, description="arXiv identifier such as '2211.17192', without version.")
    url: str | None = Field(default=None, description="Link when the paper is not on arXiv, or its venue page (OpenReview).")
    note: str | None = Field(
        default=None, description="What about this reference could not be verified, or where versions differ."
    )

    @field_validator("arxiv")
    @classmethod
    def _check_arxiv(cls, value: str | None) -> str | None:
        if value is not None and not _ARXIV_RE.match(value):
            raise ValueError(f"arXiv id {value!r} is not of the form YYMM.NNNNN (drop any 'v2' suffix)")
        return value

    @property
    def link(self) -> str | None:
        """The arXiv abstract page, or the given url."""
        return f"https://arxiv.org/abs/{self.arxiv}" if self.arxiv else self.url

    @property
    def venue_label(self) -> str:
        """The venue with its year once: 'ICML 2024' as given, 'arXiv 2024' for a venue without a year,
        the year alone without a venue. (``year`` is the first public version, which may precede the venue's.)"""
        if not self.venue:
            return str(self.year)
        return self.venue if re.search(r"\b(19|20)\d\d\b", self.venue) else f"{self.venue} {self.year}"

    @property
    def author_line(self) -> str:
        """Authors joined by commas, closed by 'et al.' when the list is truncated."""
        return ", ".join(self.authors) + (", et al." if self.authors_truncated else "")


class Implementation(_Strict):
    """One engine that runs the method today, and how to select it there."""

    engine: Engine = Field(description="Which engine runs the method.")
    package: str | None = Field(default=None, description="The pip distribution that provides it, e.g. 'specplug-pld'.")
    vllm_method: str | None = Field(
        default=None, description="For vllm_native: the value of speculative-config 'method' (ngram, suffix, eagle, ...)."
    )
    config: dict[str, Any] = Field(
        default_factory=dict, description="Extra speculative-config fields that select the method in that engine."
    )
    level: int | None = Field(
        default=None,
        ge=1,
        le=2,
        description="For vllm_specplug: 1 when vLLM's custom_class proposer alone runs it; 2 when it needs specplug's "
        "level 2 plugin (SPECPLUG_VLLM_LEVEL2=1), which is the case exactly when the method declares needs.",
    )
    needs: list[str] = Field(
        default_factory=list,
        description="For specplug engines: what the method needs from the engine beyond token ids "
        "(specplug.protocols.Need values), as its plugin registers them.",
    )
    options: dict[str, Any] = Field(
        default_factory=dict,
        description="For specplug engines: the method options it cannot start without (its options model's required "
        "fields), with a placeholder value; in vLLM they go in --additional-config '{\"specplug\": {\"options\": ...}}'.",
    )
    notes: str | None = Field(default=None, description="Limits or conditions, in a sentence.")

    @model_validator(mode="after")
    def _native_needs_method(self) -> Implementation:
        if self.engine is Engine.vllm_native and not self.vllm_method:
            raise ValueError("a vllm_native implementation must name its vllm_method")
        if self.engine is not Engine.vllm_specplug and self.level is not None:
            raise ValueError("'level' applies to vllm_specplug implementations only")
        ours = (Engine.specplug_reference, Engine.vllm_specplug)
        if self.engine not in ours and (self.needs or self.options):
            raise ValueError("'needs' and 'options' describe specplug implementations only")
        return self


class MethodCard(_Strict):
    """One entry of the catalogue: a method and its facets."""

    id: str = Field(description="Stable snake_case identifier, used on the command line and in vLLM paths.")
    name: str = Field(description="Display name, e.g. 'Prompt Lookup Decoding'.")
    summary: str = Field(description="One or two sentences in our own words: what the method does.")
    scope: Scope = Field(default=Scope.method, description="What part of the pipeline the method contributes.")
    generation: GenerationStrategy | None = Field(
        description="How candidates are produced; null for a refinement rule that takes any drafter."
    )
    refinement: RefinementStrategy = Field(description="How candidates are verified.")
    acceptance: AcceptanceRule = Field(
        description="The acceptance rule of the verification; the lossless one when the method offers both."
    )
    optional_acceptance: list[AcceptanceRule] = Field(
        default_factory=list,
        description="Other acceptance rules the method offers as options (Medusa's typical acceptance).",
    )
    lossless: bool = Field(description=LOSSLESS_RULE)
    training: TrainingCost = Field(description=TRAINING_RULE)
    modalities: list[Modality] = Field(default_factory=lambda: [Modality.text], min_length=1, description="Modalities it was shown on.")
    paper: Paper | None = Field(default=None, description="The publication that introduced it.")
    survey_section: str | None = Field(
        default=None, description="Section of arXiv 2502.19732 that files it, e.g. 'IV.B'; null when the survey does not."
    )
    implementations: list[Implementation] = Field(
        default_factory=list, description="Engines that run it today; empty when none does yet."
    )
    deployment: list[str] = Field(
        default_factory=list,
        description="Deployment tags: the system node it belongs to (parallel, distributed, hardware) plus details "
        "from DEPLOYMENT_TAGS; every detail tag implies its node's tag.",
    )
    caveats: str | None = Field(
        default=None,
        description="What on this card could not be checked against the paper or the survey, and why; "
        "written instead of guessing.",
    )
    aliases: list[str] = Field(default_factory=list, description="Other names users may type.")
    related: list[str] = Field(default_factory=list, description="Ids of related cards.")
    status: Status = Field(default=Status.catalogued, description="Maturity of specplug's implementation.")
    quickstart: list[str] = Field(
        default_factory=list,
        description="For a runnable card (and only those): the shell commands, one per line, that take a new user "
        "from a checkout of specplug to a run of the method on SmolLM2: install, then whatever the method needs "
        "(derive a draft, train a head with --budget tiny, build a datastore, calibrate), ending in "
        "'specplug generate --method ID ... --compare --json \"PROMPT\"' ('--verifier ID' for a verifier), with "
        "PROMPT a literal placeholder. The full test tier runs every card's quickstart as printed.",
    )

    @field_validator("quickstart")
    @classmethod
    def _check_quickstart_lines(cls, value: list[str]) -> list[str]:
        for command in value:
            if not command.strip() or "\n" in command:
                raise ValueError(f"quickstart command {command!r} must be one non-empty line")
            try:
                shlex.split(command)
            except ValueError as err:
                raise ValueError(f"quickstart command {command!r} does not parse as a shell command: {err}") from None
        return value

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        if not _ID_RE.match(value):
            raise ValueError(f"id {value!r} must be snake_case: lower-case letters, digits and '_', starting with a letter")
        return value

    @model_validator(mode="after")
    def _check_consistency(self) -> MethodCard:
        lossy_rules = {AcceptanceRule.typical, AcceptanceRule.relaxed}
        if self.lossless and self.acceptance in lossy_rules:
            raise ValueError(f"acceptance {self.acceptance.value!r} is lossy, so 'lossless' must be false")
        if self.scope is Scope.method and self.generation is None:
            raise ValueError("a card of scope 'method' must name its generation strategy")
        if self.acceptance in self.optional_acceptance:
            raise ValueError(f"optional_acceptance repeats the main acceptance {self.acceptance.value!r}")
        if self.quickstart:
            self._check_quickstart_ending()
        return self

    def _check_quickstart_ending(self) -> None:
        """The last command is the run itself: ``specplug generate`` of this card's id (``--method ID``, or
        ``--verifier ID`` for a verifier) with ``--compare --json`` and the prompt placeholder last."""
        *setup, last = self.quickstart
        words = shlex.split(last)
        pairs = set(zip(words, words[1:]))
        wanted = f'specplug generate --method {self.id} ... --compare --json "{QUICKSTART_PROMPT}"'
        if (
            words[:2] != ["specplug", "generate"]
            or not ({("--method", self.id), ("--verifier", self.id)} & pairs)
            or not {"--compare", "--json"} <= set(words)
            or not last.rstrip().endswith(f'"{QUICKSTART_PROMPT}"')
        ):
            raise ValueError(f"the last quickstart command must be {wanted} ('--verifier {self.id}' for a verifier), got {last!r}")
        if any(QUICKSTART_PROMPT in shlex.split(command) for command in setup):
            raise ValueError(f"only the last quickstart command takes the {QUICKSTART_PROMPT} placeholder")

    @property
    def engines(self) -> set[Engine]:
        return {impl.engine for impl in self.implementations}

    def native_vllm(self) -> Implementation | None:
        """The vLLM-native implementation, when vLLM ships the method itself."""
        return next((i for i in self.implementations if i.engine is Engine.vllm_native), None)


class TaxonomyNode(_Strict):
    """One category of the survey's tree."""

    id: str = Field(description="Category id; for facet values it equals the enum value.")
    title: str = Field(description="Display title.")
    facet: str | None = Field(default=None, description="The card field this node filters on, e.g. 'generation'.")
    value: str | None = Field(default=None, description="The facet value cards carry to fall under this node.")
    survey_section: str | None = Field(default=None, description="Section of arXiv 2502.19732.")
    section_note: str | None = Field(
        default=None,
        description="Why the section is shared with another node, or what about it could not be checked "
        "against the survey's text.",
    )
    description: str = Field(description="A short paragraph in our own words.")
    children: list[TaxonomyNode] = Field(default_factory=list, description="Sub-categories.")

    def walk(self, depth: int = 0):
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)


class Taxonomy(_Strict):
    """The survey's category tree (``registry/taxonomy.yaml``)."""

    title: str
    source: Paper
    roots: list[TaxonomyNode]

    def walk(self):
        for root in self.roots:
            yield from root.walk()


#: Deployment tags a card may carry, each mapped to the system node (survey Sec. VI) it belongs to; a card
#: with a detail tag must also carry its node's tag, so the node lists it.
DEPLOYMENT_TAGS: dict[str, str] = {
    "parallel": "parallel",
    "distributed": "distributed",
    "hardware": "hardware",
    "edge": "distributed",
    "offloading": "distributed",
    "cpu_gpu": "distributed",
    "batching": "hardware",
    "scheduling": "hardware",
    "pim": "hardware",
    "long_context": "hardware",
    "pipeline": "hardware",
}

#: Facets a card can be filtered on from the CLI, with the enum of their values.
FACETS: dict[str, type[StrEnum]] = {
    "generation": GenerationStrategy,
    "refinement": RefinementStrategy,
    "acceptance": AcceptanceRule,
    "training": TrainingCost,
    "modality": Modality,
    "scope": Scope,
    "status": Status,
    "engine": Engine,
}
