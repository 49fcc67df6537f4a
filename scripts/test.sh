#!/usr/bin/env bash
# Sets up (idempotent) and runs every test: core, plugins, the real-vLLM tier and the docs site.
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -m "not vllm"`.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"
venv=$(bash scripts/setup.sh | tail -n 1)
export PATH="$venv/bin:$PATH"

# Headless Chromium for the docs-site check (Debian packages); skipped where we cannot install.
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null) \
    || echo "warning: could not install chromium; the browser check will be skipped" >&2
fi

# The real model, converted once into the cache (tests marked slow use it).
specplug models fetch smollm2-135m >/dev/null

shopt -s nullglob
test_dirs=(tests plugins/*/tests docs/examples/*/tests)
set +e
python -m pytest -q -p no:cacheprovider "${test_dirs[@]}" "$@"
status=$?
set -e
if [ "$status" = 5 ]; then
  echo "pytest collected no tests" >&2
  exit 0
fi
exit "$status"
