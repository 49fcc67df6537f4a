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
    """What a method needs trained before it runs (the survey marks each method so)."""

    none = "none"
    from_scratch = "from_scratch"
    fine_tune = "fine_tune"
    peft = "peft"
    distillation = "distillation"


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


_ARXIV_RE = re.compile(r"^\d{4}\.\d{4,5}$")
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=False)


class Paper(_Strict):
    """The publication a card cites."""

    title: str = Field(description="Title as published.")
    authors: list[str] = Field(min_length=1, description="Author names; 'et al.' may close a long list.")
    year: int = Field(ge=1990, le=2100, description="Year of the first public version.")
    venue: str | None = Field(default=None, description="Venue (conference or journal), or 'arXiv' for preprints.")
    arxiv: str | None = Field(default=None, description="arXiv identifier such as '2211.17192', without version.")
    url: str | None = Field(default=None, description="Link when the paper is not on arXiv.")

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
    notes: str | None = Field(default=None, description="Limits or conditions, in a sentence.")

    @model_validator(mode="after")
    def _native_needs_method(self) -> Implementation:
        if self.engine is Engine.vllm_native and not self.vllm_method:
            raise ValueError("a vllm_native implementation must name its vllm_method")
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
    acceptance: AcceptanceRule = Field(description="The acceptance rule of the verification.")
    lossless: bool = Field(description="Whether the output distribution equals the target model's.")
    training: TrainingCost = Field(description="What must be trained before the method runs.")
    modalities: list[Modality] = Field(default_factory=lambda: [Modality.text], min_length=1, description="Modalities it was shown on.")
    paper: Paper | None = Field(default=None, description="The publication that introduced it.")
    survey_section: str | None = Field(
        default=None, description="Section of arXiv 2502.19732 that files it, e.g. 'IV.B'; null when the survey does not."
    )
    implementations: list[Implementation] = Field(
        default_factory=list, description="Engines that run it today; empty when none does yet."
    )
    deployment: list[str] = Field(default_factory=list, description="Deployment notes: edge, distributed, hardware.")
    aliases: list[str] = Field(default_factory=list, description="Other names users may type.")
    related: list[str] = Field(default_factory=list, description="Ids of related cards.")
    status: Status = Field(default=Status.catalogued, description="Maturity of specplug's implementation.")

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
        return self

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
