"""`specplug vllm-config` for the head methods: vLLM's native config with the head folder filled in."""

import json

import pytest
from click.testing import CliRunner

from specplug.integrations.vllm.commands import speculative_configs, vllm_config


@pytest.mark.parametrize("method", ["eagle", "eagle2", "eagle3", "medusa"])
def test_native_config_with_the_head_folder_and_no_custom_class_entry(method):
    configs = speculative_configs(method, 5, model="/heads/x")
    assert "specplug" not in configs  # custom_class cannot see hidden states: only vLLM's own loader runs heads
    native = configs["native"]["speculative_config"]
    assert native == {"method": "eagle" if method == "eagle2" else method, "num_speculative_tokens": 5, "model": "/heads/x"}


def test_the_command_prints_it():
    out = CliRunner().invoke(vllm_config, ["eagle3", "--model", "/heads/e3", "--k", "3", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["native"]["speculative_config"] == {"method": "eagle3", "num_speculative_tokens": 3, "model": "/heads/e3"}
