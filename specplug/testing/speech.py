"""Speech for tests and benchmarks: a tiny random Whisper, and English sentences synthesised to WAV.

- :func:`tiny_whisper`: a random ``WhisperForConditionalGeneration`` (float32, eval) small enough
  for the fast tier, with its decoder prompt and a feature extractor of the same mel size.
- :func:`have_tts` / :func:`synthesize`: ``espeak-ng`` speaks a sentence, ``sox`` makes it a 16 kHz
  mono 16-bit WAV (Debian packages ``espeak-ng`` and ``sox``; tests skip naming them when absent).
- :func:`sentences`: English sentences from the Spec-Bench questions shipped in the checkout's
  ``shared/data/spec_bench`` (6 to 24 words, letters and plain punctuation), split by a hash of the
  sentence into a ``train`` part (drafts are trained on it) and a held-out ``test`` part (benchmarks
  and tests), so no benchmark utterance was ever seen in training.
- :func:`speech_corpus`: ``n`` sentences of a split synthesised once into
  ``$SPECPLUG_CACHE/speech/<split>/`` with a ``transcripts.tsv`` (file name, reference text).
  ``varied=True`` (for training drafts) speaks each sentence with one of several espeak-ng voices
  and speeds (:data:`TRAIN_VOICES`, :data:`TRAIN_SPEEDS`) into ``<split>-varied/``; the benchmark's
  test split is always the plain ``en-us`` voice at 160 words per minute.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

__all__ = ["TRAIN_SPEEDS", "TRAIN_VOICES", "have_tts", "sentences", "speech_corpus", "synthesize", "tiny_whisper", "TTS_MISSING"]

TTS_MISSING = "needs espeak-ng and sox (apt-get install espeak-ng sox) to synthesise speech"
# voices and speeds of the varied training speech (espeak-ng voice names, "+f3" etc. are its variants);
# en-us appears twice: the benchmark speaks en-us, the others make the draft robust to the voice
TRAIN_VOICES = ("en-us", "en-gb", "en-us+f3", "en-gb-x-rp", "en-us", "en-029", "en-us+m3", "en-gb-scotland")
TRAIN_SPEEDS = (160, 140, 185, 170, 205)
_WORDS = re.compile(r"^[A-Za-z][A-Za-z ,'\-]*[.?!]?$")


def have_tts() -> bool:
    """espeak-ng and sox are on PATH."""
    return shutil.which("espeak-ng") is not None and shutil.which("sox") is not None


def synthesize(text: str, path: str | Path, voice: str = "en-us", words_per_minute: int = 160) -> Path:
    """Speak ``text`` into ``path``: a 16 kHz mono 16-bit PCM WAV."""
    if not have_tts():
        raise RuntimeError(f"cannot synthesise speech: {TTS_MISSING}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-w", str(raw), text], check=True, capture_output=True)
        subprocess.run(["sox", str(raw), "-r", "16000", "-c", "1", "-b", "16", str(path)], check=True, capture_output=True)
    return path


def _spec_bench_file() -> Path:
    here = Path(__file__).resolve()
    for parent in here.parents:
        for candidate in (parent / "shared" / "data" / "spec_bench" / "question.jsonl",
                          parent.parent / "shared" / "data" / "spec_bench" / "question.jsonl"):
            if candidate.exists():
                return candidate
    raise FileNotFoundError("Spec-Bench questions (shared/data/spec_bench/question.jsonl) not found beside the checkout")


def sentences(split: str) -> list[str]:
    """Distinct English sentences of the ``train`` or ``test`` split (about one in five is ``test``), in file order."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    seen: set[str] = set()
    out = []
    for line in _spec_bench_file().read_text().splitlines():
        for turn in json.loads(line)["turns"]:
            for sentence in re.split(r"(?<=[.?!])\s+", turn.replace("\n", " ")):
                sentence = sentence.strip()
                words = sentence.split()
                if not 6 <= len(words) <= 24 or not _WORDS.match(sentence) or sentence.lower() in seen:
                    continue
                seen.add(sentence.lower())
                held_out = int(hashlib.sha1(sentence.lower().encode()).hexdigest(), 16) % 5 == 0
                if held_out == (split == "test"):
                    out.append(sentence)
    return out


def speech_corpus(split: str, n: int, cache: str | Path | None = None, varied: bool = False) -> list[tuple[Path, str]]:
    """The first ``n`` sentences of ``split`` as ``(wav path, reference text)``, synthesised once.

    ``varied``: sentence ``i`` is spoken with voice ``TRAIN_VOICES[i % 8]`` at ``TRAIN_SPEEDS[i % 5]``
    words per minute (40 voice/speed pairs), into a folder of its own."""
    from specplug.models import cache_dir

    texts = sentences(split)
    if n > len(texts):
        raise ValueError(f"the {split} split has {len(texts)} sentences; asked for {n}")
    name = f"{split}-varied" if varied else split
    folder = Path(cache) if cache is not None else cache_dir() / "speech" / name
    out = []
    for i, text in enumerate(texts[:n]):
        wav = folder / f"{name}-{i:04d}.wav"
        if not wav.exists():
            if varied:
                synthesize(text, wav, voice=TRAIN_VOICES[i % len(TRAIN_VOICES)], words_per_minute=TRAIN_SPEEDS[i % len(TRAIN_SPEEDS)])
            else:
                synthesize(text, wav)
        out.append((wav, text))
    (folder / "transcripts.tsv").write_text("".join(f"{w.name}\t{t}\n" for w, t in out))
    return out


def tiny_whisper(seed: int = 0, vocab_size: int = 96, decoder_layers: int = 2, d_model: int = 32):
    """``(model, prompt, feature_extractor)``: a random Whisper with 80 mel bins and the real 30 s
    window (1500 encoder frames), a small vocabulary and ``decoder_layers`` decoder layers; ``prompt``
    is a two-token decoder prompt; EOS is id 3."""
    import torch
    from transformers import WhisperConfig, WhisperFeatureExtractor, WhisperForConditionalGeneration

    torch.manual_seed(seed)
    config = WhisperConfig(
        vocab_size=vocab_size, num_mel_bins=80, d_model=d_model, encoder_layers=1, decoder_layers=decoder_layers,
        encoder_attention_heads=2, decoder_attention_heads=2, encoder_ffn_dim=2 * d_model, decoder_ffn_dim=2 * d_model,
        max_source_positions=1500, max_target_positions=96, decoder_start_token_id=1, bos_token_id=3, eos_token_id=3,
        pad_token_id=3, suppress_tokens=[], begin_suppress_tokens=[], tie_word_embeddings=False,
    )
    model = WhisperForConditionalGeneration(config).eval()
    with torch.no_grad():  # an untied head with larger weights: varied, audio-dependent greedy paths
        model.proj_out.weight.normal_(0.0, 1.0)
        model.model.decoder.embed_tokens.weight.normal_(0.0, 1.0)
        model.model.encoder.conv1.weight.mul_(30.0)  # audio features as large as the position encodings
        for layer in model.model.decoder.layers:  # let the audio steer the text
            layer.encoder_attn.v_proj.weight.mul_(8.0)
            layer.encoder_attn.out_proj.weight.mul_(8.0)
    return model, [1, 2], WhisperFeatureExtractor(feature_size=80)
