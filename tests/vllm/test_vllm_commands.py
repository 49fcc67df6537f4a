"""``specplug vllm-config``: the printed JSON, native mappings and errors (no vLLM needed)."""

from __future__ import annotations

import json
import sys

import pytest
from click.testing import CliRunner

from specplug.integrations.vllm.commands import vllm_config


def run(*args: str):
    return CliRunner().invoke(vllm_config, list(args))


def test_the_module_does_not_import_vllm():
    import subprocess

    code = "import sys, specplug.integrations.vllm.commands, specplug.vllm; assert 'vllm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_pld_prints_specplug_and_native_configs_with_options():
    result = run("pld", "--k", "5", "--option", "min_ngram=2", "--option", "max_ngram=4", "--json")
    assert result.exit_code == 0, result.output
    configs = json.loads(result.output)
    assert configs["specplug"]["speculative_config"] == {"model": "specplug.vllm.pld", "num_speculative_tokens": 5}
    assert configs["specplug"]["additional_config"] == {"specplug": {"options": {"min_ngram": 2, "max_ngram": 4}}}
    native = configs["native"]["speculative_config"]
    assert native["method"] == "ngram" and native["num_speculative_tokens"] == 5

    text = run("pld", "--option", "min_ngram=2").output
    assert "--speculative-config '{\"model\": \"specplug.vllm.pld\", \"num_speculative_tokens\": 4}'" in text
    assert "--additional-config" in text and "native" in text


def test_native_only_method_prints_vllm_config():
    result = run("eagle3", "--k", "3", "--json")
    assert result.exit_code == 0, result.output
    configs = json.loads(result.output)
    assert "specplug" not in configs
    assert configs["native"]["speculative_config"]["method"] == "eagle3"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["pldd"], "Did you mean: pld"),
        (["pld", "--option", "min_ngram=0"], "min_ngram"),
        (["pld", "--option", "nokey"], "key=value"),
        (["pld", "--option", "colour=red"], "colour"),
        (["pld", "--k", "0"], "--k must be >= 1"),
    ],
)
def test_bad_input_is_a_clear_error(args, message):
    result = run(*args)
    assert result.exit_code != 0
    assert message in result.output
