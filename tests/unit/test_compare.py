"""The comparison harness: the table's arithmetic by hand, and every kind of method run on a tiny model."""

from __future__ import annotations

import json
import shutil

import pytest

from nextquill.comparison.methods import METHODS
from nextquill.comparison.table import build_table, markdown, relative
from tests.conftest import held_out_rows


def _row(method: str, r1: float, books_r1: float) -> dict:
    return {"method": method, "label": METHODS[method].label, "seed": 42, "seconds": {"train": 10.0},
            "overall": {"n": 4, "rouge1": r1, "rougeL": r1 / 2, "meteor": 0.1, "bleu": 2.0},
            "by_category": {"Books": {"rouge1": books_r1, "rougeL": 0.1, "meteor": 0.1, "bleu": 1.0}},
            "diagnostics": {"roc_auc": 0.7}, "train_loss": 1.0, "steps": 2}


def test_relative_change_over_context_sft_by_hand():
    table = build_table([_row("sft", 0.20, 0.30), _row("context_sft", 0.25, 0.20), _row("nextquill", 0.35, 0.0)])
    by = {m["method"]: m for m in table["methods"]}
    assert table["baseline"] == "context_sft"
    assert by["nextquill"]["vs_context_sft_pct"]["rouge1"] == pytest.approx(40.0)  # (0.35 - 0.25) / 0.25
    assert by["sft"]["vs_context_sft_pct"]["rouge1"] == pytest.approx(-20.0)
    assert by["context_sft"]["vs_context_sft_pct"]["rouge1"] == 0.0
    assert by["sft"]["by_category_vs_context_sft_pct"]["Books"]["rouge1"] == pytest.approx(50.0)
    assert relative(0.1, 0.0) is None and relative(None, 0.2) is None
    text = markdown(table)
    assert "| NextQuill (online DCE) | 0.3500 | 0.1750 | 0.1000 | 2.00 | +40.0% | – | – | 10 | 0 |" in text


def test_table_without_context_sft_has_no_relative_change():
    table = build_table([_row("sft", 0.2, 0.2)])
    assert table["baseline"] is None and "vs_context_sft_pct" not in table["methods"][0]


@pytest.fixture()
def tiny_project(tmp_path, tiny_model_dir, tiny_tokenizer):
    """A project root with the tiny model as models/base, 8 prepared examples and a small params.yaml."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nextquill.data.build import example_schema

    shutil.copytree(tiny_model_dir, tmp_path / "models" / "base")
    rows = held_out_rows(tiny_tokenizer, 8, lambda i, n: [int(j % 2 == 0) for j in range(n)])
    prepared = tmp_path / "data" / "prepared"
    prepared.mkdir(parents=True)
    for split in ("train", "test"):
        pq.write_table(pa.Table.from_pylist(rows, schema=example_schema()), prepared / f"{split}.parquet")
    (tmp_path / "params.yaml").write_text(
        "train: {max_steps: 1, batch_size: 2, grad_accum: 1, logging_steps: 1, save_steps: 10}\n"
        "eval: {max_new_tokens: 4, batch_size: 4}\n"
        "compare: {zero_shot: [base_history], methods: [context_sft], "
        "derived: [context_sft_steering, nextquill_reference], steering: 2.0}\n")
    return tmp_path


def test_methods_run_side_by_side_and_make_one_table(tiny_project):
    from nextquill.compare import main
    from nextquill.comparison.methods import RUNS

    for name in ("base_history", "context_sft", "context_sft_steering", "nextquill_reference"):
        assert main(["run", name, "--root", str(tiny_project), "--params", str(tiny_project / "params.yaml")]) == 0
    runs = tiny_project / RUNS
    assert not (runs / "base_history" / "models").exists()  # a zero-shot baseline trains nothing
    assert (runs / "context_sft" / "models" / "adapter" / "adapter_config.json").is_file()
    steered = json.loads((runs / "context_sft_steering" / "reports" / "metrics.json").read_text())
    assert steered["steering"] == 2.0 and steered["objective"] == "context_sft"
    # nextquill_reference used the context_sft adapter as θ_D: its effects table has a weight per token.
    effects = json.loads((runs / "nextquill_reference" / "reports" / "effects.json").read_text())
    assert effects["estimator"] == "reference" and effects["examples"] == 8
    assert main(["table", "--root", str(tiny_project), "--params", str(tiny_project / "params.yaml")]) == 0
    table = json.loads((tiny_project / "comparison" / "results.json").read_text())
    assert [m["method"] for m in table["methods"]] == ["base_history", "context_sft", "context_sft_steering",
                                                      "nextquill_reference"]
    assert all(m["overall"]["n"] == 8 for m in table["methods"])
    assert table["methods"][0]["lengths"]["reference_words"] == 6.0  # "The pacing was hugely superb {i}!!"
    assert table["methods"][1]["vs_context_sft_pct"]["rouge1"] in (0.0, None)


def test_table_names_a_missing_run(tiny_project):
    from nextquill.compare import main

    with pytest.raises(FileNotFoundError, match="no finished run for method 'base_history'"):
        main(["table", "--root", str(tiny_project), "--params", str(tiny_project / "params.yaml")])


def test_paired_differences_to_context_sft_over_the_same_targets():
    from nextquill.evaluation.statistics import paired_difference

    def scores(offset: float, n: int = 30) -> dict:
        return {f"t{i}": {"rouge1": 0.2 + 0.01 * (i % 7) + offset, "rougeL": 0.1 + 0.005 * (i % 5),
                          "meteor": 0.1, "sentence_bleu": 2.0} for i in range(n)}

    base, better = _row("context_sft", 0.25, 0.2), _row("nextquill", 0.3, 0.2)
    base["scores"], better["scores"] = scores(0.0), scores(0.05)
    better["scores"]["extra"] = {"rouge1": 0.9, "rougeL": 0.9, "meteor": 0.9, "sentence_bleu": 90.0}  # not shared
    table = build_table([base, better])
    got = {m["method"]: m for m in table["methods"]}["nextquill"]["vs_context_sft"]
    shared = sorted(base["scores"])
    want = paired_difference([better["scores"][i]["rouge1"] for i in shared],
                             [base["scores"][i]["rouge1"] for i in shared])
    assert got["rouge1"] == want and got["rouge1"]["diff"] == pytest.approx(0.05) and got["rouge1"]["n"] == 30
    assert got["rouge1"]["ci_low"] > 0 and got["rougeL"]["diff"] == 0.0 and got["rougeL"]["p_value"] == 1.0
    text = markdown(table)
    assert "| NextQuill (online DCE) | +0.0500 [+0.0500, +0.0500] p=" in text and " *" in text
