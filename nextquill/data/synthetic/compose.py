"""Review text, titles and item metadata of the synthetic benchmark, with the preference spans.

A review is a list of sentences, each a list of (text, kind) segments. kind is None for item-driven
and generic text, and one of `PREFERENCE_KINDS` for text that the user's preferences produced; the
character spans of those segments are the ground truth an effect estimator is scored against.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from nextquill.data.synthetic import vocab
from nextquill.data.synthetic.people import Item, User

PREFERENCE_KINDS = ("opener", "aspect", "intensifier", "signature", "punctuation", "sign_off")
Segment = tuple[str, str | None]


@dataclass
class Review:
    text: str
    spans: list[dict] = field(default_factory=list)  # {"start", "end", "kind"} over `text`


def join_sentences(sentences: list[list[Segment]]) -> Review:
    """Concatenate sentences with single spaces and record the character span of every preference segment."""
    text, spans = [], []
    pos = 0
    for i, sentence in enumerate(sentences):
        if i:
            text.append(" ")
            pos += 1
        for chunk, kind in sentence:
            core = chunk.strip()
            if kind is not None and core:
                start = pos + len(chunk) - len(chunk.lstrip())  # spans never begin or end with a space
                end = start + len(core)
                if spans and spans[-1]["kind"] == kind and pos - spans[-1]["end"] <= 1:
                    spans[-1]["end"] = end  # adjacent segments of one kind make one span
                else:
                    spans.append({"start": start, "end": end, "kind": kind})
            text.append(chunk)
            pos += len(chunk)
    return Review("".join(text), spans)


def _fill(rng: random.Random, frame: str, values: dict[str, str]) -> str:
    fills = {k: rng.choice(v) for k, v in vocab.GENERIC_FILLS.items()}
    return frame.format(**{**fills, **values})


def item_sentence(rng: random.Random, item: Item, frame: str) -> list[Segment]:
    pools = vocab.CATEGORIES[item.category]
    values = {
        "genre": item.genre, "creator": item.creator, "setting": item.setting, "title": item.title,
        "strength": item.strengths[0], "strength2": item.strengths[1], "weakness": item.weakness,
        "strong": rng.choice(vocab.JUDGEMENT["strong"]), "weak": rng.choice(vocab.JUDGEMENT["weak"]),
        "noun": pools["noun"],
    }
    if rng.random() < 0.5:
        values["strength"], values["strength2"] = values["strength2"], values["strength"]
    text = _fill(rng, frame, values)
    return [(text[0].upper() + text[1:], None)]


def aspect_sentence(rng: random.Random, user: User, item: Item, aspect: str) -> list[Segment]:
    """The user's habitual remark on an aspect they care about; only the judgement comes from the item."""
    prefix, suffix = vocab.ASPECT_FRAMES[rng.choice(user.frames)]
    head, tail = prefix.split("{intens}")
    judgement = rng.choice(vocab.JUDGEMENT[item.judgement_level(aspect)])
    return [
        (head.format(aspect=aspect), "aspect"),
        (rng.choice(user.intensifiers), "intensifier"),
        (tail, "aspect"),
        (judgement, None),
        (suffix, "aspect"),
    ]


def signature_sentence(rng: random.Random, user: User) -> list[Segment]:
    before, after = rng.choice([("Honestly? ", "."), ("In a word: ", "."), ("It's ", ", if you ask me."),
                                ("Verdict from me: ", "."), ("", " is how I'd put it.")])
    phrase = rng.choice(user.signatures)
    if not before:
        phrase = phrase[0].upper() + phrase[1:]
    return [(before, None), (phrase, "signature"), (after, None)]


def generic_sentence(rng: random.Random, frame: str | None = None) -> list[Segment]:
    return [(_fill(rng, frame or rng.choice(vocab.GENERIC_FRAMES), {}), None)]


def _punctuate(rng: random.Random, user: User, sentence: list[Segment]) -> list[Segment]:
    """The user's punctuation habit replaces some final full stops, and those marks are preference-bearing."""
    last, kind = sentence[-1]
    if user.punctuation is None or not last.endswith(".") or rng.random() >= user.punctuation_rate:
        return sentence
    return [*sentence[:-1], (last[:-1], kind), (user.punctuation, "punctuation")]


def compose_review(rng: random.Random, user: User, item: Item, rating: int, min_chars: int) -> Review:
    """One review of `item` by `user`: item-driven, user-driven and generic sentences mixed."""
    # Frames are drawn without replacement: a review never repeats a sentence frame.
    middle = [item_sentence(rng, item, f) for f in rng.sample(vocab.ITEM_FRAMES, rng.randint(*user.item_range))]
    middle += [aspect_sentence(rng, user, item, a) for a in user.aspects if rng.random() < 0.85]
    if rng.random() < user.signature_rate:
        middle.append(signature_sentence(rng, user))
    generic = rng.sample(vocab.GENERIC_FRAMES, len(vocab.GENERIC_FRAMES))
    n_generic = rng.randint(*user.generic_range)
    middle += [generic_sentence(rng, f) for f in generic[:n_generic]]
    rng.shuffle(middle)
    head = [[(user.opener, "opener")]] if user.opener and rng.random() < 0.8 else []
    tail = [[(rng.choice(vocab.VERDICTS[rating]), None)]]
    if user.sign_off and rng.random() < 0.75:
        tail.append([(user.sign_off, "sign_off")])
    sentences = head + [_punctuate(rng, user, s) for s in middle] + tail
    review = join_sentences(sentences)
    while len(review.text) < min_chars:  # pad with generic text only, never with preference text
        middle.append(generic_sentence(rng, generic[n_generic % len(generic)]))
        n_generic += 1
        sentences = head + [_punctuate(rng, user, s) for s in middle] + tail
        review = join_sentences(sentences)
    return review


def short_review(rng: random.Random, rating: int) -> Review:
    """A review under the DPL length floor: noise the `prepare` stage must reject."""
    return join_sentences([[(rng.choice(vocab.VERDICTS[rating]), None)], generic_sentence(rng)])


def review_title(rng: random.Random, user: User, rating: int) -> str:
    title = rng.choice(vocab.TITLE_FRAMES[rating])
    if rng.random() < user.signature_rate / 3:
        phrase = rng.choice(user.signatures)
        title = f"{title}, {phrase}"
    return title


def description(rng: random.Random, item: Item) -> list[str]:
    """The item's `description` list as in Amazon metadata: marketing text plus an editorial review."""
    if item.distractor:
        return ["Great item."] if rng.random() < 0.5 else []
    pools = vocab.CATEGORIES[item.category]
    role = pools["creator_role"]
    blurb = (
        f"{item.title} is a {item.genre} by {role} {item.creator}, set in {item.setting}. "
        f"Critics single out its {item.strengths[0]} and its {item.strengths[1]}. "
        f"{item.creator} brings a distinctive voice to every part of this {pools['noun']}."
    )
    review = (
        f"\"A {rng.choice(vocab.JUDGEMENT['strong'])} {item.genre}, even if the {item.weakness} "
        f"is {rng.choice(vocab.JUDGEMENT['weak'])}.\" -- {rng.choice(vocab.LAST_NAMES)} Review"
    )
    parts = [blurb, review]
    if rng.random() < 0.4:  # the DPL filter strips a leading "Product Description" entry
        parts.insert(0, "Product Description")
    return parts


def meta_record(rng: random.Random, item: Item, ratings: list[float]) -> dict:
    """One line of `meta_{Category}.jsonl`, with McAuley Lab's field names and types."""
    pools = vocab.CATEGORIES[item.category]
    details = {k: (rng.choice(v) if v else item.creator) for k, v in pools["details"].items()}
    store = f"{item.creator} ({pools['creator_role'].capitalize()})" if item.category == "Books" else item.creator
    return {
        "main_category": pools["main_category"],
        "title": "" if item.distractor and rng.random() < 0.5 else item.title,
        "average_rating": round(sum(ratings) / len(ratings), 1) if ratings else None,
        "rating_number": len(ratings) + rng.randint(0, 400),
        "features": [f"Format: {f}" for f in item.formats],
        "description": description(rng, item),
        "price": round(rng.uniform(4.99, 39.99), 2) if rng.random() < 0.85 else None,
        "images": [],
        "videos": [],
        "store": store,
        "categories": [] if item.distractor else [*pools["categories"], item.genre.title()],
        "details": details,
        "parent_asin": item.parent_asin,
        "bought_together": None,
    }
