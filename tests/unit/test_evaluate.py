"""Metrics by hand, batched greedy decoding against one prompt at a time, and the evaluate stage."""

import json
import shutil

import pytest
import torch

from nextquill.evaluation.metrics import aggregate, example_scores
from nextquill.model.generation import Decoding, generate
from tests.conftest import held_out_rows


def decoding_of(**changes) -> Decoding:
    """The decoding of params.yaml's defaults with `changes`: tests set only what they vary."""
    from nextquill.config import Params

    return Decoding.from_config(Params().eval, **changes)


def test_metrics_by_hand():
    """ref "the cat sat on the mat" (6 tokens), hyp "the cat sat" (3): ROUGE-1 P = 3/3, R = 3/6, F = 2/3;
    the longest common subsequence is the same 3 tokens, so ROUGE-L F = 2/3 too."""
    scores = example_scores(["the cat sat"], ["the cat sat on the mat"])
    assert scores[0]["rouge1"] == pytest.approx(2 / 3) and scores[0]["rougeL"] == pytest.approx(2 / 3)
    assert 0 < scores[0]["meteor"] < 1


def test_identical_texts_score_perfectly_and_bleu_is_on_0_100():
    refs = ["The pacing was hugely superb, a real page turner for me.", "Not my cup of tea at all, sadly."]
    metrics = aggregate(example_scores(refs, refs), refs, refs)
    assert metrics["rouge1"] == metrics["rougeL"] == 1.0 and metrics["bleu"] == pytest.approx(100.0)
    assert metrics["meteor"] > 0.99 and metrics["n"] == 2
    unrelated = aggregate(example_scores(["zebra quantum"] * 2, refs), ["zebra quantum"] * 2, refs)
    assert unrelated["rouge1"] == 0.0 and unrelated["bleu"] < 1.0


def test_batched_greedy_equals_one_prompt_at_a_time(tiny_model_dir):
    from nextquill.model.loading import load_model

    model, tok = load_model(tiny_model_dir)
    prompts = [tok(t)["input_ids"] for t in ("The pacing was", "I bought this last month and the prose",
                                              "Honestly? pure", "A must-have. Happy reading! The dialogue was")]
    decoding = decoding_of(max_new_tokens=8)
    batched = generate(model, tok, prompts, decoding, batch_size=4)
    single = [generate(model, tok, [p], decoding, batch_size=1)[0] for p in prompts]
    assert batched == single and any(batched)


def test_evaluate_stage_writes_predictions_and_metrics(tmp_path, tiny_model_dir, tiny_tokenizer):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from nextquill.config import EvalConfig, Params, TrainConfig
    from nextquill.data.build import example_schema
    from nextquill.paths import Paths
    from nextquill.stages import evaluate, train

    paths = Paths(tmp_path)
    shutil.copytree(tiny_model_dir, paths.base_model)
    rows = held_out_rows(tiny_tokenizer, 6, lambda i, n: [int(j % 3 == 0) for j in range(n)] if i < 4 else None)
    paths.prepared.mkdir(parents=True)
    table = pa.Table.from_pylist(rows, schema=example_schema())
    pq.write_table(table, paths.prepared / "test.parquet")
    pq.write_table(table, paths.prepared / "train.parquet")
    fast = TrainConfig(max_steps=1, batch_size=2, grad_accum=1, logging_steps=1, save_steps=10, max_examples=None)
    params = Params(train=fast, eval=EvalConfig(max_new_tokens=6, batch_size=4, max_examples=None))
    train.run(params, paths)
    overall = evaluate.run(params, paths)
    metrics = json.loads((paths.reports / "metrics.json").read_text())
    assert metrics["overall"] == overall and overall["n"] == 6
    assert set(metrics["by_category"]) == {"Books", "CDs_and_Vinyl"} and metrics["view"] == "with_history"
    assert metrics["decoding"]["repetition_penalty"] == 1.2 and metrics["decoding"]["do_sample"] is False
    lines = [json.loads(x) for x in (paths.eval_dir / "predictions.jsonl").read_text().splitlines()]
    assert len(lines) == 6 and {"prediction", "reference", "rouge1", "meteor"} <= set(lines[0])
    assert torch.isfinite(torch.tensor([line["rouge1"] for line in lines])).all()
    # The evaluated model's DCE on every gold token, scored against the labels of the 4 labelled rows.
    effects = [json.loads(x) for x in (paths.eval_dir / "token_effects.jsonl").read_text().splitlines()]
    assert all(len(e["dce"]) == len(e["weights"]) == len(e["target_ids"]) for e in effects)
    diag = metrics["diagnostics"]
    labelled = sum(len(e["target_ids"]) for e in effects if e["pref_labels"] is not None)
    assert diag["tokens"] == labelled and 0.0 <= diag["roc_auc"] <= 1.0
    html = (paths.reports / "token_effects.html").read_text()
    assert "nq-report-ready" in html and html.count('class="tok') == sum(len(e["target_ids"]) for e in effects)
    assert (paths.reports / "plots" / "train_loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # Context Steering decodes through the same stage; it needs the with-history view.
    steered = Params(train=fast, eval=EvalConfig(max_new_tokens=6, batch_size=4, max_examples=None, steering=2.0))
    evaluate.run(steered, paths)
    assert json.loads((paths.reports / "metrics.json").read_text())["steering"] == 2.0
    no_history = Params(train=fast, eval=EvalConfig(steering=1.0, view="without_history"))
    with pytest.raises(ValueError, match="eval.steering = 1.0 needs the with-history view"):
        evaluate.run(no_history, paths)


def test_bertscore_with_the_embedded_encoder():
    from nextquill.evaluation.metrics import bertscore_f1, default_encoder

    refs = ["The pacing was superb and the dialogue sparkled.", "The soundtrack felt flat."]
    same = bertscore_f1(refs, refs, default_encoder())
    assert same == pytest.approx([1.0, 1.0], abs=1e-5)
    close, far = bertscore_f1(["The pacing was great and the dialogue shone.", "Quantum zebras eat invoices."],
                              [refs[0], refs[0]], default_encoder())
    assert 0 < far < close < 1


def test_aggregate_counts_outputs_that_stop_before_a_review():
    hyps = ["Not quite here.", "one two three four five six seven eight nine ten", ""]
    refs = ["a full review of the book with many words in it", "short one", "x"]
    result = aggregate(example_scores(hyps, refs), hyps, refs)
    assert result["short_outputs"] == 2 and result["n"] == 3  # 3 words and 0 words are under 10; 10 is not
    assert result["prediction_words"] == (3 + 10 + 0) / 3 and result["reference_words"] == (11 + 2 + 1) / 3
    assert all(0 <= s["sentence_bleu"] <= 100 for s in example_scores(hyps, refs))
