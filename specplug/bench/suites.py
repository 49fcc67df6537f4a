"""Benchmark suites: one small TOML file per committed benchmark, run by ``specplug bench --suite FILE``.

A suite says what to measure, once, so that the committed results and the command that remakes
them cannot drift apart::

    # benchmarks/suites/reference_pld.toml
    name = "reference_pld"            # results go to docs/results/<name>.{json,md,png}
    kind = "bench"                    # which suite kind runs it; "bench" is `specplug bench`
    title = "Reference engine: plain decoding vs prompt lookup (pld)"

    [bench]                           # the runner's settings: for "bench", BenchConfig's fields
    methods = ["pld"]                 # plain decoding always runs as the baseline
    peers = []                        # other implementations in the same run, e.g. "pld@native" (vLLM's ngram)
    engine = "reference"
    prompts = "spec-bench:1"
    k = 5
    max_new_tokens = 128
    threads = 1

    [quick]                           # overrides for `--quick`: a tiny run that checks the suite works
    prompts = "spec-bench:1"
    max_new_tokens = 8

Every kind writes the one results schema (:mod:`specplug.bench.results`), which the docs site reads
for the results page and every method's "Measured results". Kinds are registered through the hook
``specplug_register_bench_kinds`` (:class:`specplug.bench.kind.BenchKindSpec`): specplug's own
(``bench``, ``ngram_family``, ``pld_vs_ngram``, ``churn``, ``repetition``; :mod:`specplug.bench.kinds`)
and those of plugins (a method's own benchmark lives in its plugin), so a suite runs only where the
plugin of its kind is installed; a suite names that plugin in ``plugin = "specplug-..."``, and an
uninstalled kind is refused naming it. A kind's ``run(suite, quick, out_dir) -> written paths``
reads its own ``[bench]`` table through :func:`settings_of` (its ``defaults`` name every key it knows).
"""

from __future__ import annotations

import shlex
import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

__all__ = ["Suite", "SuiteError", "bench_kind", "load_suite", "parse_overrides", "run_suite", "settings_of"]


class SuiteError(ValueError):
    """A suite file that cannot run; the message names the file and the fix."""


class Suite(BaseModel):
    """One suite file."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9_]+$", description="Output stem under docs/results.")
    kind: str = Field("bench", description="The suite kind that runs it (registered by specplug or a plugin).")
    plugin: str | None = Field(None, description="The plugin distribution that registers `kind` (named when it is missing).")
    title: str | None = Field(None, description="The report's title.")
    description: str | None = Field(None, description="What the suite measures, for readers of the file.")
    bench: dict[str, Any] = Field(default_factory=dict, description="The runner's settings.")
    quick: dict[str, Any] = Field(default_factory=dict, description="Overrides of `bench` for --quick.")
    path: Path | None = Field(None, exclude=True, description="Where the suite was read from.")
    overrides: dict[str, Any] = Field(default_factory=dict, exclude=True,
                                      description="`--set KEY=VALUE` from the command line, applied last.")

    def command(self, quick: bool) -> str:
        """The command line that runs this suite (recorded in the documents it writes), quoted for a
        POSIX shell so that it can be pasted as it is."""
        sets = "".join(f" --set {shlex.quote(f'{key}={_toml_value(value)}')}" for key, value in self.overrides.items())
        return f"specplug bench --suite {self.path}" + (" --quick" if quick else "") + sets

    def given(self, quick: bool) -> dict[str, Any]:
        """The settings the suite states: ``[bench]``, then ``[quick]`` under --quick, then ``--set``."""
        return {**self.bench, **(self.quick if quick else {}), **self.overrides}


def _toml_value(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return "[" + ",".join(_toml_value(v) if not isinstance(v, str) else f'"{v}"' for v in value) + "]"
    return str(value)


def parse_overrides(pairs: tuple[str, ...] | list[str]) -> dict[str, Any]:
    """``("per_category=1", "engines=['reference']")`` -> settings: each value read as TOML (a number, a
    boolean, a list) or, when it is not TOML, as a plain string."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise SuiteError(f"--set {pair!r}: write KEY=VALUE, for example --set max_new_tokens=64")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        out[key.strip()] = value
    return out


def settings_of(suite: Suite, quick: bool, defaults: dict[str, Any]) -> dict[str, Any]:
    """``defaults`` overridden by the suite's ``[bench]`` (and ``[quick]`` under --quick); unknown keys refused."""
    given = suite.given(quick)
    unknown = set(given) - set(defaults)
    if unknown:
        where = "--set" if unknown <= set(suite.overrides) else "[bench]"
        raise SuiteError(f"{suite.path}: unknown {where} keys {sorted(unknown)}; known: {', '.join(sorted(defaults))}")
    return {**defaults, **given}


def load_suite(path: Path) -> Suite:
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as err:
        raise SuiteError(f"cannot read suite {path}: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise SuiteError(f"{path}: not TOML: {err}") from None
    try:
        suite = Suite(**data, path=Path(path))
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise SuiteError(f"{path}: {problems}") from None
    bench_kind(suite)
    return suite


def bench_kind(suite: Suite):
    """The registered :class:`~specplug.bench.kind.BenchKindSpec` of ``suite.kind``; a kind no installed
    plugin registers (or one that only renders) is a :class:`SuiteError` naming the installed kinds and
    the plugin to install."""
    from specplug.registry import get_registry

    kinds = get_registry().bench_kinds
    spec = kinds.get(suite.kind)
    runnable = sorted(k for k, s in kinds.items() if s.run is not None)
    if spec is None:
        where = (f"install {suite.plugin} (from a checkout: pip install -e plugins/{suite.plugin})" if suite.plugin
                 else "install the plugin that registers it")
        raise SuiteError(f"{suite.path}: no installed plugin registers the suite kind {suite.kind!r}; {where}. "
                         f"Installed kinds: {', '.join(runnable)}")
    if spec.run is None:
        raise SuiteError(f"{suite.path}: kind {suite.kind!r} only renders documents another kind writes; "
                         f"runnable kinds: {', '.join(runnable)}")
    return spec


def run_suite(path: Path, quick: bool = False, out_dir: Path | None = None,
              overrides: dict[str, Any] | None = None) -> list[Path]:
    """Run the suite in ``path``; results go to ``out_dir`` (default: ``docs/results`` of the checkout, and
    ``$SPECPLUG_CACHE/bench/suites`` for --quick, whose smoke runs are not results)."""
    suite = load_suite(path)
    suite.overrides = dict(overrides or {})
    if out_dir is None and quick:
        from specplug.models import cache_dir

        out_dir = cache_dir() / "bench" / "suites"
    out = out_dir or Path(__file__).resolve().parents[2] / "docs" / "results"
    return bench_kind(suite).run(suite, quick, out)
