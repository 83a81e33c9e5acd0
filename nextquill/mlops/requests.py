"""Validation of generation requests, for the served pyfunc model and for `nextquill generate` alike.

A request is a list of rows; each row carries a ready `prompt`, or the fields the training prompt is
rendered from (`item_title`, `item_description`, `rating`, `review_title`, `history`). Every problem
raises `RequestError` with a message naming the row, the field and what was expected: unknown
fields, wrong types, non-finite or out-of-range ratings, text with no visible character, a bad
`max_new_tokens`, a request over the configured size limits. Text is cleaned as training text is
(control and zero-width characters removed), so a request cannot put them into a prompt either.
"""

from __future__ import annotations

import json
import math
import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from nextquill.data.validate import Invalid, clean_text, has_visible

# History entries may be plain review texts, or objects with these keys (the layout training used).
ENTRY_FIELDS = (("item_title", "Item Title"), ("item_description", "Item Description"), ("rating", "Review Rating"),
                ("title", "Review Title"), ("text", "Review Text"))
ROW_FIELDS = ("prompt", "history", "item_title", "item_description", "rating", "review_title")


def serving_config(params) -> dict[str, Any]:
    """What the served model needs of `params`: how training rendered prompts, decoding, request limits.

    Written next to the model (`serving.json`) by the register stage, so a served version keeps the settings
    it was registered with whatever params.yaml says later.
    """
    data, registry = params.data, params.registry
    return {"max_new_tokens": registry.max_new_tokens, "repetition_penalty": params.eval.repetition_penalty,
            "repetition_scope": params.eval.repetition_scope,
            "history_k": data.history_k, "max_prompt_tokens": data.max_prompt_tokens,
            "empty_history": data.empty_history, "rating_range": list(data.rating_range),
            "max_new_tokens_limit": registry.max_new_tokens_limit, "max_request_rows": registry.max_request_rows,
            "max_request_chars": registry.max_request_chars}


class RequestError(ValueError):
    """A request the model cannot answer; the message says which field and what was expected."""


@dataclass(frozen=True)
class Limits:
    """What a request may ask for; None (a model registered before these limits existed) means no limit."""

    rating_range: tuple[float, float] | None
    max_new_tokens_limit: int | None
    max_request_rows: int | None
    max_request_chars: int | None

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Limits:
        rating = config.get("rating_range")
        return cls(tuple(rating) if rating else None, config.get("max_new_tokens_limit"),
                   config.get("max_request_rows"), config.get("max_request_chars"))


def absent(value: Any) -> bool:
    """None, NaN and empty strings count as absent (pandas fills absent columns with NaN or None)."""
    return value is None or (isinstance(value, float) and value != value) or (isinstance(value, str) and not value)


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise RequestError(f"{where}: expected a string, got {type(value).__name__} {str(value)[:40]!r}")
    try:
        cleaned, _ = clean_text(value, where)
    except Invalid as err:
        raise RequestError(err.detail) from None
    if not has_visible(cleaned):
        raise RequestError(f"{where}: has no visible character")
    return cleaned


def _rating(value: Any, where: str, limits: Limits) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):  # numpy numbers too, as pandas gives them
        raise RequestError(f"{where}: expected a number, got {type(value).__name__} {str(value)[:40]!r}")
    if not math.isfinite(value):
        raise RequestError(f"{where}: expected a finite number, got {value}")
    if limits.rating_range is not None and not limits.rating_range[0] <= value <= limits.rating_range[1]:
        low, high = limits.rating_range
        raise RequestError(f"{where}: rating {value} is outside the model's rating range [{low}, {high}]")
    return str(float(value))


def history_entry(item: Any, where: str, limits: Limits) -> tuple[tuple[str, str], ...]:
    """The prompt fields of one history entry: a review text, or an object with `text` (and ENTRY_FIELDS)."""
    if isinstance(item, str) and item.lstrip().startswith("{"):
        try:
            item = json.loads(item)
        except json.JSONDecodeError as err:
            raise RequestError(f"{where}: starts like a JSON object but is not valid JSON ({err})") from None
    if isinstance(item, str):
        return (("Review Text", _text(item, where)),)
    if not isinstance(item, dict):
        raise RequestError(f"{where}: expected a review text or an object with `text`, got {type(item).__name__}")
    unknown = sorted(set(item) - {key for key, _ in ENTRY_FIELDS})
    if unknown:
        raise RequestError(f"{where}: unknown field {unknown[0]!r}; a history object has "
                           f"{', '.join(key for key, _ in ENTRY_FIELDS)}")
    if absent(item.get("text")):
        raise RequestError(f"{where}: a history object needs a string field `text`")
    # In an object, a NaN is a value, not a missing field (unlike a DataFrame cell): it is checked, and refused.
    return tuple((label, _rating(item[key], f"{where}.{key}", limits) if key == "rating"
                  else _text(item[key], f"{where}.{key}"))
                 for key, label in ENTRY_FIELDS if item.get(key) is not None)


@dataclass(frozen=True)
class Row:
    """One checked request row: a ready prompt, or the fields to render one from."""

    prompt: str | None
    item_title: str = ""
    item_description: str = ""
    question: tuple[tuple[str, str], ...] = ()
    history: tuple[tuple[tuple[str, str], ...], ...] = ()


def _history(value: Any, where: str, limits: Limits) -> tuple:
    if absent(value):
        return ()
    if isinstance(value, str):
        value = [value]
    if hasattr(value, "tolist"):  # a numpy array, as pandas hands list cells over
        value = value.tolist()
    if not isinstance(value, list | tuple):
        raise RequestError(f"{where}: expected a list of past reviews, got {type(value).__name__}")
    return tuple(history_entry(item, f"{where}[{i}]", limits) for i, item in enumerate(value) if not absent(item))


def check_row(row: Mapping[str, Any], index: int, limits: Limits) -> Row:
    where = f"row {index}"
    unknown = sorted(str(key) for key in row if key not in ROW_FIELDS)
    if unknown:
        raise RequestError(f"{where}: unknown field {unknown[0]!r}; expected fields: {', '.join(ROW_FIELDS)}")
    if not absent(row.get("prompt")):
        return Row(prompt=_text(row["prompt"], f"{where}.prompt"))
    if absent(row.get("item_title")):
        raise RequestError(f"{where}: needs `prompt` (a ready prompt) or `item_title` (with `history`, "
                           "`item_description`, `rating`, `review_title`)")
    question = []
    if not absent(row.get("rating")):
        question.append(("Output Review Rating", _rating(row["rating"], f"{where}.rating", limits)))
    if not absent(row.get("review_title")):
        question.append(("Output Review Title", _text(row["review_title"], f"{where}.review_title")))
    description = row.get("item_description")
    return Row(prompt=None, item_title=_text(row["item_title"], f"{where}.item_title"),
               item_description="" if absent(description) else _text(description, f"{where}.item_description"),
               question=tuple(question), history=_history(row.get("history"), f"{where}.history", limits))


def records(model_input: Any) -> list[dict]:
    """The rows of a DataFrame, a dict, a list of dicts or strings, or one string (a prompt)."""
    if hasattr(model_input, "to_dict"):  # a pandas DataFrame
        return model_input.to_dict(orient="records")
    if isinstance(model_input, dict):
        return [model_input]
    if isinstance(model_input, str):
        return [{"prompt": model_input}]
    return [row if isinstance(row, dict) else {"prompt": row} for row in model_input]


def _chars(rows: list[dict]) -> int:
    return sum(len(json.dumps(row, default=str, ensure_ascii=False)) for row in rows)


def check_request(model_input: Any, limits: Limits) -> list[Row]:
    """Every row checked; the size limits first, so an oversized request is refused before any work."""
    rows = records(model_input)
    if not rows:
        raise RequestError("the request has no rows; each row needs `prompt` or `item_title`")
    if limits.max_request_rows is not None and len(rows) > limits.max_request_rows:
        raise RequestError(f"the request has {len(rows)} rows, more than this model's limit of "
                           f"{limits.max_request_rows} (registry.max_request_rows)")
    if limits.max_request_chars is not None and (size := _chars(rows)) > limits.max_request_chars:
        raise RequestError(f"the request holds {size:,} characters, more than this model's limit of "
                           f"{limits.max_request_chars:,} (registry.max_request_chars)")
    return [check_row(row, index, limits) for index, row in enumerate(rows)]


def max_new_tokens(params: Mapping[str, Any] | None, default: int, limits: Limits) -> int:
    """`params["max_new_tokens"]` checked (an integer from 1 to the model's limit), else `default`."""
    value = (params or {}).get("max_new_tokens")
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise RequestError(f"max_new_tokens: expected an integer, got {type(value).__name__} {value!r}")
    high = limits.max_new_tokens_limit
    if value < 1 or (high is not None and value > high):
        raise RequestError(f"max_new_tokens: expected an integer from 1 to {high or 'any'}, got {value}")
    return int(value)
