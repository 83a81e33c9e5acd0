"""Latent entities of the synthetic benchmark: items with traits, users with persistent preferences.

Each entity is drawn from its own RNG, seeded by (seed, category, index), so an entity does not change
when the number of other entities does. What a user prefers never changes over time: that is what
the history reveals and what an effect estimator has to find.
"""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

from nextquill.data.synthetic import vocab


def entity_rng(seed: int, *key: object) -> random.Random:
    """A private RNG per entity. String seeds hash with SHA-512 in CPython, identically on every platform."""
    return random.Random(":".join([str(seed), *map(str, key)]))


@dataclass(frozen=True)
class Item:
    category: str
    parent_asin: str
    title: str
    creator: str
    genre: str
    setting: str
    strengths: tuple[str, str]
    weakness: str
    quality: float  # latent 1..5 score before user bias
    formats: tuple[str, ...]
    distractor: bool  # metadata fails the DPL meta filter on purpose

    def judgement_level(self, aspect: str) -> str:
        if aspect in self.strengths:
            return "strong"
        if aspect == self.weakness:
            return "weak"
        return "strong" if self.quality >= 4.2 else "weak" if self.quality < 2.5 else "fine"


@dataclass(frozen=True)
class User:
    user_id: str
    category: str
    n_reviews: int
    aspects: tuple[str, ...]  # favoured aspects, mentioned whatever the item
    frames: tuple[int, ...]  # indices into vocab.ASPECT_FRAMES: how this user talks about them
    intensifiers: tuple[str, ...]
    signatures: tuple[str, ...]
    signature_rate: float
    opener: str | None
    sign_off: str | None
    rating_bias: float
    generic_range: tuple[int, int]  # length habit: generic sentences per review
    item_range: tuple[int, int]
    punctuation: str | None  # "!!", "!" or "..." replaces some full stops
    punctuation_rate: float


def make_asin(rng: random.Random, category: str) -> str:
    if category == "Books":  # ISBN-10 style, as Amazon lists books
        return "".join(rng.choice(string.digits) for _ in range(10))
    return "B0" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(8))


def make_item(seed: int, category: str, index: int, distractor: bool = False) -> Item:
    rng = entity_rng(seed, "item", category, index, distractor)
    pools = vocab.CATEGORIES[category]
    aspects = rng.sample(pools["aspects"], 3)
    title = f"{rng.choice(['The ', ''])}{rng.choice(pools['title_adj'])} {rng.choice(pools['title_noun'])}"
    if rng.random() < 0.3:
        title += f": {rng.choice(pools['title_adj'])} {rng.choice(pools['title_noun'])}"
    return Item(
        category=category,
        parent_asin=make_asin(rng, category),
        title=title,
        creator=f"{rng.choice(vocab.FIRST_NAMES)} {rng.choice(vocab.LAST_NAMES)}",
        genre=rng.choice(pools["genres"]),
        setting=rng.choice(pools["settings"]),
        strengths=(aspects[0], aspects[1]),
        weakness=aspects[2],
        quality=round(rng.uniform(1.8, 4.9), 2),
        formats=tuple(rng.sample(pools["formats"], rng.randint(1, len(pools["formats"])))),
        distractor=distractor,
    )


def make_user(seed: int, category: str, index: int, min_reviews: int, max_reviews: int) -> User:
    rng = entity_rng(seed, "user", category, index)
    pools = vocab.CATEGORIES[category]
    heads = rng.sample(vocab.SIGNATURE_HEADS, 2)
    signatures = [f"{head} {rng.choice(vocab.SIGNATURE_TAILS)}" for head in heads]
    signatures += rng.sample(vocab.SIGNATURE_PHRASES, rng.randint(1, 2))
    sign_off = rng.choice(vocab.SIGN_OFFS).format(city=rng.choice(vocab.CITIES)) if rng.random() < 0.6 else None
    if sign_off is not None and rng.random() < 0.4:  # initials make a sign-off unique to its user
        sign_off = f"{sign_off} -{rng.choice(string.ascii_uppercase)}{rng.choice(string.ascii_uppercase)}"
    verbosity = rng.choice([(0, 1), (1, 3), (3, 6)])
    punctuation = rng.choice([None, "!", "!!", "..."])
    return User(
        user_id="A" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(27)),
        category=category,
        n_reviews=rng.randint(min_reviews, max_reviews),
        aspects=tuple(rng.sample(pools["aspects"], 2)),
        frames=tuple(rng.sample(range(len(vocab.ASPECT_FRAMES)), 2)),
        intensifiers=tuple(rng.sample(vocab.INTENSIFIERS, 2)),
        signatures=tuple(signatures),
        signature_rate=rng.uniform(0.5, 0.9),
        opener=rng.choice(vocab.OPENERS) if rng.random() < 0.7 else None,
        sign_off=sign_off,
        rating_bias=rng.choice([-1.0, -0.5, 0.0, 0.0, 0.5, 1.0]),
        generic_range=verbosity,
        item_range=rng.choice([(1, 2), (2, 3), (2, 4)]),
        punctuation=punctuation,
        punctuation_rate=rng.uniform(0.4, 0.9) if punctuation else 0.0,
    )


def user_profile(user: User) -> dict:
    """The user's latent preferences as a JSON-ready dict (written to the truth sidecar)."""
    return {
        "user_id": user.user_id,
        "category": user.category,
        "favoured_aspects": list(user.aspects),
        "aspect_frames": [vocab.ASPECT_FRAMES[i][0].split("{aspect}")[0].strip() for i in user.frames],
        "intensifiers": list(user.intensifiers),
        "signature_phrases": list(user.signatures),
        "opener": user.opener,
        "sign_off": user.sign_off,
        "rating_bias": user.rating_bias,
        "generic_sentences": list(user.generic_range),
        "punctuation": user.punctuation,
    }
