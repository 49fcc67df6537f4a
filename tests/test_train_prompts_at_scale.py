"""Training prompts at scale: the Spec-Bench overlap check (exact, shared 8-gram, trigram Jaccard),
Magpie's filters and near-duplicate index, the refusal of an overlapping prompt set, the manifest's
validation, and (slow) Magpie synthesis on SmolLM2 that grows across runs without redoing a round."""

from __future__ import annotations

import json

import pytest

from specplug.bench.prompts import spec_bench_path
from specplug.train.magpie import TASK_TYPES, NearDuplicates, keep_reason
from specplug.train.overlap import OverlapError, SpecBenchIndex, check_prompts, refuse_overlap


@pytest.fixture(scope="module")
def index():
    return SpecBenchIndex.build()


def _first_turns(n):
    rows = [json.loads(line) for line in spec_bench_path().read_text().splitlines() if line.strip()]
    return [(str(r["question_id"]), r["turns"][0]) for r in rows[:n]]


def test_spec_bench_prompts_are_caught_exactly_and_nearly(index):
    qid, text = _first_turns(1)[0]
    assert index.match(text)["kind"] == "exact"
    assert index.match("  " + text.upper() + "!!")["kind"] == "exact"  # normalised
    words = text.split()
    edited = " ".join(["Please"] + words[:12] + ["and", "also"] + words[12:])  # reworded around a kept 8-gram
    hit = index.match(edited)
    assert hit is not None and hit["kind"] in ("8-gram", "jaccard") and hit.get("question_id") == qid
    assert index.match("Write a limerick about a cat who learns to fly a kite on a windy day.") is None


def test_a_shared_task_frame_is_not_an_overlap(index, tmp_path):
    # a translation frame shared by dozens of Spec-Bench questions does not flag a new sentence
    frame = "Translate German to English: Der Hund schläft heute lange im warmen Garten hinter dem alten Haus."
    assert index.match(frame) is None
    # an 8-gram frame in three or more reference questions is boilerplate; in two, it is content
    shared = "answer the question using only the passage below please"
    rows = [{"question_id": i, "turns": [f"{shared} passage number {i} about topic {i * 7} ends"]} for i in range(3)]
    (tmp_path / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    small = SpecBenchIndex.build(tmp_path / "q.jsonl")
    assert small.boilerplate > 0 and small.match(f"{shared} a passage of mine about cooking rice") is None
    (tmp_path / "q2.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:2]))
    assert SpecBenchIndex.build(tmp_path / "q2.jsonl").match(f"{shared} a passage of mine about cooking rice")["kind"] == "8-gram"


def test_an_overlapping_prompt_set_is_refused(index):
    record = check_prompts([("mine-1", "Tell me a joke about databases."), *_first_turns(2)], index)
    assert record["checked"] == 3 and record["overlapping"] == 2
    with pytest.raises(OverlapError, match="2 of 3 training prompts overlap Spec-Bench"):
        refuse_overlap(record)
    refuse_overlap(check_prompts([("mine-1", "Tell me a joke about databases.")], index))  # clean: no error


def test_spec_bench_train_is_checked_against_the_held_back_prompts():
    from specplug.train.prompts import training_prompts

    prompts, _ = training_prompts()
    held_back = SpecBenchIndex.build(exclude_ids=[p.id for p in prompts])
    assert held_back.questions == 480 - len(prompts)
    assert check_prompts([(p.id, p.text) for p in prompts], held_back)["overlapping"] == 0


@pytest.mark.parametrize("text, finished, reason", [
    ("What are three ways to reduce stress at work?", True, None),
    ("What are three ways to reduce stress at work", False, "unfinished"),
    ("Hi", True, "length"),
    ("Sure! Here is a poem about the sea for you.", True, "answer_like"),
    ("the cat the cat the cat the cat the cat the cat the cat the cat", True, "repetition"),
    ("1234 5678 9012 3456 7890 +-*/ 1234 5678", True, "not_text"),
    ("Explain <|im_start|> tokens to me please now", True, "template_tokens"),
])
def test_magpie_filters(text, finished, reason):
    assert keep_reason(text, finished) == reason


def test_near_duplicates_are_found():
    seen = NearDuplicates()
    seen.add("How do I sort a list of dictionaries by a key in Python?")
    assert seen.seen("how do I sort a list of dictionaries by a key in python")  # exact after normalising
    assert seen.seen("How do I sort a list of dictionaries by a key in Python 3?")  # near
    assert not seen.seen("What is the capital of Australia and why was it chosen?")


def test_task_types_cover_the_benchmark_categories_without_its_prompts():
    assert {"writing", "roleplay", "reasoning", "math", "coding", "extraction", "stem", "humanities",
            "translation", "summarization", "qa", "rag"} <= set(TASK_TYPES)


@pytest.mark.slow
def test_magpie_data_grows_across_runs_and_validates(tmp_path):
    """SmolLM2 writes its own prompts (transformers route), answers them, the states are stored; a
    second run with a larger count adds a round and leaves the first one's shards alone."""
    pytest.importorskip("torch")
    from specplug.train.data import DataConfig, build_data, validate_manifest
    from specplug.train.dataset import TrainingData

    cfg = DataConfig(prompts="magpie:13", out=str(tmp_path / "d"), engine="transformers", round_size=13, max_new_tokens=8,
                     shard_size=8, quiet=True, max_num_seqs=32, chunk_size=32, synth_max_tokens=40)
    build_data(cfg, log=lambda m: None)
    manifest = validate_manifest(tmp_path / "d")
    assert manifest["complete"] and manifest["overlap"]["overlapping"] == 0 and manifest["overlap"]["checked"] >= 1
    first = {s["file"]: (tmp_path / "d" / s["file"]).stat().st_mtime_ns for s in manifest["shards"]}
    assert set(manifest["throughput"]) >= {"prompts", "responses_transformers", "hidden_states"}
    build_data(DataConfig(**{**cfg.__dict__, "prompts": "magpie:26"}), log=lambda m: None)
    grown = validate_manifest(tmp_path / "d")
    assert len(grown["prompts"]["rounds"]) >= 2 and grown["sequences"] > manifest["sequences"]
    assert all((tmp_path / "d" / f).stat().st_mtime_ns == t for f, t in first.items())
    data = TrainingData(tmp_path / "d", [-1])
    assert len(data.sequences) == grown["sequences"]
