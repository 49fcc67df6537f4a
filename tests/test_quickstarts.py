"""Every runnable card's quickstart, run as ``specplug show ID`` and the card page print it (full tier).

A card carries a quickstart exactly when it is runnable (``tests/test_catalogue.py`` checks that in the
fast tier), so a card whose quickstart fails here cannot stay runnable. Each quickstart runs as one bash
script from the root of the checkout, as a user pastes it, with these differences only:

- ``PROMPT`` becomes one short prompt, and ``--max-new-tokens 16`` goes before it;
- the install line (``pip install --find-links dist/wheelhouse ...``) gets ``--no-index --no-deps
  --target DIR``: it installs the wheels it names from the wheelhouse, with no package index to fall back
  on, into a folder of its own, so the environment the tests run in (specplug installed editable) is left
  as it is; the test then finds each named package in DIR;
- the script runs under ``ulimit -v`` (:data:`MEMORY_LIMIT_KB`, 16 GB of address space): a quickstart that
  needs more memory than a modest machine has fails with a MemoryError instead of waking the OOM killer on
  a machine shared with other work;
- everything the quickstarts make goes into one shared ``$SPECPLUG_CACHE`` (a temporary folder holding a
  link to the SmolLM2 model converted once in the real cache), and a command an earlier quickstart already
  ran there (the wheelhouse build, ``specplug train data``, a head both EAGLE and EAGLE-2 use) is not run
  again: training data is made once.

Each quickstart runs on one thread (``OMP_NUM_THREADS=1``), so two run at once (:data:`WORKERS`): first, one
after the other, the quickstarts that are the first to run a command another quickstart repeats (so a
shared step is made once and never by two scripts at the same time); then the rest, two at a time.

The last line the quickstart prints is ``generate --json``'s object: it must name the card (as the method
or the verifier), and for a lossless card report ``"identical": true`` (the same tokens as plain decoding).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from specplug.catalogue_checks import WHEELHOUSE_BUILD, WHEELHOUSE_INSTALL
from specplug.registry import get_registry
from specplug.taxonomy import QUICKSTART_PROMPT, MethodCard

pytestmark = [pytest.mark.slow, pytest.mark.quickstart]

REPO = Path(__file__).resolve().parent.parent
PROMPT = "Summarize: the cat sat on the mat. The cat sat."
NEW_TOKENS = 16
MEMORY_LIMIT_KB = 16_000_000
WORKERS = 2
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")


def _cards() -> list[MethodCard]:
    return sorted((card for card in get_registry().cards.values() if card.quickstart), key=lambda card: card.id)


@pytest.fixture(scope="module")
def shared(tmp_path_factory) -> dict:
    """The cache, environment and record of commands run that the quickstarts share."""
    from specplug.models import fetch_smollm2

    root = tmp_path_factory.mktemp("quickstarts")
    cache, tmp = root / "cache", root / "tmp"
    (cache / "models").mkdir(parents=True)
    tmp.mkdir()
    model = fetch_smollm2()  # converted once in the real cache; linked, never copied
    (cache / "models" / model.name).symlink_to(model, target_is_directory=True)
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",  # this environment's pip, specplug
        "SPECPLUG_CACHE": str(cache),
        "TMPDIR": str(tmp),
        "OMP_NUM_THREADS": "1",
    }
    return {"root": root, "env": env, "done": set()}


def _script(card: MethodCard, site: Path, done: set[str]) -> str:
    """The quickstart as the bash script this test runs (see the module docstring for what changes)."""
    lines = ["set -euo pipefail", f"ulimit -v {MEMORY_LIMIT_KB}"]
    for command in card.quickstart[:-1]:
        if command.startswith(WHEELHOUSE_INSTALL + " "):
            lines.append(f"{command} --no-index --no-deps --quiet --target {shlex.quote(str(site))}")
        elif command in done and not _ASSIGNMENT.match(command):
            lines.append(f": already run by an earlier quickstart: {shlex.quote(command)}")
        else:
            lines.append(command)
    run = card.quickstart[-1]
    placeholder = f'"{QUICKSTART_PROMPT}"'
    assert run.rstrip().endswith(placeholder)
    lines.append(run.rstrip()[: -len(placeholder)] + f"--max-new-tokens {NEW_TOKENS} {shlex.quote(PROMPT)}")
    return "\n".join(lines) + "\n"


def _installed(command: str) -> list[str]:
    """The distributions an install line names, as their import packages (``specplug-pld`` -> ``specplug_pld``)."""
    words = shlex.split(command[len(WHEELHOUSE_INSTALL):])
    return [re.split(r"[\[<>=!~;]", word, maxsplit=1)[0].replace("-", "_") for word in words if not word.startswith("-")]


def _setup_commands(card: MethodCard) -> set[str]:
    """The commands of a quickstart another one may repeat (not its install line, assignments or last line)."""
    return {command for command in card.quickstart[:-1]
            if not command.startswith(WHEELHOUSE_INSTALL + " ") and not _ASSIGNMENT.match(command)}


def _run(card: MethodCard, shared: dict) -> tuple[str, subprocess.CompletedProcess]:
    site = shared["root"] / f"site-{card.id}"
    script = _script(card, site, shared["done"])
    result = subprocess.run(["bash", "-c", script], cwd=REPO, env=shared["env"], capture_output=True, text=True, timeout=1800)
    if result.returncode == 0:
        shared["done"].update(card.quickstart[:-1])
    return script, result


@pytest.fixture(scope="module")
def outcomes(shared: dict, request) -> dict:
    """Every selected quickstart's (script, result), run as the module docstring says."""
    selected = [item.callspec.params["card"] for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec") and "card" in item.callspec.params]
    uses = Counter(command for card in selected for command in _setup_commands(card))
    first, rest, seen = [], [], set()
    for card in selected:
        repeated = {command for command in _setup_commands(card) if uses[command] > 1}
        (first if repeated - seen else rest).append(card)
        seen |= repeated
    results = {card.id: _run(card, shared) for card in first}
    with ThreadPoolExecutor(WORKERS) as pool:
        results.update(zip([card.id for card in rest], pool.map(lambda card: _run(card, shared), rest)))
    return results


@pytest.mark.parametrize("card", _cards(), ids=lambda card: card.id)
def test_quickstart_runs_as_printed(card: MethodCard, shared: dict, outcomes: dict):
    site = shared["root"] / f"site-{card.id}"
    script, result = outcomes[card.id]
    assert result.returncode == 0, f"{card.id}: the quickstart failed\n{script}\nstdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-5000:]}"

    for command in card.quickstart:
        if command.startswith(WHEELHOUSE_INSTALL + " "):
            for package in _installed(command):
                assert (site / package).is_dir(), f"{card.id}: {command!r} did not install {package} from the wheelhouse"
    output = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert output, f"{card.id}: no JSON line in the output:\n{result.stdout[-3000:]}"
    data = json.loads(output[-1])
    assert card.id in (data["method"], data["verifier"]), data
    assert data["new_tokens"] >= 1 and isinstance(data["identical"], bool), data
    if card.lossless:
        assert data["identical"] is True, f"{card.id} is lossless but its output differs from plain decoding: {data}"
        assert data["text"] == data["baseline_text"]
