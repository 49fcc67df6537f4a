"""Slow: distil_whisper on the real Whisper tiny.en, transcripts identical to plain decoding."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_transcripts_identical_on_whisper_tiny_en(tmp_path):
    from specplug.testing.speech import TTS_MISSING, have_tts

    if not have_tts():
        pytest.skip(TTS_MISSING)
    from transformers import WhisperFeatureExtractor

    from specplug.engine import ReferenceEngine
    from specplug.kit.seq2seq import decoder_prompt, load_wav, transcribe
    from specplug.models import load_model, resolve_model
    from specplug.testing.speech import speech_corpus
    from specplug_speech.distill import distill
    from specplug_speech.proposer import DistilWhisperOptions, DistilWhisperProposer

    model, tokenizer = load_model("whisper-tiny.en", dtype="float32", device="cpu")
    model.requires_grad_(False)
    extractor = WhisperFeatureExtractor.from_pretrained(resolve_model("whisper-tiny.en"))
    train = speech_corpus("train", 4)
    distill(model, tokenizer, extractor, [load_wav(p) for p, _ in train], [t for _, t in train], decoder_prompt(tokenizer),
            tokenizer.eos_token_id, [0, 3], 2048, 3, tmp_path / "draft", batch_size=2, log=lambda m: None)
    test = [p for p, _ in speech_corpus("test", 3)]
    engine = ReferenceEngine(model, tokenizer)
    plain = transcribe(engine, extractor, test)
    got = transcribe(engine, extractor, test, DistilWhisperProposer(DistilWhisperOptions(draft=str(tmp_path / "draft"))), k=6)
    assert [g.result.token_ids for g in got] == [p.result.token_ids for p in plain]
    assert sum(g.result.stats.accepted for g in got) > 0


@pytest.mark.slow
def test_kangaroo_transcripts_identical_on_whisper_tiny_en(tmp_path):
    """kangaroo on the real tiny.en: an exit trained on 4 utterances, transcripts identical to plain decoding."""
    from specplug.testing.speech import TTS_MISSING, have_tts

    if not have_tts():
        pytest.skip(TTS_MISSING)
    from transformers import WhisperFeatureExtractor

    from specplug.engine import ReferenceEngine
    from specplug.kit.seq2seq import decoder_prompt, load_wav, transcribe
    from specplug.models import load_model, resolve_model
    from specplug.testing.speech import speech_corpus
    from specplug_speech.distill import pseudo_label
    from specplug_speech.exit_training import train_early_exit
    from specplug_speech.kangaroo import KangarooOptions, KangarooProposer

    model, tokenizer = load_model("whisper-tiny.en", dtype="float32", device="cpu")
    model.requires_grad_(False)
    extractor = WhisperFeatureExtractor.from_pretrained(resolve_model("whisper-tiny.en"))
    train = speech_corpus("train", 4, varied=True)
    data = pseudo_label(model, extractor, [load_wav(p) for p, _ in train], decoder_prompt(tokenizer), tokenizer.eos_token_id, log=lambda m: None)
    figures = train_early_exit(model, tokenizer, data, [t for _, t in train], tokenizer.eos_token_id, 2, 2048, 40, tmp_path / "exit",
                               batch_size=3, lr=3e-3, log=lambda m: None)
    assert figures["final_loss"] < figures["first_loss"], figures
    test = [p for p, _ in speech_corpus("test", 3)]
    engine = ReferenceEngine(model, tokenizer)
    plain = transcribe(engine, extractor, test)
    got = transcribe(engine, extractor, test, KangarooProposer(KangarooOptions(draft=str(tmp_path / "exit"), stop_below=0.0)), k=6)
    assert [g.result.token_ids for g in got] == [p.result.token_ids for p in plain]
    assert sum(g.result.stats.accepted for g in got) > 0
