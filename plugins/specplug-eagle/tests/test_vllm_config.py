"""`specplug vllm-config METHOD --model HEAD` for the head methods: vLLM's native config with the folder."""

import json

import pytest
from click.testing import CliRunner

from specplug.integrations.vllm.commands import vllm_config
from specplug.testing import tiny_llama

from specplug.kit.heads import save_random_head


@pytest.mark.parametrize(("method", "kind"), [("eagle", "eagle"), ("eagle2", "eagle"), ("eagle3", "eagle3")])
def test_the_command_prints_the_native_config_of_a_saved_head(tmp_path, method, kind):
    folder = save_random_head(kind, tiny_llama(vocab_size=128, seed=1, num_layers=4), tmp_path / kind)
    out = CliRunner().invoke(vllm_config, [method, "--model", str(folder), "--k", "3", "--json"])
    assert out.exit_code == 0, out.output
    config = json.loads(out.output)["native"]["speculative_config"]
    assert config == {"method": kind, "num_speculative_tokens": 3, "model": str(folder.resolve())}
