"""Prompt rendering, the token budget and per-token preference labels."""

import pytest

from nextquill.data.prompts import build_views, render_user_message, token_labels
from nextquill.data.schema import REVIEW_SYSTEM, HistoryEntry, Target


def entry(i: int) -> HistoryEntry:
    return HistoryEntry((("Item Title", f"Old {i}"), ("Review Text", f"I liked old item {i} a lot.")), timestamp=i)


def target(n_history: int = 3, text: str = "The pacing was hugely superb!!") -> Target:
    history = tuple(entry(i) for i in range(n_history, 0, -1))  # newest first
    return Target(example_id="Books/U/test/9", user_id="U", split="test", category="Books", item_id="I",
                  query=(("Item Title", "New"), ("Item Description", "A new item.")),
                  question=(("Output Review Rating", "5.0"), ("Output Review Title", "Great")),
                  target=text, history=history, system=REVIEW_SYSTEM)


def test_user_message_layout_matches_the_official_prompt():
    t = target(2)
    assert render_user_message(t, t.history, "None") == (
        "[Item Title]: New\n[Item Description]: A new item.\n[User's Past Reviews]:\n"
        "[Review 1]:\n- [Item Title]: Old 2\n- [Review Text]: I liked old item 2 a lot.\n"
        "[Review 2]:\n- [Item Title]: Old 1\n- [Review Text]: I liked old item 1 a lot.\n"
        "\n[Output Review Rating]: 5.0\n[Output Review Title]: Great\n"
    )
    # the no-history literal is followed directly by the question part: no blank line (one token less per row)
    assert render_user_message(t, None, "None") == (
        "[Item Title]: New\n[Item Description]: A new item.\n[User's Past Reviews]:\nNone\n"
        "[Output Review Rating]: 5.0\n[Output Review Title]: Great\n"
    )


def test_views_share_everything_but_the_history_block(tiny_tokenizer):
    views = build_views(tiny_tokenizer, target(), target().history, k=8, max_prompt_tokens=4096,
                        max_target_tokens=64, empty="None")
    assert views.n_history == 3
    head, tail = views.prompt_without.split("None\n", 1)
    assert views.prompt_with.startswith(head) and views.prompt_with.endswith(tail)
    assert views.prompt_ids_with == tiny_tokenizer(views.prompt_with, add_special_tokens=False)["input_ids"]
    assert views.target_ids[-1] == tiny_tokenizer.eos_token_id


def test_budget_keeps_the_newest_entries_that_fit(tiny_tokenizer):
    t = target(6)
    full = build_views(tiny_tokenizer, t, t.history, k=8, max_prompt_tokens=4096, max_target_tokens=64, empty="None")
    budget = len(full.prompt_ids_with) - 1  # one token short: the oldest entry must go
    cut = build_views(tiny_tokenizer, t, t.history, k=8, max_prompt_tokens=budget, max_target_tokens=64,
                      empty="None")
    assert cut.n_history == 5 and len(cut.prompt_ids_with) <= budget
    assert "Old 6" in cut.prompt_with and "[Item Title]: Old 1\n" not in cut.prompt_with
    k2 = build_views(tiny_tokenizer, t, t.history, k=2, max_prompt_tokens=4096, max_target_tokens=64, empty="None")
    assert k2.n_history == 2 and "Old 5" in k2.prompt_with and "Old 4" not in k2.prompt_with


def test_question_part_that_cannot_fit_is_reported(tiny_tokenizer):
    assert build_views(tiny_tokenizer, target(), (), k=8, max_prompt_tokens=20, max_target_tokens=64,
                       empty="None") is None


def test_token_labels_by_hand():
    """text "ab cd!!": tokens "ab" (0,2), " cd" (2,5), "!!" (5,7); spans: "cd" (3,5) and "!!" (5,7).
    " cd" overlaps "cd" by its visible characters; "ab" overlaps nothing; eos is 0."""
    assert token_labels([(0, 2), (2, 5), (5, 7)], "ab cd!!", [(3, 5), (5, 7)]) == [0, 1, 1, 0]
    # A token whose only overlap is the leading space it carries is not preference-bearing.
    assert token_labels([(0, 2), (2, 5)], "ab cd", [(2, 3)]) == [0, 0, 0]


def test_labels_follow_the_spans_through_a_real_tokenizer(tiny_tokenizer):
    text = "The pacing was hugely superb!!"
    spans = [(text.index("hugely"), text.index("hugely") + 6), (len(text) - 2, len(text))]
    views = build_views(tiny_tokenizer, target(text=text), (), k=8, max_prompt_tokens=4096, max_target_tokens=64,
                        empty="None")
    labels = token_labels(views.target_token_spans, text, spans)
    marked = "".join(text[s:e] for (s, e), lab in zip(views.target_token_spans, labels, strict=False) if lab)
    assert marked.replace(" ", "") == "hugely!!"
    assert len(labels) == len(views.target_ids)


@pytest.mark.parametrize("max_target", [5, 8])
def test_target_cut_keeps_eos(tiny_tokenizer, max_target):
    views = build_views(tiny_tokenizer, target(text="word " * 50), (), k=8, max_prompt_tokens=4096,
                        max_target_tokens=max_target, empty="None")
    assert views.target_truncated and len(views.target_ids) == max_target
    assert views.target_ids[-1] == tiny_tokenizer.eos_token_id
