"""The comparison table from recorded runs: seeds averaged per target, mean and sd by hand, missing runs shown."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest

from nextquill.comparison.methods import METHODS, record_dir
from nextquill.comparison.table import build_table, collect, markdown, write_table
from nextquill.config import parse_params
from nextquill.evaluation.statistics import paired_difference


def _record(root, method: str, seed: int | None, rouge1: list[float], bleu: float = 2.0) -> None:
    """A run's record as `record_run` writes it: run.json, metrics.json and per-example predictions."""
    folder = record_dir(root, method, seed)
    folder.mkdir(parents=True)
    preds = [{"example_id": f"t{i}", "user_id": f"u{i}", "category": "Books" if i % 2 else "CDs",
              "prediction": "word " * (5 if i == 0 else 12), "reference": "word " * 12, "rouge1": r,
              "rougeL": r / 2, "meteor": 0.1, "sentence_bleu": 100 * r} for i, r in enumerate(rouge1)]
    (folder / "predictions.jsonl").write_text("".join(json.dumps(p) + "\n" for p in preds))
    mean = sum(rouge1) / len(rouge1)
    metrics = {"overall": {"n": len(rouge1), "rouge1": mean, "rougeL": mean / 2, "meteor": 0.1, "bleu": bleu},
               "by_category": {"Books": {"rouge1": mean, "rougeL": mean / 2, "meteor": 0.1, "bleu": bleu}},
               "diagnostics": {"roc_auc": 0.6 if seed == 42 else 0.8}}
    (folder / "metrics.json").write_text(json.dumps(metrics))
    info = {"method": method, "label": METHODS[method].label, "seed": seed,
            "seconds": {"train": 10.0, "evaluate": 4.0}, "commit": "abc", "params_digest": "d1"}
    (folder / "run.json").write_text(json.dumps(info))


def _params(**compare):
    return parse_params({"compare": {"zero_shot": [], "methods": ["context_sft", "nextquill"], "readings": [],
                                     "derived": [], "seeds": [42, 43], "reading_seeds": [42], **compare}})


def test_seeds_are_averaged_per_target_before_the_paired_statistics(tmp_path):
    rng = np.random.default_rng(0)
    base = {s: list(rng.uniform(0.1, 0.3, 30)) for s in (42, 43)}
    ours = {s: list(np.array(base[s]) + rng.normal(0.04, 0.02, 30)) for s in (42, 43)}
    for s in (42, 43):
        _record(tmp_path, "context_sft", s, base[s], bleu=2.0 + s - 42)
        _record(tmp_path, "nextquill", s, ours[s])
    table = build_table(collect(tmp_path, _params()), resamples=2000)
    row = {m["method"]: m for m in table["methods"]}["nextquill"]
    order = sorted(range(30), key=lambda i: f"t{i}")  # targets are paired in example-id order
    averaged = [(ours[42][i] + ours[43][i]) / 2 for i in order]
    reference = [(base[42][i] + base[43][i]) / 2 for i in order]
    want = paired_difference(averaged, reference)  # the slow way: average by hand, then pair
    got = row["metrics"]["rouge1"]["vs_context_sft"]
    assert got["diff"] == pytest.approx(want["diff"]) and got["ci_low"] == pytest.approx(want["ci_low"])
    assert got["p_value"] == pytest.approx(want["p_value"]) and got["ci_low"] > 0
    per_seed = [sum(ours[s]) / 30 for s in (42, 43)]
    assert row["metrics"]["rouge1"]["mean"] == pytest.approx(sum(per_seed) / 2)
    assert row["metrics"]["rouge1"]["sd"] == pytest.approx(statistics.stdev(per_seed))
    assert row["seeds"] == [42, 43] and row["n_targets"] == 30 and row["status"] == "complete"
    assert row["diagnostics"]["roc_auc"] == pytest.approx(0.7)  # the mean of 0.6 and 0.8
    base_row = {m["method"]: m for m in table["methods"]}["context_sft"]
    assert base_row["metrics"]["bleu"]["sd"] == pytest.approx(statistics.stdev([2.0, 3.0]))
    assert base_row["metrics"]["rouge1"]["vs_context_sft"]["diff"] == 0.0
    # BLEU is paired through sentence BLEU (100 x rouge1 in these records)
    assert row["metrics"]["bleu"]["vs_context_sft"]["diff"] == pytest.approx(100 * want["diff"])
    text = markdown(table)
    assert f"| {METHODS['nextquill'].label} | 2 | {row['metrics']['rouge1']['mean']:.4f} ± " in text
    assert " *" in text and "1.0 |" in text  # one output under 10 words per seed


def test_a_missing_method_or_seed_is_shown_not_dropped(tmp_path):
    _record(tmp_path, "context_sft", 42, [0.2, 0.3])
    _record(tmp_path, "context_sft", 43, [0.2, 0.3])
    _record(tmp_path, "nextquill", 42, [0.3, 0.3])
    params = _params(zero_shot=["base_history"])
    table = write_table(tmp_path, params)
    rows = {m["method"]: m for m in table["methods"]}
    assert rows["base_history"]["status"] == "missing" and rows["base_history"]["missing_seeds"] == [None]
    assert rows["nextquill"]["status"] == "partial" and rows["nextquill"]["missing_seeds"] == [43]
    assert rows["nextquill"]["metrics"]["rouge1"]["sd"] is None  # one seed: no sd
    text = (tmp_path / "comparison" / "results.md").read_text()
    assert f"| {METHODS['base_history'].label} | not run |" in text
    assert "| 1 (43 not run) |" in text
    saved = json.loads((tmp_path / "comparison" / "results.json").read_text())
    assert saved["seeds"] == [42, 43] and len(saved["params_digest"]) == 16 and "commit" in saved


def test_a_reading_is_complete_at_its_own_seeds(tmp_path):
    for seed in (42, 43):
        _record(tmp_path, "context_sft", seed, [0.2, 0.3])
    _record(tmp_path, "dce_only", 43, [0.3, 0.4])
    _record(tmp_path, "dce_only", 42, [0.9, 0.9])  # not one of its seeds: not in its row
    rows = {m["method"]: m for m in write_table(tmp_path, _params(readings=["dce_only"], reading_seeds=[43]))
            ["methods"]}
    assert rows["dce_only"]["status"] == "complete" and rows["dce_only"]["seeds"] == [43]
    assert rows["dce_only"]["vs_context_sft"]["rouge1"]["diff"] == pytest.approx(0.1)
    assert rows["nextquill"]["status"] == "missing" and rows["nextquill"]["missing_seeds"] == [42, 43]
    saved = json.loads((tmp_path / "comparison" / "results.json").read_text())
    assert saved["reading_seeds"] == [43]


def test_only_targets_every_seed_scored_are_paired(tmp_path):
    _record(tmp_path, "context_sft", 42, [0.2, 0.3, 0.4])
    _record(tmp_path, "context_sft", 43, [0.2, 0.3])  # t2 missing in one seed
    _record(tmp_path, "nextquill", 42, [0.3, 0.3, 0.3])
    _record(tmp_path, "nextquill", 43, [0.3, 0.3, 0.3])
    rows = {m["method"]: m for m in build_table(collect(tmp_path, _params()), 2000)["methods"]}
    assert rows["context_sft"]["n_targets"] == 2 and rows["nextquill"]["n_targets"] == 3
    assert rows["nextquill"]["vs_context_sft"]["rouge1"]["n"] == 2
    assert rows["nextquill"]["vs_context_sft"]["rouge1"]["diff"] == pytest.approx(0.05)  # (0.1 + 0.0) / 2


def test_zero_shot_methods_decode_once_and_trained_ones_once_per_seed():
    seeded = {n for n, m in METHODS.items() if m.seeded}
    assert {"base_no_history", "base_history", "base_steering", "base_retrieval"}.isdisjoint(seeded)
    assert {"sft", "context_sft", "nextquill", "oppu", "summary", "nextquill_e2e"} <= seeded
    assert {m.kind for m in METHODS.values()} == {"zero_shot", "trained", "derived"}


def test_every_run_scores_the_comparisons_test_sample_and_explicit_choices_win(tmp_path):
    """compare.eval_examples replaces eval.max_examples (make run's sample) in every method; `extra` still wins."""
    import yaml

    from nextquill.comparison.methods import method_params

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump({"eval": {"max_examples": 60}, "compare": {"eval_examples": None}}))
    assert method_params("sft", path, 42).eval.max_examples is None  # every test user
    assert method_params("base_history", path).eval.max_examples is None
    path.write_text(yaml.safe_dump({"eval": {"max_examples": 60}, "compare": {"eval_examples": 25}}))
    params = method_params("context_sft", path, 43)
    assert (params.eval.max_examples, params.train.seed, params.train.objective) == (25, 43, "context_sft")
    assert method_params("sft", path, 42, extra={"eval.max_examples": 30}).eval.max_examples == 30


def test_seed_intervals_pair_each_seed_with_the_baselines_same_seed(tmp_path):
    # Seed 42 gains 0.05 and seed 43 nothing: the targets' CI excludes 0, the seed CI (1 df) does not.
    rng = np.random.default_rng(1)
    base = {s: list(rng.uniform(0.1, 0.3, 40)) for s in (42, 43)}
    gain = {42: 0.05, 43: 0.0}
    for s in (42, 43):
        _record(tmp_path, "context_sft", s, base[s])
        _record(tmp_path, "nextquill", s, [v + gain[s] for v in base[s]])
    row = {m["method"]: m for m in build_table(collect(tmp_path, _params()), 2000)["methods"]}["nextquill"]
    seeds = row["metrics"]["rouge1"]["vs_context_sft_seeds"]
    assert seeds["per_seed"] == pytest.approx([0.05, 0.0]) and seeds["seeds"] == [42, 43]
    half = 12.706204736174698 * statistics.stdev([0.05, 0.0]) / 2 ** 0.5  # t(0.975, 1 df) from a table
    assert (seeds["ci_low"], seeds["ci_high"]) == pytest.approx((0.025 - half, 0.025 + half))
    assert row["metrics"]["rouge1"]["vs_context_sft"]["ci_low"] > 0  # every target gains 0.025 on average
    assert row["verdict"]["rouge1"] == "inconclusive"  # the seeds disagree: not called above
    assert "| 42, 43 | +0.0250 [" in markdown(build_table(collect(tmp_path, _params()), 2000))


def test_a_gain_at_every_seed_is_called_above_and_one_seed_says_targets_only(tmp_path):
    rng = np.random.default_rng(2)
    params = _params(readings=["dce_only"], reading_seeds=[42], zero_shot=["base_history"])
    base = {s: list(rng.uniform(0.1, 0.3, 40)) for s in (42, 43)}
    for s in (42, 43):
        _record(tmp_path, "context_sft", s, base[s])
        _record(tmp_path, "nextquill", s, [v + 0.03 + rng.normal(0, 0.005) for v in base[s]])
    _record(tmp_path, "dce_only", 42, [v - 0.04 for v in base[42]])
    _record(tmp_path, "base_history", None, [0.1] * 40)
    rows = {m["method"]: m for m in build_table(collect(tmp_path, params), 2000)["methods"]}
    assert rows["nextquill"]["verdict"]["rouge1"] == "above"
    assert rows["dce_only"]["vs_context_sft_seeds"] is None
    assert rows["dce_only"]["verdict"]["rouge1"] == "targets only: below"
    # a zero-shot run has no training seed: it is paired with every seed of ContextSFT
    zero = rows["base_history"]["metrics"]["rouge1"]["vs_context_sft_seeds"]
    assert zero["per_seed"] == pytest.approx([0.1 - np.mean(base[s]) for s in (42, 43)])
    assert "verdict" not in rows["context_sft"]


def test_seeds_not_shared_with_the_baseline_or_a_metric_one_seed_lacks_give_no_seed_interval(tmp_path):
    # nextquill ran at 43 and 44, ContextSFT at 42 and 43: one shared seed, so no seed interval.
    params = _params(seeds=[42, 43, 44])
    for s in (42, 43):
        _record(tmp_path, "context_sft", s, [0.2] * 10)
    for s in (43, 44):
        _record(tmp_path, "nextquill", s, [0.4] * 10)
    row = {m["method"]: m for m in build_table(collect(tmp_path, params), 2000)["methods"]}["nextquill"]
    assert row["vs_context_sft_seeds"] is None and row["verdict"]["rouge1"] == "targets only: above"
    # A seed whose predictions lack METEOR: that metric gets no seed interval and says so; the others do.
    _record(tmp_path, "nextquill", 42, [0.4] * 10)
    path = record_dir(tmp_path, "nextquill", 42) / "predictions.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "meteor"}) + "\n" for r in rows))
    row = {m["method"]: m for m in build_table(collect(tmp_path, params), 2000)["methods"]}["nextquill"]
    assert set(row["vs_context_sft_seeds"]) == {"rouge1", "rougeL", "bleu"}
    assert row["vs_context_sft_seeds"]["rouge1"]["seeds"] == [42, 43]
    assert row["verdict"]["meteor"] == "inconclusive" and row["verdict"]["rouge1"] == "above"
