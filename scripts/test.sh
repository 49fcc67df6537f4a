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

runs=0
# pytest exits 5 when it collects no tests: report that, but do not count it as a failure.
reports=$(mktemp -d)
run_pytest() {
  local status=0
  python -m pytest -q -p no:cacheprovider --junitxml="$reports/run-$((++runs)).xml" "$@" || status=$?
  if [ "$status" = 5 ]; then
    echo "pytest collected no tests in: $*" >&2
    status=0
  fi
  return "$status"
}

# 1. Core: registry, CLI, engine, verifiers, the vLLM tier, benchmarks runner, the docs site.
failed=()
run_pytest tests "$@" || failed+=(tests)

# 2. Every plugin package (installed from its folder by setup.sh), each with its own pytest
#    configuration, as its maintainers run it. One torch thread: tiny models run faster so.
for dir in plugins/specplug-*/; do
  OMP_NUM_THREADS=1 run_pytest "${dir%/}/tests" "$@" || failed+=("${dir%/}")
done

# 3. The plugin guide's example package, installed with pip exactly as the guide says, into a folder
#    of its own (installed into the shared environment its card would appear in every other test).
example_site=$(mktemp -d)
trap 'rm -rf "$example_site" "$reports"' EXIT
python -m pip install --quiet --no-deps --no-build-isolation --target "$example_site" docs/examples/specplug-hello
PYTHONPATH="$example_site" run_pytest docs/examples/specplug-hello/tests "$@" || failed+=(docs/examples/specplug-hello)

# One closing line over every run above.
python - "$reports" <<'PY'
import sys, pathlib, xml.etree.ElementTree as ET
totals = dict(tests=0, failures=0, errors=0, skipped=0)
for report in pathlib.Path(sys.argv[1]).glob("*.xml"):
    for suite in ET.parse(report).getroot().iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"total: {passed} passed, {failed} failed, {totals['skipped']} skipped")
PY
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED test runs: ${failed[*]}" >&2
  exit 1
fi
