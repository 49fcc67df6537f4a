"""Slow: specasr on the real Whisper tiny.en, transcripts identical to plain decoding."""

from __future__ import annotations

import pytest


@pytest.mark.slow
def test_transcripts_identical_on_whisper_tiny_en(tmp_path):
    from specplug.testing.speech import TTS_MISSING, have_tts

    if not have_tts():
        pytest.skip(TTS_MISSING)
    from transformers import WhisperFeatureExtractor

    from specplug.engine import ReferenceEngine
    from specplug.kit.seq2seq import transcribe
    from specplug.models import load_model, resolve_model
    from specplug.testing.speech import speech_corpus
    from specplug_specasr.proposer import SpecAsrOptions, SpecAsrProposer

    model, tokenizer = load_model("whisper-tiny.en", dtype="float32", device="cpu")
    model.requires_grad_(False)
    extractor = WhisperFeatureExtractor.from_pretrained(resolve_model("whisper-tiny.en"))
    # the draft comes from specplug-speech's command (no plugin imports another)
    from click.testing import CliRunner

    from specplug.cli import cli

    result = CliRunner().invoke(cli, ["speech", "distill", "--utterances", "4", "--steps", "3", "--batch-size", "2",
                                      "--out", str(tmp_path / "draft")])
    if result.exit_code != 0 and "No such command" in result.output:
        pytest.skip("specasr's draft comes from specplug-speech's 'specplug speech distill'; install specplug-speech")
    assert result.exit_code == 0, result.output
    test = [p for p, _ in speech_corpus("test", 3)]
    engine = ReferenceEngine(model, tokenizer)
    plain = transcribe(engine, extractor, test)
    got = transcribe(engine, extractor, test, SpecAsrProposer(SpecAsrOptions(draft=str(tmp_path / "draft"), truncate_below=0.0)), k=8)
    assert [g.result.token_ids for g in got] == [p.result.token_ids for p in plain]
    assert sum(g.result.stats.accepted for g in got) > 0
