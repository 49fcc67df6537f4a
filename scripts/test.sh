#!/usr/bin/env bash
# Sets up (idempotent) and runs the tests, in two tiers:
#
#   bash scripts/test.sh          the fast tier: the core, every plugin's tests on tiny models, the docs
#                                 check and one vLLM smoke test (one engine pair, pld, identical output);
#                                 about 10 minutes on 2 cores from a warm cache.
#   bash scripts/test.sh --full   everything: adds the SmolLM2 tests, every vLLM engine, serving, tensor
#                                 parallelism, churn, the heads, every card's quickstart and the browser
#                                 check of the docs site; hypothesis runs its full example counts. CI runs this.
#
# Extra arguments go to pytest, e.g. `bash scripts/test.sh -k pld` or `bash scripts/test.sh --full -x`.
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$repo"

tier=fast
args=()
for arg in "$@"; do
  if [ "$arg" = "--full" ]; then tier=full; else args+=("$arg"); fi
done

venv=$(bash scripts/setup.sh | tail -n 1)
export PATH="$venv/bin:$PATH"
# Read by specplug's pytest plugin (specplug.testing.pytest_plugin): hypothesis example counts.
export SPECPLUG_TEST_TIER=$tier

if [ "$tier" = full ]; then
  # Debian packages the full tier uses: headless Chromium for the docs-site check, espeak-ng and sox to
  # synthesise test speech for Whisper; tests that need one are skipped, naming it, where we cannot install.
  packages=()
  command -v chromium >/dev/null 2>&1 || packages+=(chromium chromium-driver)
  command -v espeak-ng >/dev/null 2>&1 || packages+=(espeak-ng)
  command -v sox >/dev/null 2>&1 || packages+=(sox)
  if [ ${#packages[@]} -gt 0 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${packages[@]}" >/dev/null) \
      || echo "warning: could not install ${packages[*]}; the tests that need them will be skipped" >&2
  fi
  # CTranslate2 (MIT), only to check the Whisper conversion against its own decoder; a test-only extra,
  # installed here rather than in setup.sh so the environment's key stays the same.
  python -c "import ctranslate2" 2>/dev/null || python -m pip install --quiet ctranslate2 \
    || echo "warning: could not install ctranslate2; the conversion check against it will be skipped" >&2
  # The real model, converted once into the cache (tests marked slow use it).
  specplug models fetch smollm2-135m >/dev/null
  # The slowest tests, printed at the end: the full tier has a time budget (CI allows 90 minutes).
  selection=(--durations=30)
else
  selection=(-m "(not slow and not vllm and not browser) or smoke")
fi

reports=$(mktemp -d)
example_site=$(mktemp -d)
trap 'rm -rf "$example_site" "$reports"' EXIT
failed=()

# 1. The core and every plugin package, in one pytest run from the root (pyproject.toml's testpaths:
#    tests/ and plugins/). The plugin packages are installed from their folders by setup.sh.
start=$SECONDS
python -m pytest -q -p no:cacheprovider --junitxml="$reports/main.xml" "${selection[@]}" "${args[@]}" \
  || failed+=("core and plugins")

# 2. The plugin guide's example package, installed with pip exactly as the guide says, into a folder
#    of its own (installed into the shared environment its card would appear in every other test).
python -m pip install --quiet --no-deps --no-build-isolation --target "$example_site" docs/examples/specplug-hello
status=0
PYTHONPATH="$example_site" python -m pytest -q -p no:cacheprovider --junitxml="$reports/example.xml" \
  docs/examples/specplug-hello/tests "${args[@]}" || status=$?
# pytest exits 5 when it collects no tests (a -k that matches nothing there): not a failure.
if [ "$status" != 0 ] && [ "$status" != 5 ]; then failed+=(docs/examples/specplug-hello); fi

# One closing line over both runs.
python - "$reports" "$tier" "$((SECONDS - start))" <<'PY'
import sys, pathlib, xml.etree.ElementTree as ET
totals = dict(tests=0, failures=0, errors=0, skipped=0)
for report in pathlib.Path(sys.argv[1]).glob("*.xml"):
    for suite in ET.parse(report).getroot().iter("testsuite"):
        for key in totals:
            totals[key] += int(suite.get(key, 0))
failed = totals["failures"] + totals["errors"]
passed = totals["tests"] - failed - totals["skipped"]
print(f"{sys.argv[2]} tier: {passed} passed, {failed} failed, {totals['skipped']} skipped in {int(sys.argv[3]) // 60} min {int(sys.argv[3]) % 60} s")
PY
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED test runs: ${failed[*]}" >&2
  exit 1
fi
