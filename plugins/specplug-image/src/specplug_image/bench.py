"""The suite kind ``image``: exact speculative sampling, LANTERN and SJD on the digits model.

One command (trains the digits models first when the cache has none, a few CPU minutes)::

    specplug bench --suite benchmarks/suites/image.toml            # 10 images per class per setting
    specplug bench --suite benchmarks/suites/image.toml --quick    # 1 image per class, into the cache

Every setting samples the same class-conditional requests (temperature 1, request i seeded i) in
specplug's reference engine and is scored by a classifier of the real digits (class accuracy, and a
Fréchet distance on its features to the real held-out test images). Plain sampling, measured in the
same run, is the reference for quality and speed; a second plain run with other seeds shows how much
the quality figures move by chance alone. Writes ``image.json``, ``image.md``, ``image_quality.png``
and ``image_grid.png`` into ``--out`` (default ``docs/results``).

MAT, acceptance and quality do not depend on the machine; tokens/s and speedup do, and are taken on
whatever else the machine runs (the page records ``uptime``'s load average before and after).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from specplug.bench.kind import BenchKindSpec

ROOT = Path(__file__).resolve().parents[4]  # the checkout the plugin is installed from
COMMAND = None  # the suite's command line, set by run()


def machine_load() -> str:
    try:
        one, five, fifteen = os.getloadavg()
        return f"{one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min) on {os.cpu_count()} CPUs"
    except OSError:
        return "unknown"


def settings(args) -> list[dict]:
    """The settings to run, in table order."""
    out = [{"name": "plain", "drafter": "plain", "verifier": "speculative_sampling", "k": 1},
           {"name": "plain (other seeds)", "drafter": "plain", "verifier": "speculative_sampling", "k": 1, "seed": 100_000},
           {"name": "draft + exact", "drafter": "draft", "verifier": "speculative_sampling", "k": args.k}]
    for delta in args.deltas:
        out.append({"name": f"draft + LANTERN d={delta:g}", "drafter": "draft", "verifier": "lantern", "k": args.k,
                    "lantern": {"delta": delta, "k": args.neighbours}})
    out.append({"name": "SJD", "drafter": "sjd", "verifier": "speculative_sampling", "k": args.window,
                "sjd": {"window": args.window}})
    out.append({"name": f"SJD + LANTERN d={args.sjd_delta:g}", "drafter": "sjd", "verifier": "lantern", "k": args.window,
                "sjd": {"window": args.window}, "lantern": {"delta": args.sjd_delta, "k": args.neighbours}})
    return out


def measure(args) -> dict:
    import torch

    from specplug.engine import ReferenceEngine
    from specplug_image.generate import build_setting, sample_images
    from specplug_image.quality import DigitsJudge
    from specplug_image.train import load_digits_models, read_report, train_digits

    torch.set_num_threads(args.threads)
    model_dir = train_digits(args.model)  # reuses a trained folder
    target, draft = load_digits_models(model_dir)
    engine = ReferenceEngine(target)
    judge = DigitsJudge()
    labels = np.repeat(np.arange(10), args.per_class)
    load_before = machine_load()
    rows, grids = [], {}
    # warm-up: the first forwards of a fresh model are slower (allocator, kernels)
    sample_images(engine, labels[:2], None, "speculative_sampling", k=1)
    for setting in settings(args):
        seed = setting.get("seed", 0)
        proposer, verifier = build_setting(setting["drafter"], target, draft, setting["verifier"],
                                           setting.get("lantern"), setting.get("sjd"), seed=seed)
        result = sample_images(engine, labels, proposer, verifier, k=setting["k"], temperature=1.0, seed=seed)
        quality = judge.score(result.images, result.labels)
        stats = result.stats
        row = {
            **{key: setting[key] for key in ("name", "drafter", "verifier", "k")},
            **({"lantern": setting["lantern"]} if "lantern" in setting else {}),
            **({"sjd": setting["sjd"]} if "sjd" in setting else {}),
            "images": len(labels), "target_forwards": stats.steps, "drafted": stats.drafted, "accepted": stats.accepted,
            "mat": stats.mat, "acceptance_rate": stats.acceptance_rate, "seconds": result.seconds,
            "draft_seconds": stats.draft_s, "tokens_per_s": stats.new_tokens / result.seconds,
            "accuracy": quality.accuracy, "frechet": quality.frechet, "invalid_tokens": result.invalid_tokens,
        }
        rows.append(row)
        shown = [c * args.per_class + j for j in range(min(2, args.per_class)) for c in range(10)]
        grids[setting["name"]] = result.images[shown]  # row j: the j-th image of every class
        print(f"{row['name']:>24}: MAT {row['mat']:.2f}, acceptance {row['acceptance_rate']:.1%}, "
              f"accuracy {row['accuracy']:.1%}, Fréchet {row['frechet']:.2f}, {row['seconds']:.1f}s", flush=True)
    base = rows[0]["tokens_per_s"]
    for row in rows:
        row["speedup"] = row["tokens_per_s"] / base if base else None
    real = judge.real_reference()
    report = read_report(model_dir)
    meta = {
        "command": COMMAND or "python -m specplug_image.bench " + " ".join(sys.argv[1:]),
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "hardware": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs visible, torch threads {args.threads}",
        "load_before": load_before, "load_after": machine_load(),
        "per_class": args.per_class, "temperature": 1.0, "lantern_neighbours": args.neighbours,
        "model": {"target_parameters": report["target"]["parameters"], "draft_parameters": report["draft"]["parameters"],
                  "target_test_nll": report["target"]["test_nll"], "draft_test_nll": report["draft"]["test_nll"],
                  "train_seconds": report["target"]["seconds"] + report["draft"]["seconds"],
                  "target_steps": report["target"]["steps"], "draft_steps": report["draft"]["steps"]},
        "real_images": {"test_accuracy": real.accuracy, "train_vs_test_frechet": real.frechet},
    }
    return {"schema": "specplug-image/1", "meta": meta, "settings": rows, "grids": grids}


def plot_quality(rows: list[dict], meta: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    plain = rows[0]
    for ax, key, label in zip(axes, ("mat", "acceptance_rate", "accuracy"),
                              ("MAT (tokens per target forward)", "acceptance rate", "class accuracy")):
        for row in rows:
            colour = "grey" if row["drafter"] == "plain" else ("tab:blue" if row["drafter"] == "draft" else "tab:orange")
            marker = "s" if row["verifier"] == "lantern" else "o"
            if key == "accuracy":
                ax.scatter(row["accuracy"], row["frechet"], c=colour, marker=marker)
                ax.annotate(row["name"], (row["accuracy"], row["frechet"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
            else:
                ax.scatter(row[key], row["frechet"], c=colour, marker=marker)
                ax.annotate(row["name"], (row[key], row["frechet"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.axhline(plain["frechet"], color="grey", ls="--", lw=0.8, label="plain sampling")
        ax.axhline(meta["real_images"]["train_vs_test_frechet"], color="green", ls=":", lw=0.8, label="real train images")
        ax.set_xlabel(label)
        ax.set_ylabel("Fréchet distance to real test images (lower is better)")
        ax.grid(alpha=0.3)
    lantern = [r for r in rows if r["drafter"] == "draft"]
    axes[0].plot([r["mat"] for r in lantern], [r["frechet"] for r in lantern], color="tab:blue", lw=0.8)
    axes[1].plot([r["acceptance_rate"] for r in lantern], [r["frechet"] for r in lantern], color="tab:blue", lw=0.8)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle("Digits model: speed (MAT, acceptance) against quality; blue = 1-layer drafter, orange = SJD, squares = LANTERN",
                 fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def render_markdown(doc: dict) -> str:
    meta, rows = doc["meta"], doc["settings"]
    m = meta["model"]
    real = meta["real_images"]
    out = [
        "# Image generation: exact speculative sampling, LANTERN and SJD on a digits model",
        "",
        "The survey's application section (VII.A) files LANTERN (relaxed acceptance, lossy) and Speculative Jacobi "
        "Decoding for autoregressive image models, whose flat next-token distributions defeat exact acceptance. "
        "Here both run in specplug's reference engine on a real image data set and an image model trained here.",
        "",
        "Command:",
        "",
        "```bash",
        meta["command"].strip(),
        "```",
        "",
        f"**Data**: scikit-learn's UCI handwritten digits (1,797 real 8x8 images, 17 grey levels), split 80/20 "
        f"stratified; one token per pixel after a class token. **Target**: a 3-layer Llama "
        f"({m['target_parameters']:,} parameters, {m['target_steps']} steps, test NLL {m['target_test_nll']:.3f} "
        f"nats/pixel); **drafter**: a 1-layer Llama ({m['draft_parameters']:,} parameters, test NLL "
        f"{m['draft_test_nll']:.3f}); both trained on CPU by `specplug models train-digits` "
        f"({m['train_seconds'] / 60:.0f} min here). **Requests**: {meta['per_class']} images per class per setting, "
        f"temperature {meta['temperature']:g}, request i seeded i. LANTERN's neighbourhoods: the "
        f"{meta['lantern_neighbours']} nearest tokens by cosine similarity of the target's own input embeddings.",
        "",
        f"**Quality**: an MLP classifier trained on the real training images (accuracy on real test images "
        f"{real['test_accuracy']:.1%}) judges every generated image: *class accuracy* is the share it assigns to the "
        f"class asked for; *Fréchet distance* (FID-style, on its 64 hidden features) compares generated images with "
        f"the real test images (real training images score {real['train_vs_test_frechet']:.2f}). Plain sampling is "
        "the reference; *plain (other seeds)* shows how far the figures move by chance alone.",
        "",
        f"Machine: {meta['hardware']}; load average {meta['load_before']} before and {meta['load_after']} after "
        f"({meta['date']}). Other jobs shared the CPUs: the seconds and speedups are indicative only; MAT, "
        "acceptance and quality do not depend on the machine.",
        "",
        "| setting | k | MAT | acceptance | target forwards | class accuracy | Fréchet distance | seconds | speedup |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        out.append(
            f"| {r['name']} | {r['k']} | {r['mat']:.2f} | {100 * r['acceptance_rate']:.1f}% | {r['target_forwards']} | "
            f"{100 * r['accuracy']:.1f}% | {r['frechet']:.2f} | {r['seconds']:.1f} | {r['speedup']:.2f}x |"
        )
    out += [
        "",
        "MAT = pixels emitted per target forward (1.00 for plain sampling); acceptance = accepted / drafted tokens; "
        "speedup = images per second over plain sampling's in the same run.",
        "",
        "Plots: `image_quality.png` (speed against quality) and `image_grid.png` (two samples of every class "
        "per setting, the same requests in every panel).",
        "",
    ]
    return "\n".join(out)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=None, help="digits models folder (default: the cache; trained if missing)")
    parser.add_argument("--per-class", type=int, default=10, help="images per class per setting (default 10)")
    parser.add_argument("--k", type=int, default=4, help="draft tokens per step of the 1-layer drafter")
    parser.add_argument("--deltas", type=lambda s: [float(x) for x in s.split(",")], default=[0.05, 0.1, 0.2, 0.4])
    parser.add_argument("--neighbours", type=int, default=4, help="LANTERN's k (latent neighbours per token)")
    parser.add_argument("--window", type=int, default=16, help="SJD's Jacobi window (also its k)")
    parser.add_argument("--sjd-delta", type=float, default=0.2, help="delta of the SJD + LANTERN setting")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "results")
    args = parser.parse_args(argv)
    doc = measure(args)
    grids = doc.pop("grids")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "image.json").write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    (args.out / "image.md").write_text(render_markdown(doc), encoding="utf-8")
    plot_quality(doc["settings"], doc["meta"], args.out / "image_quality.png")
    from specplug_image.plots import save_setting_grids

    save_setting_grids(grids, args.out / "image_grid.png")
    print(f"wrote {args.out / 'image.md'}, image.json, image_quality.png, image_grid.png")



# -- suite kind ``image`` ----------------------------------------------------------------------------------

DEFAULTS = {"model": None, "per_class": 10, "k": 4, "deltas": [0.05, 0.1, 0.2, 0.4], "neighbours": 4, "window": 16,
            "sjd_delta": 0.2, "threads": 1}


def run(suite, quick: bool, out_dir: Path) -> list[Path]:
    from specplug.bench.scripted import run_script
    from specplug.bench.suites import settings_of

    return run_script(sys.modules[__name__], suite, quick, out_dir, settings_of(suite, quick, DEFAULTS),
                      ["--out", "{tmp}"], "image.json", keep=("image_*.png",))


def method_name(row: dict) -> str:
    """A setting's method in the document: its card id, the setting in the variant (``lantern:d=0.2``)."""
    import re

    delta = re.search(r"d=([0-9.]+)", row["name"])
    if row["drafter"] == "plain":
        return "plain" if row["name"] == "plain" else "plain:other-seeds"
    if row["drafter"] == "sjd":
        return "sjd" if row["verifier"] != "lantern" else f"sjd:lantern-d={delta.group(1)}"
    return "sps:digits-draft" if row["verifier"] != "lantern" else f"lantern:d={delta.group(1)}"


def convert(legacy: dict, path: Path | None = None) -> dict:
    """Summary only (images, not prompts): per setting MAT, acceptance, forwards, seconds, speedup;
    extra: quality (class accuracy, Fréchet distance), the models and the run's conditions."""
    from specplug.bench.documents import aggregate_json, summary_doc

    meta = legacy["meta"]
    per = {method_name(r): {"overall": aggregate_json(
        prompts=r["images"], steps=r["target_forwards"], drafted=r["drafted"], accepted=r["accepted"], seconds=r["seconds"],
        draft_s=r["draft_seconds"], mat=r["mat"], acceptance_rate=r["acceptance_rate"], tokens_per_s=r["tokens_per_s"],
        speedup=r["speedup"])} for r in legacy["settings"]}
    doc_meta = {"title": "Image generation: exact speculative sampling, LANTERN and SJD on a digits model",
                "model": "digits Llama (3 layers; 1-layer drafter)", "engine": "reference", "prompts": "digits classes",
                "num_prompts": 10 * meta["per_class"], "k": "per setting", "max_new_tokens": 64,
                "temperature": meta["temperature"], "dtype": "float32", "device": "cpu", "hardware": meta["hardware"],
                "date": meta["date"], "command": meta["command"].strip()}
    return {"image": summary_doc(doc_meta, per, {"kind": "image", "run": legacy})}


def render(results, heading: str = "#") -> list[str]:
    from specplug.bench.documents import demoted

    return demoted(render_markdown(results.extra["run"]), heading)


def is_legacy(data: dict) -> bool:
    """Whether ``data`` is the ``specplug-image/1`` file the old image script wrote."""
    return data.get("schema") == "specplug-image/1"


KIND = BenchKindSpec(id="image", run=run, render=render, convert=convert, detect=is_legacy, defaults=DEFAULTS)


if __name__ == "__main__":
    main()
