"""Shared fixtures: a tokenizer trained on synthetic reviews and a tiny random Llama, both offline.

Nothing here downloads anything; the tiny model is built from a config, so tests need no model files.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHATML = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(autouse=True)
def _seed():
    random.seed(0)
    try:
        import torch
    except ImportError:  # unit tests of pure-python modules do not need torch
        return
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def tiny_tokenizer(tmp_path_factory):
    """A byte-level BPE tokenizer (vocab 512) trained on synthetic reviews, with ChatML markers."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from nextquill.config import SynthesizeConfig
    from nextquill.data.synthetic.generate import generate_category

    cfg = SynthesizeConfig(categories=("Books",), users_per_category=12, items_per_category=20, max_reviews=20)
    texts = [r["text"] for r in generate_category(cfg, "Books").reviews]
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(vocab_size=512, special_tokens=specials,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(texts, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                  pad_token="<|im_end|>", unk_token="<|endoftext|>")
    tok.chat_template = CHATML
    return tok


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_tokenizer) -> Path:
    """A saved 2-layer Llama (hidden 32) with the tiny tokenizer: a local model folder, like a user's."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tiny_tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
        bos_token_id=tiny_tokenizer.bos_token_id, eos_token_id=tiny_tokenizer.eos_token_id,
        pad_token_id=tiny_tokenizer.pad_token_id,
    )
    folder = tmp_path_factory.mktemp("tiny-llama")
    LlamaForCausalLM(config).save_pretrained(folder)
    tiny_tokenizer.save_pretrained(folder)
    return folder


def held_out_rows(tokenizer, n: int, labels) -> list[dict]:
    """`n` prepared test examples ("...superb {i}"), alternating Books / CDs_and_Vinyl.

    Args:
        labels: `labels(i, n_target_tokens)` gives row i's truth labels (a list of 0/1) or None.
    """
    rows = []
    for i in range(n):
        ids = tokenizer(f"[Review 1]: the prose was superb {i}\n[Output Review Rating]: 5.0\n")["input_ids"]
        target_ids = tokenizer(f"The pacing was hugely superb {i}!!")["input_ids"] + [2]
        rows.append({"example_id": f"Books/u{i}/test/9", "user_id": f"u{i}", "split": "test",
                     "category": "Books" if i % 2 else "CDs_and_Vinyl", "item_id": "I", "prompt_with": "",
                     "prompt_without": "", "target": f"The pacing was hugely superb {i}!!", "prompt_ids_with": ids,
                     "prompt_ids_without": ids[-8:], "target_ids": target_ids, "n_history": 1,
                     "n_history_available": 1, "target_truncated": False, "query_truncated": False,
                     "pref_labels": labels(i, len(target_ids))})
    return rows


def twin_view_rows(tokenizer, n: int, split: str = "train", target=None, labels: bool = False) -> list[dict]:
    """`n` prepared rows whose with-history prompt adds one review to the question ("...hugely superb {i}").

    Args:
        target: `target(i, rng)` gives row i's target text; default "The pacing was hugely superb 0.xyz!!".
        labels: give each row alternating truth labels (`pref_labels`), else None.
    """
    rng = random.Random(0)
    target = target or (lambda i, rng: f"The pacing was hugely superb {rng.random():.3f}!!")
    question = tokenizer("[Output Review Rating]: 5.0\n")["input_ids"]
    rows = []
    for i in range(n):
        history = tokenizer(f"[Review 1]: the prose was hugely superb {i}\n")["input_ids"]
        target_ids = tokenizer(target(i, rng))["input_ids"] + [tokenizer.eos_token_id]
        rows.append({"example_id": f"Books/u{i}/{split}/0", "user_id": f"u{i}", "split": split, "category": "Books",
                     "item_id": "I", "prompt_with": "", "prompt_without": "", "target": f"superb {i}",
                     "prompt_ids_with": history + question, "prompt_ids_without": question,
                     "target_ids": target_ids, "n_history": 1, "n_history_available": 1,
                     "target_truncated": False, "query_truncated": False,
                     "pref_labels": [j % 2 for j in range(len(target_ids))] if labels else None})
    return rows
