"""benchmarks/field_echo.py: which markers count as prompt fields, and the rescoring without them."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def echo():
    spec = importlib.util.spec_from_file_location("field_echo", ROOT / "benchmarks" / "field_echo.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_field_markers_go_and_the_words_after_them_stay(echo):
    text = "- [Item Title]: The Final Sky\n[Output Review Text]: You can tell it was loved."
    assert echo.strip_tags(text) == "The Final Sky\nYou can tell it was loved."
    # A bracket inside a sentence is not a field marker: only one opening a line is.
    assert echo.strip_tags("I rate it [5/5]: great.") == "I rate it [5/5]: great."


def test_echo_counts_tell_a_leading_tag_from_a_later_one(echo):
    rows = [{"prediction": p} for p in ("- [Item Title]: X", "Fine.\n[Review 1]: more", "Plain review text.")]
    counts = echo.echo_counts([r | {"reference": "plain review text"} for r in rows])
    assert {k: counts[k] for k in ("outputs", "starts_with_a_tag", "contains_a_tag")} == {
        "outputs": 3, "starts_with_a_tag": 1, "contains_a_tag": 2}
    # ROUGE tokens (lower case, letters and digits): "item title x" shares nothing with "plain review text";
    # "fine review 1 more" shares "review" (P 1/4, R 1/3); "plain review text" matches it (P 1, R 1).
    assert counts["rouge1_precision"] == pytest.approx((0 + 1 / 4 + 1) / 3)
    assert counts["rouge1_recall"] == pytest.approx((0 + 1 / 3 + 1) / 3)
    assert counts["words"] == pytest.approx((4 + 4 + 3) / 3) and counts["reference_words"] == 3


def test_a_lead_that_rests_on_tags_alone_vanishes_when_they_go(echo, tmp_path):
    """Method `a` is the baseline's text plus a field tag: raw scores differ, stripped ones are equal."""
    refs = ["the prose sang and the ending landed", "a slow start but warm characters", "great songs, thin mix"]
    for method, prefix in (("context_sft", ""), ("sft", "- [Item Title]: ")):
        folder = tmp_path / method / "seed42"
        folder.mkdir(parents=True)
        rows = [{"example_id": str(i), "prediction": prefix + ref, "reference": ref} for i, ref in enumerate(refs)]
        (folder / "predictions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = echo.load_records(tmp_path, ["context_sft", "sft"])
    def versus(kind):
        return echo.compare(echo.per_target(echo.rescore(records["sft"], kind)),
                            echo.per_target(echo.rescore(records["context_sft"], kind)))

    raw, clean = versus("raw"), versus("stripped")
    assert raw["rouge1"]["diff"] < 0
    assert clean["rouge1"]["diff"] == pytest.approx(0.0)
    assert clean["meteor"]["diff"] == pytest.approx(0.0)


def test_review_only_drops_echoed_fields_whole_and_keeps_the_review(echo):
    text = ("- [Item Title]: The Final Sky\n[Item Description]: A fantasy saga set in Kenya.\n"
            "[Output Review Text]: You can tell it was loved.\nSecond line of the review.")
    assert echo.review_only(text) == "You can tell it was loved.\nSecond line of the review."
    assert echo.review_only("- [Item Title]: X\n- [Review Rating]: 4.0") == ""
    assert echo.review_only("Plain review, [5/5]: great.") == "Plain review, [5/5]: great."
    assert echo.review_only("[Review 3]:\n- [Output Text]: I had seen it.") == "I had seen it."
