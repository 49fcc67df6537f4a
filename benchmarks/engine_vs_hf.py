"""Plain greedy decoding: the reference engine's tokens/s against HF transformers ``generate``.

Same model, same prompts, same process, alternating runs; both must emit the same tokens.

    python benchmarks/engine_vs_hf.py [--model smollm2-135m] [--prompts 3] [--max-new-tokens 64] [--repeats 2] [--threads N]

Prints per prompt the tokens/s of both and the ratio (engine / HF), then the totals.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

QUESTIONS = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "spec_bench" / "question.jsonl"


def first_turns(path: Path, count: int) -> list[str]:
    """The first turn of the first question of ``count`` different categories."""
    seen, out = set(), []
    for line in path.read_text(encoding="utf-8").splitlines():
        q = json.loads(line)
        if q["category"] not in seen:
            seen.add(q["category"])
            out.append(q["turns"][0])
        if len(out) == count:
            break
    return out


def main() -> None:
    import torch

    from specplug.engine import ReferenceEngine
    from specplug.models import load_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--prompts", type=int, default=3)
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2, help="timed runs per prompt and side; the best counts")
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0 = torch's default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    model, tokenizer = load_model(args.model)
    device = next(model.parameters()).device
    engine = ReferenceEngine(model, tokenizer)
    prompts = []
    for text in first_turns(args.questions, args.prompts):
        ids = tokenizer.apply_chat_template([{"role": "user", "content": text}], add_generation_prompt=True, tokenize=True)
        prompts.append(list(ids["input_ids"] if hasattr(ids, "keys") else ids))

    def run_engine(ids):
        t0 = time.perf_counter()
        out = engine.generate([ids], max_new_tokens=args.max_new_tokens)[0].token_ids
        return out, time.perf_counter() - t0

    def run_hf(ids):
        x = torch.tensor([ids], device=device)
        t0 = time.perf_counter()
        with torch.inference_mode():
            y = model.generate(x, attention_mask=torch.ones_like(x), max_new_tokens=args.max_new_tokens, do_sample=False,
                               pad_token_id=tokenizer.eos_token_id)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return y[0, len(ids):].tolist(), time.perf_counter() - t0

    run_engine(prompts[0][:8])  # warm-up both
    run_hf(prompts[0][:8])
    total = {"engine": [0, 0.0], "hf": [0, 0.0]}
    print(f"model {args.model} ({next(model.parameters()).dtype}, {device}), threads {torch.get_num_threads()}, "
          f"max_new_tokens {args.max_new_tokens}")
    for i, ids in enumerate(prompts):
        best = {}
        for _ in range(args.repeats):
            for name, fn in (("engine", run_engine), ("hf", run_hf)):
                tokens, seconds = fn(ids)
                if name not in best or seconds < best[name][1]:
                    best[name] = (tokens, seconds)
        eng, hf = best["engine"], best["hf"]
        same = eng[0] == hf[0][: len(eng[0])]
        rate = {k: len(v[0]) / v[1] for k, v in best.items()}
        for k, v in best.items():
            total[k][0] += len(v[0])
            total[k][1] += v[1]
        print(f"prompt {i} ({len(ids)} prompt tokens, {len(eng[0])} new): engine {rate['engine']:.1f} tok/s, "
              f"HF generate {rate['hf']:.1f} tok/s, ratio {rate['engine'] / rate['hf']:.2f}x, same tokens: {same}")
    e, h = (total[k][0] / total[k][1] for k in ("engine", "hf"))
    print(f"total: engine {e:.1f} tok/s, HF generate {h:.1f} tok/s, ratio {e / h:.2f}x")


if __name__ == "__main__":
    main()
