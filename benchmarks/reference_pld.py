"""Plain decoding vs prompt lookup (pld) in specplug's reference engine, per Spec-Bench category.

SmolLM2-135M-Instruct in float32 on the CPU, 13 Spec-Bench prompts (one per category), k=5, at most
128 new tokens, greedy. Writes docs/results/reference_pld.{json,md,png} and prints the table. A thin
call of the bench runner: the same as

    specplug bench --methods pld --model smollm2-135m --prompts spec-bench:1 --k 5 \
        --max-new-tokens 128 --threads 1 --out docs/results --name reference_pld

Takes about 10+ minutes on a 2-core machine; interrupted runs resume from the cache.
"""

from __future__ import annotations

import sys
from pathlib import Path

from specplug.bench.commands import print_table
from specplug.bench.runner import BenchConfig, run_bench, write_outputs

ROOT = Path(__file__).resolve().parent.parent

if __name__ == "__main__":
    cfg = BenchConfig(
        methods=["pld"],
        engine="reference",
        model="smollm2-135m",
        prompts="spec-bench:1",
        k=5,
        max_new_tokens=128,
        title="Reference engine: plain decoding vs prompt lookup (pld)",
        threads=1,  # a shared 2-core machine: one thread per process (see BenchConfig.threads)
        command="python benchmarks/reference_pld.py",
    )
    results = run_bench(cfg)
    written = write_outputs(results, ROOT / "docs" / "results", "reference_pld")
    print_table(results, sys.stdout)
    print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in written), file=sys.stderr)
