"""The vLLM job runner without an engine: which jobs count as plain decoding, and how a worker's
failure reaches the caller (the engine tests in this folder run real jobs through it)."""

from __future__ import annotations

import pytest

from specplug.integrations.vllm.jobs import VllmJobError, plain_key, run_job, worker_env

PLAIN = {"model": "some/model", "prompts": [[5, 6, 7], "text"], "max_tokens": 8}


def test_plain_key_names_model_prompt_and_sampling_but_not_the_batch():
    first, second = plain_key(PLAIN, 0), plain_key(PLAIN, 1)
    assert first and second and first != second
    assert plain_key(dict(PLAIN, max_num_seqs=32, prompts=[[5, 6, 7]]), 0) == first  # batch size and neighbours: same
    for other in ({"max_tokens": 9}, {"model": "other/model"}, {"ignore_eos": False}, {"max_model_len": 1024},
                  {"tensor_parallel_size": 2}, {"sampling": [{"repetition_penalty": 1.2}, {}]}):
        assert plain_key(dict(PLAIN, **other), 0) != first, other


@pytest.mark.parametrize("change", [
    {"speculative_config": {"model": "specplug.vllm.pld", "num_speculative_tokens": 4}},
    {"level2": True}, {"extra_plugins": ["helper_plugin"]}, {"then_prompts": [[1, 2]]}, {"mode": "errors"},
    {"sampling": [{"temperature": 0.8, "seed": 1}, {}]},
])
def test_speculative_level2_and_random_jobs_are_not_plain(change):
    assert plain_key(dict(PLAIN, **change), 0) is None


def test_a_folder_rebuilt_in_place_is_another_model(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{}")
    job = dict(PLAIN, model=str(model))
    before = plain_key(job, 0)
    (model / "model.safetensors").write_bytes(b"weights")
    assert plain_key(job, 0) != before


def test_worker_env_shares_one_cache_folder_and_keeps_the_callers_settings():
    env = worker_env({"VLLM_PLUGINS": "specplug,other"})
    assert env["VLLM_ENABLE_V1_MULTIPROCESSING"] == "0" and env["VLLM_PLUGINS"] == "specplug,other"
    assert worker_env()["VLLM_CACHE_ROOT"] == env["VLLM_CACHE_ROOT"]


def test_a_crashing_worker_raises_with_its_traceback():
    seen = []
    with pytest.raises(VllmJobError, match="KeyError: 'no_such_mode'"):
        run_job({"mode": "no_such_mode", "model": "unused"}, on_line=seen.append)
    assert seen == []  # the crash record is the error, not a result
