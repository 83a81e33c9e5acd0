"""Context steering: the logit combination by hand, lam = 0 against HF generate, batching, a no-cache reference."""

import copy

import pytest
import torch

from nextquill.model.generation import Decoding, generate
from nextquill.model.steering import steer_logits, steered_generate


def decoding_of(**changes) -> Decoding:
    """The decoding of params.yaml's defaults with `changes`: tests set only what they vary."""
    from nextquill.config import Params

    return Decoding.from_config(Params().eval, **changes)

HISTORY = "[Review 1]: the prose was superb and the pacing hugely fun\n[Review 2]: not my cup of tea, sadly\n"
QUERIES = ("The pacing was", "I bought this last month and the prose", "Honestly? pure",
           "A must-have. Happy reading! The dialogue was", "Not my")


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    """The tiny Llama with its projection matrices scaled up 10x: at init scale (0.02) it only repeats the last
    prompt token, whatever the context, which would make every comparison below vacuous."""
    from nextquill.model.loading import load_model

    model, tok = load_model(tiny_model_dir)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if param.ndim == 2 and "embed" not in name:
                param.mul_(10.0)
    return model, tok


def _pairs(tok, n=5):
    """(with history, without): the history block replaced by a short marker, so every 0-prompt is shorter."""
    with_h = [tok(HISTORY + q)["input_ids"] for q in QUERIES[:n]]
    without = [tok("[none]\n" + q)["input_ids"] for q in QUERIES[:n]]
    assert all(len(a) > len(b) for a, b in zip(with_h, without, strict=True))
    assert len({len(p) for p in with_h}) > 1 and len({len(p) for p in without}) > 1
    return with_h, without


def test_steer_logits_by_hand_and_infinities():
    out = steer_logits(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0]), 0.5)
    assert out.dtype == torch.float32 and torch.equal(out, torch.tensor([1.5, 1.0]))
    inf = float("inf")
    h, z = torch.tensor([-inf, -inf, 3.0, 1.0]), torch.tensor([-inf, 2.0, -inf, 1.0])
    for lam in (0.0, 1.0, -0.5):
        out = steer_logits(h, z, lam)
        assert not out.isnan().any() and out[0] == -inf and out[1] == -inf and out[2] == 3.0 and out[3] == 1.0
    big = torch.tensor([3e38], dtype=torch.float32)
    assert torch.isfinite(steer_logits(big, -big, 2.0)).all()  # overflow of the difference is clamped


@pytest.mark.parametrize("scope", ["generated", "all"])
def test_lam_zero_equals_hf_generate(tiny, scope):
    model, tok = tiny
    with_h, without = _pairs(tok)
    decoding = decoding_of(max_new_tokens=12, repetition_penalty=1.2, repetition_scope=scope)
    expected = generate(model, tok, with_h, decoding, batch_size=3)
    assert steered_generate(model, tok, with_h, without, 0.0, decoding, batch_size=3) == expected
    assert len(set(expected)) == len(expected)  # the prompts really lead to different continuations


def test_lam_zero_sampling_equals_hf_generate_with_the_same_seed(tiny):
    """Same processors in the same order (penalty, temperature, top-k 50, top-p) and one draw per step."""
    model, tok = tiny
    with_h, without = _pairs(tok)
    decoding = decoding_of(max_new_tokens=12, do_sample=True)
    torch.manual_seed(3)
    expected = generate(model, tok, with_h, decoding, batch_size=3)
    torch.manual_seed(3)
    assert steered_generate(model, tok, with_h, without, 0.0, decoding, batch_size=3) == expected


def test_rows_stop_at_eos_like_hf_generate(tiny):
    """Make a token the greedy run emits mid-way the eos: both stop there and pad the finished rows."""
    model, tok = tiny
    with_h, without = _pairs(tok)
    decoding = decoding_of(max_new_tokens=12)
    first = model.generate(torch.tensor([with_h[0]]), max_new_tokens=4, do_sample=False, repetition_penalty=1.2)
    stop = copy.deepcopy(tok)
    stop.eos_token = tok.convert_ids_to_tokens(int(first[0, -1]))
    expected = generate(model, stop, with_h, decoding, batch_size=3)
    assert steered_generate(model, stop, with_h, without, 0.0, decoding, batch_size=3) == expected
    assert expected != generate(model, tok, with_h, decoding, batch_size=3)  # some row did stop early


def test_batched_equals_one_at_a_time(tiny):
    model, tok = tiny
    with_h, without = _pairs(tok, 4)
    decoding = decoding_of(max_new_tokens=10)
    batched = steered_generate(model, tok, with_h, without, 1.0, decoding, batch_size=4)
    single = [steered_generate(model, tok, [a], [b], 1.0, decoding, batch_size=1)[0]
              for a, b in zip(with_h, without, strict=True)]
    assert batched == single and any(batched)


@pytest.mark.parametrize("scope", ["generated", "all"])
def test_matches_a_no_cache_reference(tiny, scope):
    """Full sequences through the model every step, HF's own repetition-penalty processor, argmax."""
    from transformers import RepetitionPenaltyLogitsProcessor

    model, tok = tiny
    with_h, without = _pairs(tok, 2)
    decoding = decoding_of(max_new_tokens=10, repetition_scope=scope)
    skip = len(with_h[1]) if scope == "generated" else None  # the prompt's ids are not counted
    penalty = RepetitionPenaltyLogitsProcessor(decoding.repetition_penalty, prompt_ignore_length=skip)
    gen: list[int] = []
    with torch.no_grad():
        for _ in range(decoding.max_new_tokens):
            lh = model(torch.tensor([with_h[1] + gen])).logits[:, -1]
            l0 = model(torch.tensor([without[1] + gen])).logits[:, -1]
            scores = penalty(torch.tensor([with_h[1] + gen]), steer_logits(lh, l0, 1.0))
            gen.append(int(scores.argmax(-1)))
            if gen[-1] == tok.eos_token_id:
                break
    expected = tok.decode(gen, skip_special_tokens=True).strip()
    assert steered_generate(model, tok, with_h[1:2], without[1:2], 1.0, decoding, batch_size=1) == [expected]


def test_steering_changes_some_output(tiny):
    model, tok = tiny
    with_h, without = _pairs(tok)
    decoding = decoding_of(max_new_tokens=10)
    plain = steered_generate(model, tok, with_h, without, 0.0, decoding, batch_size=5)
    steered = steered_generate(model, tok, with_h, without, 2.0, decoding, batch_size=5)
    assert plain != steered


def test_bfloat16_model_and_sampling(tiny_model_dir):
    from nextquill.model.loading import load_model

    model, tok = load_model(tiny_model_dir)
    model = model.to(torch.bfloat16)
    with_h, without = _pairs(tok, 3)
    greedy = steered_generate(model, tok, with_h, without, 1.0, decoding_of(max_new_tokens=6), batch_size=2)
    sampled = steered_generate(model, tok, with_h, without, 1.0, decoding_of(max_new_tokens=6, do_sample=True),
                               batch_size=2)
    assert len(greedy) == len(sampled) == 3 and all(isinstance(t, str) for t in greedy + sampled)
    h, z = (torch.randn(4, 64) * 30).bfloat16(), (torch.randn(4, 64) * 30).bfloat16()
    out = steer_logits(h, z, 3.0)
    assert out.dtype == torch.float32 and torch.isfinite(out).all()
    assert torch.allclose(out, h.float() + 3.0 * (h.float() - z.float()))


def test_lora_wrapped_model_lam_zero_equals_hf_generate(tiny_model_dir):
    """A PEFT model (how trained adapters are evaluated) takes the same cache / logits_to_keep keywords."""
    from peft import LoraConfig, get_peft_model

    from nextquill.model.loading import load_model

    model, tok = load_model(tiny_model_dir)
    peft_model = get_peft_model(model, LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    with_h, without = _pairs(tok, 3)
    decoding = decoding_of(max_new_tokens=8)
    expected = generate(peft_model, tok, with_h, decoding, batch_size=2)
    assert steered_generate(peft_model, tok, with_h, without, 0.0, decoding, batch_size=2) == expected


def _slow_greedy(model, prompt: list[int], penalty: float, counted_from: int, steps: int, eos: int) -> list[int]:
    """Greedy decoding by hand: the whole sequence every step, the penalty written out over ids[counted_from:]."""
    ids = list(prompt)
    with torch.no_grad():
        for _ in range(steps):
            scores = model(torch.tensor([ids])).logits[0, -1].float()
            for t in set(ids[counted_from:]):
                scores[t] = scores[t] * penalty if scores[t] < 0 else scores[t] / penalty
            ids.append(int(scores.argmax()))
            if ids[-1] == eos:
                break
    return ids[len(prompt):]


def test_repetition_scope_against_a_slow_reference_and_it_matters(tiny):
    """`generate` (batched, left-padded) counts only generated ids at scope generated, every id at scope all."""
    model, tok = tiny
    with_h, _ = _pairs(tok)
    outputs = {}
    for scope in ("generated", "all"):
        decoding = decoding_of(max_new_tokens=10, repetition_penalty=1.5, repetition_scope=scope)
        outputs[scope] = generate(model, tok, with_h, decoding, batch_size=5)
        expected = [tok.decode(_slow_greedy(model, p, 1.5, len(p) if scope == "generated" else 0, 10,
                                            tok.eos_token_id), skip_special_tokens=True).strip() for p in with_h]
        assert outputs[scope] == expected
    assert outputs["generated"] != outputs["all"]  # the prompt's ids really change what is written


def test_scope_all_skips_left_pads_when_pad_is_eos(tiny):
    """`generate` leaves each row's left pads out of the penalty; with pad == eos, counting them would tax eos
    in every padded row and make those rows stop later than HF's."""
    model, tok = tiny
    with_h, without = _pairs(tok)
    decoding = decoding_of(max_new_tokens=12, repetition_penalty=1.5, repetition_scope="all")
    first = model.generate(torch.tensor([with_h[0]]), max_new_tokens=3, do_sample=False, repetition_penalty=1.5)
    stop = copy.deepcopy(tok)
    stop.eos_token = stop.pad_token = tok.convert_ids_to_tokens(int(first[0, -1]))
    assert stop.pad_token_id == stop.eos_token_id
    expected = generate(model, stop, with_h, decoding, batch_size=5)
    assert steered_generate(model, stop, with_h, without, 0.0, decoding, batch_size=5) == expected
    assert expected != generate(model, tok, with_h, decoding, batch_size=5)  # some row did stop at that eos
