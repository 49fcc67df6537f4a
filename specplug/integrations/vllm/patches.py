"""The level 2 patches (vLLM 0.32's V1 model runner), each a thin wrapper around one method.

1. ``GPUModelRunner.__init__``: after vLLM builds the runner, build the specplug verifier named in
   ``additional_config["specplug"]["verifier"]`` (so bad verifier ids or options fail at engine start)
   and hand it to the runner's rejection sampler.
2. ``GPUModelRunner._update_states``: forward ``scheduler_output.finished_req_ids`` (finished or
   aborted requests) to the specplug drafter's ``finish_requests`` (Need.request_lifecycle).
3. ``GPUModelRunner.propose_draft_token_ids``: before vLLM calls the drafter, bind the batch's
   real request ids and prompt lengths to it (``bind_batch``; the adapter then starts requests on
   first sight instead of guessing by fingerprint).
4. ``GPUModelRunner._sample``: when the drafter's method needs ``target_topk`` or
   ``target_predictions``, take the target's top-k ids at the root and at every draft position
   before sampling, and after verification send each request a ``StepFeedback`` (the drafter's
   ``observe``).
5. ``RejectionSampler.forward``: when a specplug verifier is configured, verify each request's chain
   with it instead of vLLM's rejection sampler (with vLLM's draft probabilities as ``q`` when it gives them), and return the same output layout
   (``[batch, max_spec_len + 1]`` token ids, ``-1`` after the emitted tokens). Before verifying, the
   target's logits go through the same vLLM code its rejection sampler runs: penalties (repetition,
   frequency, presence), bad words, ``min_tokens`` and ``allowed_token_ids`` at the draft positions,
   the sampler's own processing at the bonus position. A draft's padding (``-1``: vLLM pads the drafts
   a grammar cut) ends the chain: no draft there.
6. ``InputProcessor._validate_params`` (the front end): while a specplug verifier is configured,
   refuse requests that ask for what the hook cannot give (logprobs) with a clear error, before
   they reach the engine; other requests are untouched.

Every wrapper is marked; :func:`apply` refuses to wrap a method twice. CPU (``CPUModelRunner``)
inherits all of these from ``GPUModelRunner``. The wrappers reach the specplug drafter only through
its public level-2 methods (``bind_batch``, ``finish_requests``, ``is_live``, ``observe``).
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from specplug.protocols import Draft, Need, SamplingParams, StepFeedback

__all__ = ["apply", "DEFAULT_TOPK", "refusal"]

from specplug.integrations.vllm.level2_state import get_logger

logger = get_logger()

MARK = "__specplug_patched__"
DEFAULT_TOPK = 8
PLACEHOLDER = Draft.PADDING  # vLLM's PLACEHOLDER_TOKEN_ID in rejection_sampler.py


def _wrap(owner: type, name: str, make) -> None:
    original = getattr(owner, name)
    if getattr(original, MARK, False):
        raise RuntimeError(f"{owner.__name__}.{name} is already patched by specplug; refusing to patch it twice")
    wrapper = functools.wraps(original)(make(original))
    setattr(wrapper, MARK, True)
    setattr(owner, name, wrapper)


def _specplug_drafter(runner: Any):
    from specplug.integrations.vllm.adapter import SpecplugProposerBase

    drafter = getattr(runner, "drafter", None)
    return drafter if isinstance(drafter, SpecplugProposerBase) else None


def apply() -> frozenset[Need]:
    """Patch vLLM once; returns the needs level 2 now provides."""
    from vllm.v1.engine.input_processor import InputProcessor
    from vllm.v1.sample.rejection_sampler import RejectionSampler
    from vllm.v1.worker.gpu_model_runner import GPUModelRunner

    if getattr(GPUModelRunner._update_states, MARK, False):
        return frozenset({Need.request_lifecycle, Need.target_topk, Need.target_predictions})

    def init(original):
        def __init__(self, vllm_config, *args, **kwargs):
            original(self, vllm_config, *args, **kwargs)
            from specplug.integrations.vllm.adapter import specplug_section

            section = specplug_section(vllm_config)
            sampler = getattr(self, "rejection_sampler", None)
            if section.get("verifier") and sampler is not None:
                sampler._specplug_verifier = build_verifier(section["verifier"], section.get("verifier_options"))
                logger.info("specplug verifier %r replaces vLLM's rejection sampler", section["verifier"])
            self._specplug_topk = int(section.get("topk") or DEFAULT_TOPK)

        return __init__

    def update_states(original):
        def _update_states(self, scheduler_output, *args, **kwargs):
            drafter = _specplug_drafter(self)
            if drafter is not None:
                drafter.finish_requests(scheduler_output.finished_req_ids)
            return original(self, scheduler_output, *args, **kwargs)

        return _update_states

    def propose(original):
        def propose_draft_token_ids(self, *args, **kwargs):
            drafter = _specplug_drafter(self)
            if drafter is not None:
                drafter.bind_batch(self.input_batch.req_ids, self.input_batch.num_prompt_tokens)
            drafts = original(self, *args, **kwargs)
            if drafter is not None and drafter.trace is not None:
                drafter.trace.drafts(self.input_batch.req_ids, drafts)
            return drafts

        return propose_draft_token_ids

    def sample(original):
        def _sample(self, logits, spec_decode_metadata, *args, **kwargs):
            drafter = _specplug_drafter(self)
            wants = drafter is not None and bool({Need.target_topk, Need.target_predictions} & drafter.spec.needs)
            if not wants or logits is None:
                return original(self, logits, spec_decode_metadata, *args, **kwargs)
            k = min(getattr(self, "_specplug_topk", DEFAULT_TOPK), logits.shape[-1])
            # [num_logits, k]: taken before sampling, which may change logits in place
            topk = logits.topk(k, dim=-1).indices.cpu().numpy()
            output = original(self, logits, spec_decode_metadata, *args, **kwargs)
            _observe(self, drafter, topk, spec_decode_metadata, output.sampled_token_ids)
            return output

        return _sample

    def forward(original):
        def rejection_forward(self, metadata, draft_probs, logits, sampling_metadata, *args, **kwargs):
            verifier = getattr(self, "_specplug_verifier", None)
            if verifier is None:
                return original(self, metadata, draft_probs, logits, sampling_metadata, *args, **kwargs)
            if sampling_metadata.max_num_logprobs is not None:  # refused at the front end; never crash here
                _warn_once("logprobs", "a batch asked for logprobs; vLLM's rejection sampler verifies it instead")
                return original(self, metadata, draft_probs, logits, sampling_metadata, *args, **kwargs)
            return _verify_with(self, verifier, metadata, logits, sampling_metadata, draft_probs)

        return rejection_forward

    def validate(original):
        def _validate_params(self, params, *args, **kwargs):
            result = original(self, params, *args, **kwargs)
            from specplug.integrations.vllm.adapter import specplug_section

            verifier = specplug_section(self.vllm_config).get("verifier")
            problem = refusal(params, verifier) if verifier else None
            if problem:  # a client error: the OpenAI server answers 400 with this message
                try:
                    from vllm.exceptions import VLLMValidationError
                except ImportError:  # older vLLM: ValueError maps to 400 as well
                    raise ValueError(problem) from None
                raise VLLMValidationError(problem, parameter="logprobs")
            return result

        return _validate_params

    _wrap(GPUModelRunner, "__init__", init)
    _wrap(GPUModelRunner, "_update_states", update_states)
    _wrap(GPUModelRunner, "propose_draft_token_ids", propose)
    _wrap(GPUModelRunner, "_sample", sample)
    _wrap(RejectionSampler, "forward", forward)
    _wrap(InputProcessor, "_validate_params", validate)
    return frozenset({Need.request_lifecycle, Need.target_topk, Need.target_predictions})


def build_verifier(verifier_id: str, options: dict | None):
    """The registered verifier, with validated options (errors name the fix)."""
    from specplug.registry import get_registry

    return get_registry().verifier(verifier_id).build(options or {})


def _rows(metadata: Any, batch: int) -> list[tuple[int, int]]:
    """Per request ``(first draft index, number of drafts)`` into the flattened draft tensors."""
    counts = list(metadata.num_draft_tokens) if metadata is not None else [0] * batch
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(int) if counts else []
    return list(zip((int(s) for s in starts), counts))


def _logit_rows(metadata: Any, i: int, start: int, n: int) -> list[int]:
    """Indices into ``logits`` of request ``i``'s root/draft positions and its bonus position."""
    targets = metadata.target_logits_indices[start : start + n].tolist()
    return targets + [int(metadata.bonus_logits_indices[i])]


def _observe(runner: Any, drafter: Any, topk: np.ndarray, metadata: Any, sampled: Any) -> None:
    """Send each request its StepFeedback with the target's top-k at root and every draft node."""
    num_reqs = runner.input_batch.num_reqs
    req_ids = runner.input_batch.req_ids[:num_reqs]
    discard = runner.discard_request_mask.np[:num_reqs]
    tokens = sampled.cpu().numpy() if hasattr(sampled, "cpu") else np.asarray(sampled)
    for i, (start, n) in enumerate(_rows(metadata, num_reqs)):
        request_id = req_ids[i]
        if request_id is None or discard[i] or not drafter.is_live(request_id):
            continue
        if metadata is None:
            rows = [i]  # no spec step: one logit row per request
            draft = Draft.empty()
        else:
            draft = Draft.chain(metadata.draft_token_ids[start : start + n].cpu().numpy())
            draft = draft.without_invalid(drafter.vocab_size) if drafter.vocab_size else draft  # padding: no draft
            rows = _logit_rows(metadata, i, start, n)[: len(draft) + 1]
        emitted = [int(t) for t in tokens[i] if t != PLACEHOLDER]
        feedback = StepFeedback(
            request_id=request_id,
            draft=draft,
            accepted_nodes=list(range(max(0, len(emitted) - 1))),
            emitted=emitted,
            target_predictions=topk[rows, 0],
            target_topk=topk[rows],
        )
        drafter.observe(feedback)


def refusal(params: Any, verifier: str) -> str | None:
    """Why the verifier hook cannot serve a request with these sampling parameters (None: it can).

    vLLM itself refuses ``min_p`` and ``logit_bias`` with speculative decoding; penalties, bad words,
    ``min_tokens`` and ``allowed_token_ids`` are applied (see :func:`_verify_with`).
    """
    if getattr(params, "logprobs", None) is not None:
        return (
            f"logprobs are not supported while the specplug verifier {verifier!r} replaces vLLM's rejection "
            "sampler; drop logprobs from the request, or start the server without "
            'additional_config["specplug"]["verifier"]'
        )
    return None


_warned: set[str] = set()


def _warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        logger.warning("specplug verifier hook: %s", message)


def _verify_with(sampler: Any, verifier: Any, metadata: Any, logits: Any, sampling_metadata: Any, draft_probs: Any = None):
    """vLLM's rejection sampler replaced by a specplug Verifier, one request at a time.

    The target rows first go through vLLM's own logits processing, exactly as in
    ``RejectionSampler.forward``: ``sampler.apply_logits_processors`` at the draft positions (with the
    drafts counted as outputs for penalties and bad words), the sampler's at the bonus position.
    Temperature, top-k and top-p are the verifier's to apply. ``draft_probs`` (``[num_draft_tokens, V]``,
    given when vLLM samples drafts with ``draft_sample_method: probabilistic``) become each chain's
    :attr:`Draft.probs`, the ``q`` of speculative sampling and block verification; without them the
    drafts are deterministic proposals (``q`` one-hot), as in vLLM's own rejection sampler.
    """
    import torch
    from vllm.v1.outputs import SamplerOutput

    batch = len(metadata.num_draft_tokens)
    out = torch.full((batch, metadata.max_spec_len + 1), PLACEHOLDER, dtype=torch.int32, device=logits.device)
    # [num_draft_tokens, V] and [batch, V], float32 copies (logits is not changed)
    at_drafts = sampler.apply_logits_processors(
        logits[metadata.target_logits_indices].to(torch.float32), sampling_metadata, metadata
    )
    at_bonus = sampler.sampler.apply_logits_processors(
        logits[metadata.bonus_logits_indices].to(torch.float32), sampling_metadata, True
    )
    vocab = logits.shape[-1]
    temperature = None if sampling_metadata.all_greedy else sampling_metadata.temperature
    top_p, top_k = sampling_metadata.top_p, sampling_metadata.top_k
    generators = sampling_metadata.generators
    for i, (start, n) in enumerate(_rows(metadata, batch)):
        q = None if draft_probs is None else draft_probs[start : start + n].to(torch.float64).cpu().numpy()
        draft = Draft.chain(metadata.draft_token_ids[start : start + n].cpu().numpy(), q).without_invalid(vocab)
        kept = len(draft)  # padding ends the chain: verify only the drafts before it
        # the root and each draft position (at_drafts), then the bonus position (at_bonus); with padding
        # after ``kept`` drafts, the padding's position is the bonus position
        target = torch.cat([at_drafts[start : start + n], at_bonus[i : i + 1]])[: kept + 1]  # [kept + 1, V]
        params = SamplingParams(
            temperature=0.0 if temperature is None else max(0.0, float(temperature[i])),
            top_p=1.0 if top_p is None else float(top_p[i]),
            top_k=0 if top_k is None else max(0, int(top_k[i])),
        )
        if params.temperature < 1e-5:
            params = SamplingParams()
        result = verifier.verify(target, draft, params, generators.get(i))
        emitted = result.tokens[: kept + 1]
        out[i, : len(emitted)] = torch.tensor(emitted, dtype=torch.int32)
    return SamplerOutput(sampled_token_ids=out, logprobs_tensors=None)
