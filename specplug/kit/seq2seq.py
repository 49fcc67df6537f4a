"""Encoder-decoder targets (Whisper) in the reference engine, and audio input.

Speech recognition is decoding conditioned on an encoded utterance. The decoder is a causal LM over
text tokens plus cross-attention to the encoder's output, so speculative decoding works exactly as
for text once the encoder has run:

- :class:`Seq2SeqTarget` is a :class:`~specplug.kit.target.TargetModel` for a transformers
  ``WhisperForConditionalGeneration``. :meth:`Seq2SeqTarget.encode` runs the encoder **once per
  utterance**; ``forward``/``rollback``/``keep``/``reset`` act on the **decoder's self-attention
  cache only**. The cross-attention keys and values are computed from the encoder output at the
  first decoder forward of a request and **kept** across rollbacks (they do not depend on the text).
  The engine drives it through the same ``Proposer``/``Verifier``/``Draft`` contracts and the same
  lossless checks; :func:`target_for` picks it for encoder-decoder models.
- :func:`encoder_states` gives a drafter the encoder output of the utterance being decoded (a draft
  decoder shares the target's encoder, distil-whisper style, and never runs an encoder of its own).
- :func:`load_wav` reads a 16 kHz mono PCM WAV and refuses anything else with the fix in the message;
  :func:`transcribe` encodes each utterance and decodes it with the engine (plain or speculative).

Whisper's decoder prompt for English-only models is ``<|startoftranscript|><|notimestamps|>``
(:func:`decoder_prompt`). Decoding here is raw argmax (no token suppression), for plain decoding and
every method alike, so "identical to plain decoding" compares the same rule.
"""

from __future__ import annotations

import time
import wave
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from specplug.kit.target import TargetModel

__all__ = [
    "SAMPLE_RATE",
    "MAX_SECONDS",
    "AudioError",
    "Seq2SeqTarget",
    "Transcription",
    "decoder_prompt",
    "encode_audio_prompt",
    "encoder_states",
    "load_wav",
    "target_for",
    "transcribe",
]

SAMPLE_RATE = 16_000
MAX_SECONDS = 30.0  # Whisper's encoder window

_ENCODED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # encoder module -> its output [1, frames, d]


class AudioError(ValueError):
    """An audio input specplug cannot transcribe as given; the message names the file and the fix."""


def load_wav(path: str | Path) -> np.ndarray:
    """Samples in [-1, 1], float32 ``[n]``, of a 16 kHz mono 16-bit PCM WAV of at most 30 s.

    Refused with :class:`AudioError`: a missing file, a file that is not a PCM WAV, another sample
    rate (no resampling here: ``sox in.wav -r 16000 out.wav``), more than one channel
    (``sox in.wav -c 1 out.wav``), no samples, more than 30 s (Whisper's window; split it). Silence is
    accepted and transcribed as the model decodes it (tiny.en usually emits nothing or a filler).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: no such audio file. Give a 16 kHz mono WAV path (or a folder of them).")
    try:
        with wave.open(str(path), "rb") as wav:
            rate, channels, width, frames = wav.getframerate(), wav.getnchannels(), wav.getsampwidth(), wav.getnframes()
            data = wav.readframes(frames)
    except (wave.Error, EOFError) as err:
        raise AudioError(f"{path}: not a readable PCM WAV file ({err}). Fix: convert it, sox {path.name} -r 16000 -c 1 -b 16 out.wav") from None
    if rate != SAMPLE_RATE:
        raise AudioError(f"{path}: sample rate {rate} Hz; Whisper needs {SAMPLE_RATE} Hz and specplug does not resample. "
                         f"Fix: sox {path.name} -r {SAMPLE_RATE} out.wav")
    if channels != 1:
        raise AudioError(f"{path}: {channels} channels; Whisper needs mono. Fix: sox {path.name} -c 1 out.wav")
    if width != 2:
        raise AudioError(f"{path}: {8 * width}-bit samples; specplug reads 16-bit PCM. Fix: sox {path.name} -b 16 out.wav")
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0
    if samples.size == 0 or samples.size < frames:
        raise AudioError(f"{path}: holds {samples.size} of its {frames} declared samples (empty or truncated). Re-record or re-export it.")
    seconds = samples.size / SAMPLE_RATE
    if seconds > MAX_SECONDS:
        raise AudioError(f"{path}: {seconds:.1f} s long; Whisper transcribes at most {MAX_SECONDS:.0f} s at a time. "
                         f"Fix: split it, e.g. sox {path.name} part.wav trim 0 30 : newfile : restart")
    return samples


def decoder_prompt(tokenizer) -> list[int]:
    """``<|startoftranscript|><|notimestamps|>``: the decoder prompt of an English-only Whisper."""
    ids = tokenizer.convert_tokens_to_ids(["<|startoftranscript|>", "<|notimestamps|>"])
    if any(i is None or i == tokenizer.unk_token_id for i in ids):
        raise ValueError("the tokenizer has no <|startoftranscript|>/<|notimestamps|> tokens: is it Whisper's?")
    return [int(i) for i in ids]


def encoder_states(model) -> torch.Tensor:
    """The encoder output ``[1, frames, d_model]`` of the utterance ``model`` is decoding now.

    Keyed by the encoder module: a draft decoder whose ``model.encoder`` *is* the target's encoder
    (distil-whisper's draft shares it) reads the target's output and never encodes on its own."""
    try:
        return _ENCODED[model.model.encoder]
    except KeyError:
        raise RuntimeError("no utterance is encoded for this model: call Seq2SeqTarget.encode (transcribe does) first") from None


def target_for(model) -> TargetModel:
    """:class:`Seq2SeqTarget` for encoder-decoder models, :class:`TargetModel` otherwise."""
    if getattr(model.config, "is_encoder_decoder", False):
        return Seq2SeqTarget(model)
    return TargetModel(model)


class Seq2SeqTarget(TargetModel):
    """A Whisper-style encoder-decoder with one utterance's encoder output and decoder caches.

    ``model`` is a transformers ``WhisperForConditionalGeneration`` (or any model with
    ``.model.encoder``, ``.model.decoder`` and ``.proj_out``). ``share_encoder_of``: another model
    whose current encoder output this one decodes against (a draft decoder on the target's encoder).
    """

    def __init__(self, model, share_encoder_of=None) -> None:
        from transformers import DynamicCache, EncoderDecoderCache

        self.model = model
        self._cache_classes = (DynamicCache, EncoderDecoderCache)
        self.device = next(model.parameters()).device
        self.dtype = next(model.parameters()).dtype
        self.vocab_size = int(model.get_output_embeddings().weight.shape[0])
        self.max_positions = int(model.config.max_target_positions)
        self.cache = None
        self.reset()

    # -- encoder ----------------------------------------------------------------------------
    @torch.inference_mode()
    def encode(self, input_features: torch.Tensor) -> torch.Tensor:
        """Run the encoder on log-mel features ``[1, mels, 3000]`` and start a new utterance."""
        features = input_features.to(device=self.device, dtype=self.dtype)
        states = self.model.model.encoder(features).last_hidden_state  # [1, frames, d]
        _ENCODED[self.model.model.encoder] = states
        self.reset()
        return states

    def encoder_states(self) -> torch.Tensor:
        return encoder_states(self.model)

    # -- cache ------------------------------------------------------------------------------
    def reset(self) -> None:
        """Forget the decoded text (self-attention and cross-attention caches); the encoder output stays."""
        dynamic, encdec = self._cache_classes
        config = self.model.config
        self.cache = encdec(dynamic(config=config), dynamic(config=config))

    @property
    def cache_len(self) -> int:
        return int(self.cache.self_attention_cache.get_seq_length())

    def _layers(self):
        """The self-attention cache layers: rollback and keep never touch the cross-attention cache."""
        return [layer for layer in self.cache.self_attention_cache.layers
                if getattr(layer, "keys", None) is not None and layer.keys.numel() > 0]

    # -- forward ----------------------------------------------------------------------------
    def forward_with_states(self, input_ids, hidden_layers: Sequence[int], position_ids=None, attention_bias=None, parents=None,
                            logits_to_keep: int = 0):
        num_layers = int(self.model.config.decoder_layers)
        for layer in hidden_layers:
            if not (layer == -1 or 0 <= layer < num_layers):
                raise ValueError(f"hidden state layer {layer} does not exist: use -1 (final) or 0..{num_layers - 1}")
        return self._run(input_ids, position_ids, attention_bias, parents, logits_to_keep, tuple(hidden_layers))

    @torch.inference_mode()
    def _run(self, input_ids, position_ids=None, attention_bias=None, parents=None, logits_to_keep: int = 0,
             hidden_layers: tuple[int, ...] | None = None):
        from specplug.kit.target import tree_bias, tree_positions

        ids = torch.as_tensor(input_ids, dtype=torch.long).reshape(1, -1).to(self.device)  # [1, n]
        n = ids.shape[1]
        past = self.cache_len
        if past + n > self.max_positions:
            raise ValueError(f"sequence of {past + n} tokens exceeds the decoder's {self.max_positions} positions")
        if parents is not None:
            parents = np.asarray(parents, dtype=np.int64)
            pending = n - len(parents)
            if pending < 1:
                raise ValueError("a tree forward needs at least one token before the draft nodes (the root)")
            if position_ids is None:
                position_ids = tree_positions(past, pending, parents, len(parents))
            if attention_bias is None:
                attention_bias = tree_bias(past, pending, parents, self.dtype, self.device)
        if position_ids is None:
            position_ids = torch.arange(past, past + n, dtype=torch.long)
        position_ids = torch.as_tensor(position_ids, dtype=torch.long).reshape(1, -1).to(self.device)
        mask = None
        if attention_bias is not None:
            if tuple(attention_bias.shape) != (n, past + n):
                raise ValueError(f"attention_bias must be [{n}, {past + n}], got {tuple(attention_bias.shape)}")
            mask = attention_bias.to(device=self.device, dtype=self.dtype)[None, None]
        out = self.model.model.decoder(
            input_ids=ids,
            attention_mask=mask,
            encoder_hidden_states=self.encoder_states(),
            past_key_values=self.cache,
            position_ids=position_ids,
            use_cache=True,
            output_hidden_states=hidden_layers is not None,
        )
        self.cache = out.past_key_values
        hidden = out.last_hidden_state[0]  # [n, d] after the final norm
        if logits_to_keep:
            hidden = hidden[-logits_to_keep:]
        logits = self.model.proj_out(hidden).float()
        states = None
        if hidden_layers is not None:
            # out.hidden_states[i] enters decoder layer i; the last entry is before the final norm, so -1 is last_hidden_state
            rows = [out.last_hidden_state[0] if layer == -1 else out.hidden_states[layer][0] for layer in hidden_layers]
            states = torch.stack(rows, dim=1)
        return logits, states


@dataclass
class Transcription:
    """One utterance decoded: the engine's result plus the encoder's share of the time."""

    result: Any  # specplug.engine.stats.GenerationResult (token ids, stats, text)
    features_s: float  # log-mel features
    encoder_s: float  # the encoder forward

    @property
    def text(self) -> str:
        return (self.result.text or "").strip()

    @property
    def total_s(self) -> float:
        """The whole utterance: features, encoder, decoder (drafting included)."""
        return self.features_s + self.encoder_s + self.result.stats.wall_s


def transcribe(engine, feature_extractor, audios: Sequence[np.ndarray | str | Path], proposer=None, verifier=None, k: int = 5,
               max_new_tokens: int = 128, sampling=None, seed: int = 0, prompt: Sequence[int] | None = None) -> list[Transcription]:
    """Encode each utterance once and decode it with ``engine`` (a ReferenceEngine over a Whisper model).

    ``audios``: sample arrays (16 kHz mono float) or WAV paths (read with :func:`load_wav`).
    ``proposer=None`` is plain decoding. Utterance ``i`` samples with seed ``seed + i``. ``prompt``:
    the decoder prompt (default: :func:`decoder_prompt` of the engine's tokenizer).
    """
    target = engine.target
    if not isinstance(target, Seq2SeqTarget):
        raise TypeError("transcribe needs an engine over an encoder-decoder model (Whisper)")
    prompt = list(prompt) if prompt is not None else decoder_prompt(engine.tokenizer)
    out = []
    for i, audio in enumerate(audios):
        samples = load_wav(audio) if isinstance(audio, (str, Path)) else np.asarray(audio, dtype=np.float32)
        if samples.ndim != 1:
            raise AudioError(f"utterance {i}: samples must be mono [n], got shape {samples.shape}")
        if samples.size > MAX_SECONDS * SAMPLE_RATE:
            raise AudioError(f"utterance {i}: {samples.size / SAMPLE_RATE:.1f} s; Whisper transcribes at most {MAX_SECONDS:.0f} s")
        t0 = time.perf_counter()
        features = feature_extractor(samples, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
        t1 = time.perf_counter()
        target.encode(features)
        t2 = time.perf_counter()
        result = engine.generate([prompt], proposer, verifier, k=k, max_new_tokens=max_new_tokens, sampling=sampling, seed=seed + i)[0]
        out.append(Transcription(result, t1 - t0, t2 - t1))
    return out


def encode_audio_prompt(engine, model_location: str, path: str | Path) -> list[int]:
    """``specplug generate`` with a Whisper model: read the WAV at ``path``, encode it with the
    engine's target (once; every ``generate`` call after decodes this utterance) and return the
    decoder prompt. ``model_location``: the ``--model`` value, whose folder holds the feature extractor.

    A ``path`` that is no file but a sentence (it has spaces and no ``.wav`` ending) is spoken with
    espeak-ng first, so ``specplug generate --model whisper-tiny.en "Some sentence."`` transcribes
    synthetic speech of it (the quickstarts use this)."""
    from transformers import WhisperFeatureExtractor

    from specplug.models import resolve_model

    text = str(path)
    if not Path(text).exists() and not text.lower().endswith(".wav") and " " in text.strip():
        samples = _spoken(text)  # a sentence, not a file: speak it (espeak-ng) and transcribe that
    else:
        samples = load_wav(path)
    extractor = WhisperFeatureExtractor.from_pretrained(resolve_model(model_location))
    features = extractor(samples, sampling_rate=SAMPLE_RATE, return_tensors="pt").input_features
    engine.target.encode(features)
    return decoder_prompt(engine.tokenizer)


def _spoken(text: str) -> np.ndarray:
    import tempfile

    from specplug.testing.speech import TTS_MISSING, have_tts, synthesize

    if not have_tts():
        raise AudioError(f"{text[:40]!r} is neither a WAV file nor speakable here: speaking a sentence {TTS_MISSING}")
    with tempfile.TemporaryDirectory() as tmp:
        return load_wav(synthesize(text, Path(tmp) / "spoken.wav"))
