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
    counts = echo.echo_counts([r | {"reference": "plain review text"} for r in rows], echo.Controls(None, 8))
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
    controls = echo.Controls(None, 8)

    def versus(kind):
        return echo.versus_baseline(echo.rescore(records["sft"], kind, controls),
                                    echo.rescore(records["context_sft"], kind, controls))[0]

    raw, clean = versus("raw"), versus("stripped")
    assert raw["rouge1"]["diff"] < 0
    assert clean["rouge1"]["diff"] == pytest.approx(0.0)
    assert clean["meteor"]["diff"] == pytest.approx(0.0)
    assert controls.kinds == ("raw", "stripped")  # no prompts: no `uncopied`


PROMPT = ("<|im_start|>user\n[Item Title]: The Final Sky\n[Item Description]: The Final Sky is a fantasy saga "
          "by author Ana Ruiz, set in rural Kenya. Critics single out its prose.\n[User's Past Reviews]:\n"
          "[Review 1]:\n- [Item Title]: Old Roads\n- [Item Description]: Old Roads is a memoir by author Li Wei, "
          "set in post-war Berlin.\n- [Review Rating]: 4.0\n- [Review Title]: Fine\n- [Review Text]: As usual, "
          "the prose is what I judge first, and it was superb.\n")


def test_item_text_copies_go_and_the_users_own_phrases_stay(echo):
    grams = echo.item_ngrams(PROMPT, 5)
    # each item's title runs into its description; the user's review text is not item text
    assert ("final", "sky", "the", "final", "sky") in grams and ("old", "roads", "old", "roads", "is") in grams
    assert not any("usual" in g for g in grams) and not any("fine" in g for g in grams)
    out = ("- [Item Title]: The Final Sky\n[Item Description]: The Final Sky is a fantasy saga by author Ana Ruiz.\n"
           "As usual, the prose is what I judge first, and it was fine. Set in rural Kenya, loved it.")
    text, share = echo.uncopied(out, grams, 5)
    # removed: "The Final Sky The Final Sky is a fantasy saga by author Ana Ruiz", 14 words of 14 + 13 + 6;
    # "set in rural kenya" is only 4 words, shorter than a copy, and the user's habit stays whole.
    assert text == ".\nAs usual, the prose is what I judge first, and it was fine. Set in rural Kenya, loved it."
    assert share == pytest.approx(14 / 33)
    assert echo.uncopied("Plain review text.", grams, 5) == ("Plain review text.", 0.0)


def test_echo_counts_with_prompts_report_the_copied_share_and_what_is_left(echo):
    rows = [{"example_id": "e1", "reference": "as usual the prose is what i judge first",
             "prediction": "The Final Sky is a fantasy saga by author Ana Ruiz. As usual, the prose is what I judge"}]
    counts = echo.echo_counts(rows, echo.Controls({"e1": PROMPT}, 5))
    assert counts["copied_share"] == pytest.approx(11 / 19)  # "the final sky ... ana ruiz", 11 words of 11 + 8
    left = counts["uncopied"]  # ". As usual, the prose is what I judge": 8 words, all in the 9-word reference
    assert left["rouge1_precision"] == pytest.approx(1.0) and left["rouge1_recall"] == pytest.approx(8 / 9)
    assert echo.echo_counts([], echo.Controls(None, 8)) == {"outputs": 0, "starts_with_a_tag": 0,
                                                            "contains_a_tag": 0}


def test_phrases_reused_from_the_users_past_reviews_are_counted_apart(echo):
    controls = echo.Controls({"e1": PROMPT}, 5)
    rows = [{"example_id": "e1", "prediction": "As usual, the prose is what I judge first. Loved it.",
             "reference": "Great book, as usual the prose is what I judge first."}]
    # 9 of the prediction's 11 words run through the user's own review; none through the item text
    assert controls.copied_share(rows, "history") == pytest.approx(9 / 11)
    assert controls.copied_share(rows) == 0.0
    assert controls.copied_share(rows, "history", "reference") == pytest.approx(9 / 11)


def test_an_output_whose_prompt_is_unknown_is_refused_by_name(echo):
    controls = echo.Controls({"e1": PROMPT}, 5)
    with pytest.raises(SystemExit, match="no prompt for 'Books/u/test/9'"):
        controls.copied_share([{"example_id": "Books/u/test/9", "prediction": "x", "reference": "y"}])
