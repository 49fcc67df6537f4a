"""Run in its own process by test_mlp_speculator_vllm_layout.py: load a speculator folder into vLLM's
own ``MLPSpeculator`` class and recompute the stages' logits with vLLM's modules and constants.

vLLM 0.32 cannot run the method (its V1 engine refuses ``mlp_speculator`` and the class has no
forward), so this is the strongest check of the export available: every parameter vLLM's class
has is loaded from the file, and vLLM's modules, fed the same inputs, give the drafts specplug's do.

Usage: ``python vllm_layout_check.py FOLDER INPUTS.pt OUT.pt`` (inputs: ``hidden [N, H]``, ``tokens [N, n_predict]``).
"""

import sys
import tempfile
from types import SimpleNamespace

import torch
from safetensors.torch import load_file


def main(folder: str, inputs: str, out: str) -> None:
    from vllm.config import VllmConfig, set_current_vllm_config
    from vllm.distributed import init_distributed_environment, initialize_model_parallel
    from vllm.model_executor.models.mlp_speculator import MLPSpeculator
    from vllm.transformers_utils.configs.mlp_speculator import MLPSpeculatorConfig

    config = MLPSpeculatorConfig.from_pretrained(folder)
    with set_current_vllm_config(VllmConfig()):
        init_distributed_environment(world_size=1, rank=0, local_rank=0,
                                     distributed_init_method=f"file://{tempfile.mktemp()}", backend="gloo")
        initialize_model_parallel(1, 1)
        model = MLPSpeculator(vllm_config=SimpleNamespace(model_config=SimpleNamespace(hf_config=config)))
        weights = load_file(f"{folder}/model.safetensors")
        loaded = model.load_weights(weights.items())
        params = dict(model.named_parameters())
        data = torch.load(inputs)
        with torch.no_grad():
            state = data["hidden"]
            if model.scale_input:
                state = model.ln0(state) / (2**0.5)
            logits = []
            for i in range(model.n_predict):  # vLLM's generate_proposals, teacher-forced
                z = torch.nn.functional.embedding(data["tokens"][:, i], model.emb[i].weight)
                state = model.proj[i](state)
                state = state + z * (model.emb_weight / model.state_weight)
                state = model.activation(model.ln[i](state))
                logits.append(state @ model.head[i].weight.T)
    torch.save({"loaded": sorted(loaded), "params": sorted(params), "unused": sorted(set(weights) - set(loaded)),
                "logits": torch.stack(logits)}, out)


if __name__ == "__main__":
    main(*sys.argv[1:4])
