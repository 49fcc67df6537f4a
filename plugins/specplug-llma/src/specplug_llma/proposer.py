"""LLMA: copy a span from reference text once the recent output matches it.

Yang, Ge, Wang, Jiao, Jiang, Yang, Majumder, Wei, "Inference with Reference: Lossless Acceleration of
Large Language Models" (arXiv 2304.04487). The output of a model that reads retrieved documents or
earlier turns often repeats spans of them. LLMA's decoding loop (its authors' ``llma_generate``):

- the *trigger*: the last ``n`` tokens of the **generated output** (never the prompt itself) occur as
  an n-gram in the reference; ``n`` is tried from ``max_trigger`` down to ``trigger`` (the paper's
  ``n``; at least ``trigger`` output tokens must exist, so the first ``trigger - 1`` steps never copy);
- the first occurrence in the reference wins (documents in order, positions in order);
- the ``k`` tokens that follow it in the reference (not past the end of its document) are copied as
  the draft, and the target checks them in one forward (greedy: kept while equal to its argmax).

The reference is the request's prompt (``reference=None``: RAG documents and earlier turns are in the
prompt) or a fixed token file (``reference``: a .npy array of token ids with -1 between documents, or
a REST datastore directory holding one as tokens.npy). No state is kept per request: each step scans
the reference once in compiled code, as vLLM's own ngram kernel scans the history.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit
from pydantic import Field, field_validator, model_validator

from specplug.methods import MethodOptions
from specplug.protocols import BaseProposer, Draft, ProposalRequest

__all__ = ["LlmaOptions", "LlmaProposer", "copy_from_reference", "load_reference"]

_NO_REFERENCE = np.full(1, -1, dtype=np.int32)


@njit(cache=True, nogil=True)
def _copy(tokens, n, out_start, ref, ref_len, trigger, max_trigger, limit, out):  # pragma: no cover - compiled
    """Draft length written into ``out``: the continuation of the first reference match of the longest
    trigger (``tokens[n - m:n]`` with ``m`` output tokens, ``out_start`` = first output position)."""
    generated = n - out_start
    top = min(max_trigger, generated)
    for m in range(top, trigger - 1, -1):
        for j in range(0, ref_len - m + 1):
            ok = True
            for d in range(m):
                if ref[j + d] != tokens[n - m + d]:
                    ok = False
                    break
            if ok:
                count = 0
                while count < limit and j + m + count < ref_len and ref[j + m + count] >= 0:
                    out[count] = ref[j + m + count]
                    count += 1
                return count
    return 0


@njit(cache=True, nogil=True)
def _copy_rows(token_ids, lengths, max_tokens, prompt_lens, ref, use_prompt, trigger, max_trigger, out, counts):  # pragma: no cover
    for row in range(token_ids.shape[0]):
        limit = max_tokens[row]
        if limit <= 0:
            continue
        tokens = token_ids[row]
        if use_prompt:
            counts[row] = _copy(tokens, lengths[row], prompt_lens[row], tokens, prompt_lens[row], trigger, max_trigger, limit, out[row])
        else:
            counts[row] = _copy(tokens, lengths[row], prompt_lens[row], ref, ref.shape[0], trigger, max_trigger, limit, out[row])


def copy_from_reference(tokens, num_prompt_tokens: int, reference, trigger: int, max_trigger: int, max_tokens: int) -> np.ndarray:
    """The copied draft (int64) for committed ``tokens`` whose first ``num_prompt_tokens`` are the prompt.

    ``reference=None`` copies from the prompt.

    >>> prompt = [7, 1, 2, 3, 4, 5, 6]
    >>> copy_from_reference(prompt + [9, 2], 7, None, 1, 5, 3).tolist()  # output "... 2": copy what followed 2
    [3, 4, 5]
    >>> copy_from_reference(prompt + [9, 2], 7, None, 2, 5, 3).tolist()  # "9 2" is not in the reference
    []
    >>> copy_from_reference(prompt + [1, 2], 7, None, 2, 5, 3).tolist()  # "1 2" is
    [3, 4, 5]
    """
    tokens = np.ascontiguousarray(tokens, dtype=np.int32)
    if reference is None:
        ref, ref_len = tokens, num_prompt_tokens
    else:
        ref = np.ascontiguousarray(reference, dtype=np.int32)
        ref_len = ref.shape[0]
    out = np.empty(max(max_tokens, 1), dtype=np.int32)
    count = _copy(tokens, tokens.shape[0], num_prompt_tokens, ref, ref_len, trigger, max_trigger, max_tokens, out)
    return out[:count].astype(np.int64)


def load_reference(path: str) -> np.ndarray:
    """Reference token ids from a .npy file or a REST datastore directory (its tokens.npy); clear errors."""
    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "tokens.npy"
        if not p.exists():
            raise ValueError(f"reference {path!r} is a directory without tokens.npy: pass a .npy file of token ids "
                             "(or a REST datastore directory)")
    if not p.exists():
        raise ValueError(f"reference {path!r} does not exist: pass a .npy file of token ids, or leave reference unset "
                         "to copy from the prompt")
    try:
        tokens = np.load(p)
    except (OSError, ValueError) as err:
        raise ValueError(f"reference {path!r} is not a .npy array of token ids ({err})") from err
    if tokens.ndim != 1 or not np.issubdtype(tokens.dtype, np.integer):
        raise ValueError(f"reference {path!r} must be a 1-d integer array of token ids, got {tokens.dtype} {tokens.shape}")
    if not np.any(tokens >= 0):
        raise ValueError(f"reference {path!r} is empty (no token ids): give it some text, or leave reference unset "
                         "to copy from the prompt")
    return np.ascontiguousarray(tokens, dtype=np.int32)


class LlmaOptions(MethodOptions):
    """Options of ``llma``. Defaults follow the authors' code (``n = 1`` up to 5; copy up to the engine's k)."""

    trigger: int = Field(1, ge=1, le=64, description="Shortest trigger: output tokens that must match the reference (the paper's n).")
    max_trigger: int = Field(5, ge=1, le=64, description="Longest trigger tried first.")
    copy_len: int | None = Field(None, ge=1, description="Copy at most this many tokens (the paper's k - 1); None: the engine's k.")
    reference: str | None = Field(
        None, description="A .npy file of reference token ids (-1 between documents) or a REST datastore directory; "
        "None: the request's prompt is the reference."
    )

    @field_validator("reference")
    @classmethod
    def _reference_exists(cls, value: str | None) -> str | None:
        if value is not None:
            load_reference(value)
        return value

    @model_validator(mode="after")
    def _check_range(self) -> LlmaOptions:
        if self.max_trigger < self.trigger:
            raise ValueError(f"max_trigger ({self.max_trigger}) must be >= trigger ({self.trigger})")
        return self


class LlmaProposer(BaseProposer):
    """LLMA (see the module docstring). Holds no per-request state; its batch entry point needs the
    prompt lengths (the output starts there), so it asks for them like a stateful proposer."""

    stateless = False

    def __init__(self, options: LlmaOptions | None = None):
        self.options = o = options or LlmaOptions()
        self.reference = load_reference(o.reference) if o.reference is not None else None

    def _limit(self, max_tokens):
        return max_tokens if self.options.copy_len is None else np.minimum(max_tokens, self.options.copy_len)

    def propose(self, request: ProposalRequest) -> Draft:
        o = self.options
        return Draft.chain(copy_from_reference(request.token_ids, request.num_prompt_tokens, self.reference, o.trigger,
                                               o.max_trigger, int(self._limit(request.max_tokens))))

    def propose_batch(self, token_ids, lengths, max_tokens, out, request_ids=None, num_prompt_tokens=None) -> np.ndarray:
        if num_prompt_tokens is None:
            raise ValueError("llma copies only after output tokens: propose_batch needs num_prompt_tokens")
        o = self.options
        counts = np.zeros(token_ids.shape[0], dtype=np.int32)
        ref = self.reference if self.reference is not None else _NO_REFERENCE
        _copy_rows(token_ids, np.asarray(lengths, dtype=np.int64), np.asarray(self._limit(np.asarray(max_tokens)), dtype=np.int64),
                   np.asarray(num_prompt_tokens, dtype=np.int64), ref, self.reference is None, o.trigger, o.max_trigger, out, counts)
        return counts
