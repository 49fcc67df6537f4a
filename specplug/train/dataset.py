"""The training data read back: sequences with their hidden states, a held-out split, batches.

Batches are deterministic functions of (seed, epoch, index), so a run resumed from a checkpoint sees
exactly the batches an uninterrupted run would have seen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from specplug.train.data import DataError, read_manifest

__all__ = ["Batch", "Sequence", "TrainingData"]


@dataclass
class Sequence:
    id: str
    tokens: torch.Tensor  # [L] int64: prompt + response
    prompt_len: int
    states: dict[int, torch.Tensor]  # layer -> [L, H] (stored dtype)


@dataclass
class Batch:
    """``B`` sequences padded to ``T``: ``tokens`` [B, T], ``valid`` [B, T] (a real token),
    ``root`` [B, T] (a position a draft starts from in decoding: the last prompt token or later),
    ``positions`` [B, T] (original positions; a long sequence keeps its last ``max_len`` tokens),
    ``states`` layer -> [B, T, H] float32."""

    tokens: torch.Tensor
    valid: torch.Tensor
    root: torch.Tensor
    positions: torch.Tensor
    states: dict[int, torch.Tensor]

    @property
    def num_tokens(self) -> int:
        return int(self.valid.sum())

    def to(self, device) -> Batch:
        """The batch on ``device`` (itself when already there)."""
        if self.tokens.device == torch.device(device):
            return self
        return Batch(self.tokens.to(device), self.valid.to(device), self.root.to(device), self.positions.to(device),
                     {layer: x.to(device) for layer, x in self.states.items()})


def _held_out_rank(sequence_id: str) -> str:
    return hashlib.sha256(sequence_id.encode()).hexdigest()


class TrainingData:
    """All sequences of a data folder (only the ``layers`` asked for are kept in memory)."""

    def __init__(self, folder: str | Path, layers: list[int], fingerprint: str | None = None, held_out: float = 0.05,
                 train_fraction: float = 1.0) -> None:
        """``train_fraction`` < 1 trains on the first part of the training sequences (in shard order)
        and keeps the same held-out set: the points of an accuracy-versus-data-size curve. A Magpie
        set that is still growing is read as far as its shards exist."""
        from safetensors import safe_open

        self.folder = Path(folder).expanduser()
        self.manifest = read_manifest(self.folder)
        growing = self.manifest.get("prompts", {}).get("set") == "magpie" and self.manifest.get("shards")
        if not self.manifest.get("complete") and not growing:
            raise DataError(f"the training data in {self.folder} is unfinished; rerun 'specplug train data' with the same options to complete it")
        if not 0 < train_fraction <= 1:
            raise DataError(f"train_fraction {train_fraction}: give a share in (0, 1]")
        self.shards_used = len(self.manifest["shards"])
        if fingerprint is not None and self.manifest["model"]["fingerprint"] != fingerprint:
            raise DataError(
                f"the data in {self.folder} was made from target {self.manifest['model']['name']!r} (fingerprint "
                f"{self.manifest['model']['fingerprint']}), not this target (fingerprint {fingerprint}); make data for it "
                "with 'specplug train data --model MODEL'"
            )
        missing = [layer for layer in layers if layer not in self.manifest["layers"]]
        if missing:
            raise DataError(f"the data in {self.folder} has hidden states at layers {self.manifest['layers']}, not {missing}; "
                            f"remake it with 'specplug train data --layers {','.join(map(str, sorted(set(self.manifest['layers']) | set(missing))))}'")
        self.layers = list(layers)
        self.sequences: list[Sequence] = []
        for shard in self.manifest["shards"]:
            with safe_open(str(self.folder / shard["file"]), framework="pt") as fh:
                tokens, offsets, prompt_lens = fh.get_tensor("tokens"), fh.get_tensor("offsets"), fh.get_tensor("prompt_lens")
                states = {layer: fh.get_tensor(f"states.{layer}") for layer in layers}
            for i, sequence_id in enumerate(shard["ids"]):
                a, b = int(offsets[i]), int(offsets[i + 1])
                self.sequences.append(Sequence(str(sequence_id), tokens[a:b].clone(), int(prompt_lens[i]),
                                               {layer: states[layer][a:b].clone() for layer in layers}))
        order = sorted(range(len(self.sequences)), key=lambda i: _held_out_rank(self.sequences[i].id))
        count = max(1, round(held_out * len(order))) if len(order) > 1 else 0
        self.held_out = sorted(order[:count])
        self.train = sorted(order[count:]) or list(range(len(self.sequences)))
        self.train_fraction = train_fraction
        if train_fraction < 1:
            self.train = self.train[: max(1, round(train_fraction * len(self.train)))]

    @property
    def id(self) -> str:
        """The manifest's id; for a growing set also the number of shards read (``ID@N``)."""
        return self.manifest["id"] if self.manifest.get("complete") else f"{self.manifest['id']}@{self.shards_used}"

    @property
    def train_tokens(self) -> int:
        return sum(len(self.sequences[i].tokens) for i in self.train)

    @property
    def train_response_tokens(self) -> int:
        return sum(len(self.sequences[i].tokens) - self.sequences[i].prompt_len for i in self.train)

    def response_tokens(self, indices) -> list[torch.Tensor]:
        return [self.sequences[i].tokens[self.sequences[i].prompt_len :] for i in indices]

    # -- batches ------------------------------------------------------------------------------
    def epoch_batches(self, epoch: int, seed: int, batch_tokens: int, max_len: int) -> list[list[int]]:
        """The training batches of ``epoch``: sequences in a seeded order, grouped up to ``batch_tokens``
        padded tokens (at least one sequence per batch)."""
        rng = np.random.default_rng([seed, epoch])
        order = [self.train[i] for i in rng.permutation(len(self.train))]
        return self._group(order, batch_tokens, max_len)

    def eval_batches(self, batch_tokens: int, max_len: int, limit: int | None = None) -> list[list[int]]:
        return self._group(self.held_out[:limit] if limit else self.held_out, batch_tokens, max_len)

    def _group(self, order: list[int], batch_tokens: int, max_len: int) -> list[list[int]]:
        batches, current, longest = [], [], 0
        for index in order:
            length = min(len(self.sequences[index].tokens), max_len)
            if current and max(longest, length) * (len(current) + 1) > batch_tokens:
                batches.append(current)
                current, longest = [], 0
            current.append(index)
            longest = max(longest, length)
        if current:
            batches.append(current)
        return batches

    def batch(self, indices: list[int], max_len: int) -> Batch:
        seqs = [self.sequences[i] for i in indices]
        lengths = [min(len(s.tokens), max_len) for s in seqs]
        B, T = len(seqs), max(lengths)
        tokens = torch.zeros(B, T, dtype=torch.long)
        valid = torch.zeros(B, T, dtype=torch.bool)
        root = torch.zeros(B, T, dtype=torch.bool)
        positions = torch.arange(T).repeat(B, 1)
        states = {layer: torch.zeros(B, T, seqs[0].states[layer].shape[-1]) for layer in self.layers}
        for b, (seq, length) in enumerate(zip(seqs, lengths)):
            start = len(seq.tokens) - length  # keep the end: the response
            tokens[b, :length] = seq.tokens[start:]
            valid[b, :length] = True
            positions[b, :length] = torch.arange(start, start + length)
            root[b, :length] = positions[b, :length] >= seq.prompt_len - 1
            for layer in self.layers:
                states[layer][b, :length] = seq.states[layer][start:].float()
        return Batch(tokens, valid, root, positions, states)
