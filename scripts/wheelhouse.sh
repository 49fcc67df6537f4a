#!/usr/bin/env bash
# Builds a wheel of specplug and of every plugin package under plugins/ into DIR (default:
# dist/wheelhouse, git-ignored), and prints DIR as the last line.
#
# No package index serves specplug's packages: this is how a checkout installs them, as every card's
# quickstart prints it (`specplug show ID`):
#
#   bash scripts/wheelhouse.sh
#   pip install --find-links dist/wheelhouse "specplug[engine]" specplug-pld
#
# pip takes specplug's packages from the wheelhouse and their dependencies (torch, transformers, ...)
# from the index. Wheels are built without their dependencies (--no-deps), with the build backend
# already installed when it is (--no-build-isolation; otherwise pip fetches hatchling for the build).
# Idempotent: earlier specplug wheels in DIR are replaced.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=${1:-$repo/dist/wheelhouse}
python=${PYTHON:-python3}

mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/specplug-*.whl "$out"/specplug_*.whl

isolation=(--no-build-isolation)
"$python" -c "import hatchling" 2>/dev/null || isolation=()

packages=("$repo")
for dir in "$repo"/plugins/specplug-*/; do
  [ -f "$dir/pyproject.toml" ] && packages+=("${dir%/}")
done
"$python" -m pip wheel --quiet --no-deps "${isolation[@]}" --wheel-dir "$out" "${packages[@]}"
echo "$out"
