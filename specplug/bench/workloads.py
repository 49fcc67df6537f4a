"""Workloads with repetition across turns and requests, as prompt sets for ``specplug bench --prompts``.

Cross-request and history-based drafters (SuffixDecoding, REST, prompt lookup) gain most where the
text repeats: multi-turn chat that quotes earlier answers, agents that revise their own output, and
many requests that share one long instruction. First-turn Spec-Bench has none of that. Two sets:

- ``spec-bench-mt``: the second turns of Spec-Bench's 80 MT-bench questions (8 categories of 10),
  each with the model's *own* first-turn answer in the context, as MT-bench is meant to be run.
  Many second turns ask to rewrite, shorten or extend the first answer.
- ``agentic`` (written for specplug; what it models, per category):

  - ``revise-code``: a coding agent's edit loop. The model writes a small function, then is asked
    three times to revise it (type hints and a docstring; input checks; example calls), always
    seeing its previous versions. Measured: the three revision turns.
  - ``revise-text``: a writing assistant's revision loop: a short text, then three revisions that
    keep most of it (tone, length, one added point). Measured: the three revision turns.
  - ``shared-instructions``: a triage service. Every request carries the same long instruction
    block (the output format, field definitions and rules) and differs only in the ticket; the
    answers follow the same template, so earlier outputs predict later ones.

The model's own answers make a set model-specific, so a set is built once per model with vLLM (plain
greedy decoding) and cached as a jsonl of ``messages`` under ``$SPECPLUG_CACHE/bench/workloads/``::

    python -m specplug.bench.workloads build spec-bench-mt   # and: build agentic
    specplug bench --engine vllm --methods pld,suffix --prompts spec-bench-mt

``--prompts NAME:MODEL`` reads the set built for another model (``build NAME --model MODEL``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from specplug.bench.prompts import DEFAULT_WORKLOAD_MODEL, WORKLOADS, spec_bench_path, workload_path

__all__ = ["build_workload"]


# -- the agentic set ------------------------------------------------------------------------------

CODE_TASKS = [
    "Write a Python function `parse_date(text)` that turns a string like '2024-03-17' into a (year, month, day) tuple of ints.",
    "Write a Python function `word_counts(text)` that returns a dict mapping each lowercase word in the text to how often it occurs.",
    "Write a Python function `chunk(items, size)` that splits a list into consecutive lists of at most `size` items.",
    "Write a Python function `celsius_table(start, stop, step)` that returns a list of (celsius, fahrenheit) pairs.",
    "Write a Python function `is_palindrome(text)` that ignores case, spaces and punctuation.",
    "Write a Python function `merge_intervals(intervals)` that merges overlapping (start, end) pairs and returns them sorted.",
    "Write a Python function `read_config(path)` that reads KEY=VALUE lines from a file into a dict, skipping blank lines and lines starting with #.",
    "Write a Python function `moving_average(values, window)` that returns the averages of every run of `window` consecutive values.",
]
CODE_REVISIONS = [
    "Revise your function: add type hints and a short docstring. Show the complete code again.",
    "Revise it once more: raise a ValueError with a clear message when the input is invalid. Show the whole function.",
    "Now add three example calls with their expected results at the end, as a small test. Repeat the full code.",
]
TEXT_TASKS = [
    "Write a short announcement (about 100 words) telling employees that the office will close early on Friday for maintenance.",
    "Write a product description (about 100 words) for a reusable steel water bottle that keeps drinks cold for 24 hours.",
    "Write a short welcome message (about 100 words) for new members of a community gardening club.",
    "Write a brief note (about 100 words) to a landlord reporting that the kitchen sink is leaking.",
    "Write a short summary (about 100 words) of why regular exercise helps sleep.",
    "Write a short invitation (about 100 words) to a neighbourhood book swap on Saturday afternoon.",
    "Write a short customer apology (about 100 words) for a delivery that arrived two days late.",
    "Write a brief introduction (about 100 words) of yourself as a new volunteer at an animal shelter.",
]
TEXT_REVISIONS = [
    "Make your text more formal but keep its structure and every fact. Give the full revised text.",
    "Keep that version and add one sentence about who to contact with questions. Give the whole text again.",
    "Shorten it slightly, keeping the wording of the sentences you keep. Give the final full text.",
]
TRIAGE_INSTRUCTIONS = """You are the triage assistant of a software company's support desk. Read the customer ticket below and answer in exactly this format, one field per line, nothing else:

Category: one of Billing, Login, Performance, Bug, Feature request, Other
Priority: one of Low, Medium, High, Urgent
Product area: the part of the product the ticket is about
Summary: one sentence that restates the problem in neutral words
Next step: one sentence that says what support should do first
Reply to customer: two sentences, polite, that confirm we received the ticket and say what happens next

Rules: choose Urgent only when the customer cannot work at all; choose High when many users are affected; never promise a fix date; do not ask for passwords; if the ticket mentions money, the category is Billing.

Ticket:
"""
TICKETS = [
    "I was charged twice for my monthly plan this month. Please refund one of the payments.",
    "Since this morning I cannot log in; the page says my password is wrong but I did not change it.",
    "The dashboard takes more than a minute to load when I open the sales report.",
    "When I export a report to CSV, the dates in the file are shifted by one day.",
    "It would be great if I could schedule reports to be emailed every Monday.",
    "Our whole team gets an error 500 when saving invoices, so nobody can work.",
    "The mobile app logs me out every time I switch to another app.",
    "I upgraded to the yearly plan but I am still billed monthly.",
    "Search results do not show documents created in the last two days.",
    "Please add a dark mode to the web app.",
    "The page freezes for several seconds when I type in the notes field.",
    "I did not receive the password reset email, even in my spam folder.",
    "The invoice PDF shows the wrong company address.",
    "Uploading a file larger than 10 MB fails without any message.",
    "Two-factor codes from the app are always rejected.",
    "Could you tell me how to change the currency on my invoices?",
]


def _revision_sessions() -> list[tuple[str, str, list[str]]]:
    """``(category, session id, turns)``: the first turn then the revision requests."""
    sessions = [("revise-code", f"code-{i}", [task, *CODE_REVISIONS]) for i, task in enumerate(CODE_TASKS)]
    sessions += [("revise-text", f"text-{i}", [task, *TEXT_REVISIONS]) for i, task in enumerate(TEXT_TASKS)]
    return sessions


# -- building -------------------------------------------------------------------------------------


def _answers(conversations: dict[str, list[dict]], model: str, tokenizer: Any, max_tokens: int) -> dict[str, str]:
    """The model's greedy answer to each conversation, from one batched vLLM run (plain decoding)."""
    from specplug.integrations.vllm.jobs import run_job
    from specplug.models import resolve_model

    prompts = []
    for cid, messages in conversations.items():
        text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prompts.append({"id": cid, "category": "build", "token_ids": tokenizer(text, add_special_tokens=False)["input_ids"]})
    job = {"mode": "timed", "model": resolve_model(model), "speculative_config": None, "max_new_tokens": max_tokens, "temperature": 0.0,
           "seed": 0, "prompts": prompts, "batch": True, "max_num_seqs": len(prompts)}
    rows, _ = run_job(job)
    return {r["prompt_id"]: tokenizer.decode(r["output_ids"], skip_special_tokens=True).strip() for r in rows if "prompt_id" in r}


def _user(text: str) -> dict:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


def build_workload(name: str, model: str = DEFAULT_WORKLOAD_MODEL, max_tokens: int = 192, questions: Path | None = None) -> Path:
    """Build the set ``name`` for ``model`` (vLLM generates the model's own earlier turns); returns its path."""
    from transformers import AutoTokenizer

    from specplug.models import resolve_model

    tokenizer = AutoTokenizer.from_pretrained(resolve_model(model))
    rows: list[dict] = []
    if name == "spec-bench-mt":
        path = questions or spec_bench_path()
        questions_ = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
        two_turn = [q for q in questions_ if len(q["turns"]) >= 2]
        first = _answers({str(q["question_id"]): [_user(q["turns"][0])] for q in two_turn}, model, tokenizer, max_tokens)
        for q in two_turn:
            qid = str(q["question_id"])
            messages = [_user(q["turns"][0]), _assistant(first[qid]), _user(q["turns"][1])]
            rows.append({"id": f"mt{qid}-turn2", "category": q["category"], "messages": messages})
    elif name == "agentic":
        sessions = _revision_sessions()
        history = {sid: [_user(turns[0])] for _, sid, turns in sessions}
        for round_ in range(1, len(CODE_REVISIONS) + 1):  # answer turn `round_`, then ask the next revision
            answers = _answers(history, model, tokenizer, max_tokens)
            for category, sid, turns in sessions:
                history[sid] = history[sid] + [_assistant(answers[sid]), _user(turns[round_])]
                rows.append({"id": f"{sid}-rev{round_}", "category": category, "messages": list(history[sid])})
        rows.sort(key=lambda r: (r["category"], r["id"]))
        for i, ticket in enumerate(TICKETS):
            rows.append({"id": f"ticket-{i}", "category": "shared-instructions", "messages": [_user(TRIAGE_INSTRUCTIONS + ticket)]})
    else:
        raise ValueError(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}")
    out = workload_path(name, model)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return out


@click.group()
def cli() -> None:
    """Workloads with repetition for ``specplug bench --prompts``."""


@cli.command("build")
@click.argument("name", type=click.Choice(sorted(WORKLOADS)))
@click.option("--model", default=DEFAULT_WORKLOAD_MODEL, show_default=True)
@click.option("--max-tokens", type=int, default=192, show_default=True, help="Length of each generated earlier turn.")
def build_command(name: str, model: str, max_tokens: int) -> None:
    """Build workload NAME with the model's own answers (vLLM, plain greedy) and cache it."""
    path = build_workload(name, model, max_tokens)
    click.echo(f"wrote {path}", err=True)


@cli.command("list")
def list_command() -> None:
    """The workloads, and whether each is built for the default model."""
    for name, what in WORKLOADS.items():
        path = workload_path(name)
        click.echo(f"{name}\t{'built' if path.exists() else 'not built'}\t{what}")


if __name__ == "__main__":
    sys.exit(cli())
