#!/usr/bin/env bash
# The main job on the bundled default: set up, fetch SmolLM2-135M-Instruct (converted once into the
# cache), and benchmark a few methods against plain decoding on one Spec-Bench prompt per category,
# float32 on the CPU, in specplug's reference engine. Prints the per-category table.
# Extra arguments go to `specplug bench` (e.g. --engine vllm, --methods pld).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
venv=$(bash scripts/setup.sh | tail -n 1)
export PATH="$venv/bin:$PATH"
specplug models fetch smollm2-135m
specplug bench --model smollm2-135m --methods pld,suffix,recycling --prompts spec-bench:1 \
  --max-new-tokens 48 --out "${SPECPLUG_DEMO_OUT:-$HOME/.cache/specplug/demo}" "$@"
