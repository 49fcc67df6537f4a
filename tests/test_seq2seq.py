"""Encoder-decoder targets in the reference engine (specplug.kit.seq2seq) on a tiny random Whisper,
and audio input: clear errors for bad WAV files."""

from __future__ import annotations

import wave

import numpy as np
import pytest
import torch

from specplug.engine import ReferenceEngine
from specplug.kit.seq2seq import AudioError, Seq2SeqTarget, load_wav, transcribe
from specplug.testing import NoisyOracleProposer, RandomProposer
from specplug.testing.speech import tiny_whisper


@pytest.fixture(scope="module")
def tiny():
    model, prompt, extractor = tiny_whisper(seed=1)
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    audios = [(0.5 * np.sin(2 * np.pi * f * t) + 0.05 * rng.standard_normal(t.size)).astype(np.float32) for f in (220, 1000, 3000)]
    return model, prompt, extractor, audios


def _hf_greedy(model, extractor, samples, prompt, steps):
    """Plain greedy decoding with transformers' own forward (no cache), the independent reference."""
    features = extractor(samples, sampling_rate=16000, return_tensors="pt").input_features
    with torch.no_grad():
        encoder = model.model.encoder(features).last_hidden_state
        ids = list(prompt)
        for _ in range(steps):
            logits = model(encoder_outputs=(encoder,), decoder_input_ids=torch.tensor([ids])).logits[0, -1]
            ids.append(int(logits.argmax()))
            if ids[-1] == model.config.eos_token_id:
                break
    return ids[len(prompt):]


def test_plain_transcription_equals_transformers_greedy(tiny):
    model, prompt, extractor, audios = tiny
    engine = ReferenceEngine(model, None, eos_token_id=3)
    out = transcribe(engine, extractor, audios, prompt=prompt, max_new_tokens=12)
    for samples, t in zip(audios, out):
        assert t.result.token_ids == _hf_greedy(model, extractor, samples, prompt, 12)
        assert t.encoder_s > 0 and t.total_s >= t.result.stats.wall_s
    assert len({tuple(t.result.token_ids) for t in out}) > 1, "different audio must give different transcripts"


def test_rollback_keeps_the_cross_attention_cache(tiny):
    """Logits after drafting, rolling back and re-feeding equal one teacher-forced forward."""
    model, prompt, extractor, audios = tiny
    target = Seq2SeqTarget(model)
    target.encode(extractor(audios[0], sampling_rate=16000, return_tensors="pt").input_features)
    seq = prompt + [10, 11, 12, 13]
    full = target.forward(seq)  # [6, V]
    target.reset()
    target.forward(prompt)
    target.forward([40, 41, 42])  # a rejected draft
    target.rollback(len(prompt))
    assert target.cache_len == len(prompt)
    again = target.forward([10, 11, 12, 13])
    torch.testing.assert_close(again, full[len(prompt):], rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("tree", [False, True])
def test_drafts_are_lossless_on_encoder_decoder_targets(tiny, tree):
    model, prompt, extractor, audios = tiny
    engine = ReferenceEngine(model, None, eos_token_id=3)
    plain = transcribe(engine, extractor, audios, prompt=prompt, max_new_tokens=16)
    accepted = 0
    for verifier in ("greedy_match", "tree_verification") if not tree else ("tree_verification",):
        for samples, reference in zip(audios, plain):
            oracle = NoisyOracleProposer({tuple(prompt): reference.result.token_ids}, model.config.vocab_size, corrupt=0.3, tree=tree, seed=2)
            got = transcribe(engine, extractor, [samples], oracle, verifier, k=4, max_new_tokens=16, prompt=prompt)[0]
            assert got.result.token_ids == reference.result.token_ids
            accepted += got.result.stats.accepted
            noisy = transcribe(engine, extractor, [samples], RandomProposer(model.config.vocab_size, tree=tree, seed=3), verifier,
                               k=4, max_new_tokens=16, prompt=prompt)[0]
            assert noisy.result.token_ids == reference.result.token_ids
    assert accepted > 0


def _write_wav(path, samples, rate=16000, channels=1, width=2):
    with wave.open(str(path), "wb") as wav:
        wav.setnchannels(channels)
        wav.setsampwidth(width)
        wav.setframerate(rate)
        data = (np.asarray(samples) * 32767).astype("<i2") if width == 2 else (np.asarray(samples) * 127 + 128).astype(np.uint8)
        wav.writeframes(np.repeat(data, channels).tobytes() if channels > 1 else data.tobytes())
    return path


def test_bad_audio_gets_a_clear_error(tmp_path):
    tone = 0.1 * np.sin(np.arange(16000) / 10)
    assert load_wav(_write_wav(tmp_path / "ok.wav", tone)).shape == (16000,)
    silence = load_wav(_write_wav(tmp_path / "silence.wav", np.zeros(8000)))
    assert silence.shape == (8000,) and not silence.any()  # accepted; documented: decoded as the model does
    cases = {
        "no such audio file": tmp_path / "missing.wav",
        "not a readable PCM WAV": tmp_path / "corrupt.wav",
        "sample rate 44100 Hz": _write_wav(tmp_path / "cd.wav", tone, rate=44100),
        "2 channels": _write_wav(tmp_path / "stereo.wav", tone, channels=2),
        "8-bit samples": _write_wav(tmp_path / "8bit.wav", tone, width=1),
        "31.0 s long": _write_wav(tmp_path / "long.wav", np.zeros(16000 * 31)),
        "empty or truncated": _write_wav(tmp_path / "empty.wav", np.zeros(0)),
    }
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF\x00\x00garbage")
    for message, path in cases.items():
        with pytest.raises(AudioError, match=message) as err:
            load_wav(path)
        assert any(word in str(err.value) for word in ("Fix", "Give", "Re-record")), err.value


def test_transcribe_refuses_stereo_arrays_and_causal_targets(tiny):
    model, prompt, extractor, _ = tiny
    engine = ReferenceEngine(model, None, eos_token_id=3)
    with pytest.raises(AudioError, match="mono"):
        transcribe(engine, extractor, [np.zeros((2, 16000), dtype=np.float32)], prompt=prompt)
    with pytest.raises(AudioError, match="at most 30 s"):
        transcribe(engine, extractor, [np.zeros(16000 * 31, dtype=np.float32)], prompt=prompt)
