"""The catalogue commands of the ``specplug`` CLI, run as a user runs them (a real subprocess)."""

from __future__ import annotations

import json

from cli_helpers import REPO, run_specplug
from specplug.taxonomy import GenerationStrategy, MethodCard, RefinementStrategy


def test_help_lists_commands():
    result = run_specplug("--help", check=True)
    for command in ("list", "show", "tree", "plugins", "validate", "schema", "generate", "bench", "vllm-config"):
        assert command in result.stdout


def test_list_json_has_cards_covering_every_category():
    cards = json.loads(run_specplug("list", "--json", check=True).stdout)
    assert len(cards) >= 60
    for card in cards:
        assert {"id", "generation", "refinement", "paper"} <= card.keys()
        MethodCard.model_validate({k: v for k, v in card.items() if k != "runnable"})
    assert {c["generation"] for c in cards} >= {g.value for g in GenerationStrategy}
    assert {c["refinement"] for c in cards} >= {r.value for r in RefinementStrategy}


def test_list_filters_on_facets():
    retrieval = json.loads(run_specplug("list", "--generation", "retrieval", "--json", check=True).stdout)
    assert retrieval and all(c["generation"] == "retrieval" for c in retrieval)
    assert "rest" in {c["id"] for c in retrieval}
    lossy = json.loads(run_specplug("list", "--lossy", "--json", check=True).stdout)
    assert lossy and not any(c["lossless"] for c in lossy)
    bad = run_specplug("list", "--generation", "telepathy")
    assert bad.returncode != 0 and "telepathy" in bad.stderr


def test_list_piped_is_plain_text():
    result = run_specplug("list", "--refinement", "iterative", check=True)
    lines = result.stdout.splitlines()
    assert lines[0].split("\t")[0] == "id"
    assert "jacobi" in {line.split("\t")[0] for line in lines[1:]}
    assert "\x1b[" not in result.stdout and "┃" not in result.stdout


def test_show_pld():
    result = run_specplug("show", "pld", check=True)
    assert "Prompt" in result.stdout and "ngram" in result.stdout
    assert "implementations" in result.stdout and "how to run" in result.stdout


def test_show_prints_the_venue_once_and_tags_in_the_facet_block():
    eagle = run_specplug("show", "eagle", check=True).stdout
    assert "(ICML 2024)" in eagle and "ICML 2024, 2024" not in eagle
    suffix = run_specplug("show", "suffix", check=True).stdout
    assert "(NeurIPS 2025)" in suffix and "2025 2024" not in suffix
    assert "(arXiv 2024)" in run_specplug("show", "dare", check=True).stdout  # a venue without a year gets one
    lines = run_specplug("show", "specexec", check=True).stdout.splitlines()
    block = lines[lines.index("") + 3:]  # name, blank, summary, blank: then the aligned facets
    block = block[: block.index("")]
    assert "deployment      distributed, edge, offloading" in block
    assert not any(line.startswith("deployment:") for line in lines)
    rest = run_specplug("show", "rest", check=True).stdout
    assert "vllm_specplug package=specplug-rest level=1 options=datastore" in rest
    assert "level=2 needs=target_topk" in run_specplug("show", "recycling", check=True).stdout


def test_show_prints_the_cards_quickstart_as_the_card_holds_it():
    data = json.loads(run_specplug("show", "sps", "--json", check=True).stdout)
    card = MethodCard.model_validate({k: v for k, v in data.items() if k != "runnable"})
    assert card.quickstart and card.quickstart[-1].endswith('--compare --json "PROMPT"')
    lines = run_specplug("show", "sps", check=True).stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("quickstart"))
    assert lines[start + 1 : start + 1 + len(card.quickstart)] == [f"  {command}" for command in card.quickstart]
    assert "output equals plain decoding" in lines[start + 1 + len(card.quickstart)]
    assert "lossy: the output may differ" in run_specplug("show", "lantern", check=True).stdout
    assert "quickstart" not in run_specplug("show", "cllm", check=True).stdout  # not runnable: none


def test_generate_validates_verifier_options_before_loading_a_model():
    bad = run_specplug("generate", "--method", "pld", "--verifier", "lantern", "--verifier-option", "k=0", "Hello")
    assert bad.returncode == 2 and "k" in bad.stderr and "Traceback" not in bad.stderr
    shapeless = run_specplug("generate", "--verifier", "lantern", "--verifier-option", "k", "Hello")
    assert shapeless.returncode == 2 and "key=value" in shapeless.stderr


def test_show_accepts_aliases_and_case():
    assert run_specplug("show", "PLD", check=True).stdout == run_specplug("show", "pld", check=True).stdout


def test_show_unknown_id_suggests_nearest():
    result = run_specplug("show", "eaglle")
    assert result.returncode != 0
    assert "unknown method 'eaglle'" in result.stderr
    assert "eagle" in result.stderr.split("Did you mean:")[1]


def test_tree_shows_counts():
    result = run_specplug("tree", check=True)
    retrieval = next(line for line in result.stdout.splitlines() if "[" in line and "etrieval" in line)
    count = int(retrieval.split("[")[1].split("]")[0])
    listed = json.loads(run_specplug("list", "--generation", "retrieval", "--json", check=True).stdout)
    assert count == len(listed)


def test_validate_accepts_catalogue_and_rejects_bad_card(tmp_path):
    good = REPO / "registry" / "methods" / "pld.yaml"
    assert run_specplug("validate", str(good), check=True).stdout.strip().endswith("ok (pld)")
    bad = tmp_path / "bad.yaml"
    bad.write_text("id: Bad-Id\nname: x\nsummary: x\ngeneration: telepathy\n")
    result = run_specplug("validate", str(bad))
    assert result.returncode != 0
    assert "generation" in result.stderr and "id" in result.stderr


def test_schema_is_json_schema():
    schema = json.loads(run_specplug("schema", check=True).stdout)
    assert schema["title"] == "MethodCard"
    assert "generation" in schema["properties"]
    assert all("description" in prop or "$ref" in prop or "anyOf" in prop for prop in schema["properties"].values())


def test_plugins_lists_builtin():
    records = json.loads(run_specplug("plugins", "--json", check=True).stdout)
    builtin = next(r for r in records if r["builtin"])
    assert builtin["ok"] and builtin["version"]
