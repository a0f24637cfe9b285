"""The hf generation engine: lm-eval's stop rules, transformers' greedy text, batch-size independence, seeds."""

from __future__ import annotations

import pytest

from sharpbench.data.registry import get_task
from sharpbench.models.errors import BackendError
from sharpbench.models.hf.generate import StopRules, eos_token_ids
from sharpbench.results import GenerationRequest

UNTIL = ("Q:", "</s>", "<|im_end|>")


@pytest.fixture(scope="module")
def prompts():
    return [it.prompt for it in get_task("gsm8k_cot").items(12)]


def _greedy(prompts, n=24, **kw):
    return [GenerationRequest(p, until=UNTIL, max_gen_toks=n, **kw) for p in prompts]


def _reference(backend, prompt, n):
    """lm-eval's HFLM path at batch size 1: transformers ``generate``, decode, cut at the stop strings."""
    import torch

    ids = torch.tensor([backend.tok_encode(prompt)])
    with torch.inference_mode():
        out = backend.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,
                                     do_sample=False, pad_token_id=backend.tokenizer.pad_token_id)
    text = backend.tokenizer.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    for stop in (*UNTIL, backend.tokenizer.eos_token):
        text = text.split(stop)[0]
    return text


def _texts(backend, reqs, batch_size):
    with backend.prefix_session():
        return [g.text for g in backend.generate(reqs, batch_size=batch_size)]


def test_greedy_text_equals_transformers_generate(smollm2, prompts):
    ours = _texts(smollm2, _greedy(prompts[:4], 32), batch_size=4)
    assert ours == [_reference(smollm2, p, 32) for p in prompts[:4]]


def test_same_greedy_text_at_batch_sizes_1_8_32(smollm2, prompts):
    reqs = _greedy(prompts, 24)
    one = _texts(smollm2, reqs, 1)
    assert _texts(smollm2, reqs, 8) == one
    assert _texts(smollm2, reqs, 32) == one


def test_plain_path_gives_the_same_greedy_text(smollm2, prompts):
    reqs = _greedy(prompts[:3], 24)
    lean = _texts(smollm2, reqs, 3)
    smollm2.prefix_cache = False  # transformers' generate on left-padded batches
    try:
        assert _texts(smollm2, reqs, 1) == lean
    finally:
        smollm2.prefix_cache = True


def test_stop_reasons_and_cut(smollm2, prompts):
    with smollm2.prefix_session():
        length, stop = smollm2.generate([
            GenerationRequest(prompts[0], until=UNTIL, max_gen_toks=5),
            GenerationRequest(prompts[3], until=(".",), max_gen_toks=64),
        ])
    assert (length.stop_reason, length.n_tokens) == ("length", 5)
    assert stop.stop_reason == "stop" and "." not in stop.text and stop.n_tokens < 64
    # end of text: a chat prompt answered by the instruct model ends with <|im_end|>
    chat = smollm2.tokenizer.apply_chat_template([{"role": "user", "content": "Say hi."}], tokenize=False,
                                                 add_generation_prompt=True)
    (eos,) = smollm2.generate([GenerationRequest(chat, max_gen_toks=64)])
    assert eos.stop_reason == "eos" and "<|im_end|>" not in eos.text and eos.text


def test_sampling_is_reproducible_and_batch_independent(smollm2, prompts):
    def sampled(seed, batch_size, **kw):
        reqs = [GenerationRequest(p, until=UNTIL, max_gen_toks=16, do_sample=True, temperature=0.8, seed=seed + i,
                                  **kw) for i, p in enumerate(prompts[:6])]
        return _texts(smollm2, reqs, batch_size)

    a = sampled(7, 6)
    assert sampled(7, 1) == a  # each request has its own generator
    assert sampled(8, 6) != a
    assert sampled(7, 6, top_k=1) == _texts(smollm2, _greedy(prompts[:6], 16), 6)  # top-1 sampling is greedy


def test_stop_rules_units(smollm2):
    tok = smollm2.tokenizer
    rules = StopRules(tok, eos_token_ids(smollm2.model, tok))
    stops = rules.stops(("Q:", ""))
    assert stops == ("Q:", "<|im_end|>")  # empty stops dropped, end-of-text string added (lm-eval)
    ids = tok.encode(" 4 + 4 = 8. The answer is 8.\n\nQ: next", add_special_tokens=False)
    assert rules.hit_stop(ids, stops)
    g = rules.finish(ids, stops, "stop")
    assert g.text == " 4 + 4 = 8. The answer is 8.\n\n" and g.n_tokens == len(ids)
    # a generation cut inside a multi-byte character decodes to the replacement character, never raises
    emoji = tok.encode("🙂", add_special_tokens=False)
    if len(emoji) > 1:
        assert "\ufffd" in rules.finish(emoji[:1], stops, "length").text


def test_prompt_longer_than_the_window_is_cut_from_the_left(smollm2, prompts):
    from sharpbench.models.hf.generate import generate_iter

    reqs = [GenerationRequest(prompts[0], until=UNTIL, max_gen_toks=8)]
    seen = []
    list(generate_iter(smollm2.model, smollm2.tokenizer, reqs, lambda s: seen.append(s) or smollm2.tok_encode(s),
                       max_length=8 + 100))
    # 100 tokens of room: the prompt's last 100 tokens are kept (lm-eval's left truncation); it still generates
    with pytest.raises(BackendError, match="no room"):
        list(generate_iter(smollm2.model, smollm2.tokenizer, reqs, smollm2.tok_encode, max_length=8))


def test_memory_bound_limits_the_slots_not_the_text(smollm2, prompts):
    from sharpbench.models.hf.decode import slot_bytes
    from sharpbench.models.hf.fastpath import lean_body
    from sharpbench.models.hf.generate import generate_iter

    reqs = _greedy(prompts[:4], 12)
    free = _texts(smollm2, reqs, 4)
    one_slot = slot_bytes(lean_body(smollm2.model), max(len(smollm2.tok_encode(p)) for p in prompts[:4]) + 12)
    got = {}
    for i, g, _ in generate_iter(smollm2.model, smollm2.tokenizer, reqs, smollm2.tok_encode,
                                 max_length=smollm2.max_length, n_slots=4, memory=one_slot):
        got[i] = g.text  # one sequence at a time still decodes everything
    assert [got[i] for i in range(4)] == free


def test_shared_prefix_attention_equals_attention_over_the_concatenated_keys():
    import torch

    from sharpbench.models.hf.decode import _attend

    g = torch.Generator().manual_seed(0)
    b, kv, grp, hd, p, own = 5, 3, 3, 16, 40, 7
    q = torch.randn(b, kv * grp, hd, generator=g)
    ks, vs = torch.randn(kv, hd, p, generator=g), torch.randn(kv, p, hd, generator=g)
    kt, v = torch.randn(b, kv, hd, own, generator=g), torch.randn(b, kv, own, hd, generator=g)
    lengths = torch.tensor([1, 3, 7, 2, 5])
    neg = torch.zeros(b, own).masked_fill_(torch.arange(own)[None] >= lengths[:, None], float("-inf"))[:, None, None]
    got = _attend(q, kt, v, neg, 0.25, shared=(ks, vs, None))
    full_k = torch.cat((ks[None].expand(b, -1, -1, -1), kt), dim=-1)
    full_v = torch.cat((vs[None].expand(b, -1, -1, -1), v), dim=-2)
    full_neg = torch.cat((torch.zeros(b, 1, 1, p), neg), dim=-1)
    torch.testing.assert_close(got, _attend(q, full_k, full_v, full_neg, 0.25), rtol=1e-5, atol=1e-6)


def test_windowed_shared_prefix_attention_hides_the_keys_a_window_leaves_out():
    """A sliding window over shared + own keys equals the same window over the concatenated keys."""
    import torch

    from sharpbench.models.hf.decode import _additive, _attend

    g = torch.Generator().manual_seed(1)
    b, kv, grp, hd, p, own, window = 4, 1, 4, 8, 30, 9, 12
    q = torch.randn(b, kv * grp, hd, generator=g)
    ks, vs = torch.randn(kv, hd, p, generator=g), torch.randn(kv, p, hd, generator=g)
    kt, v = torch.randn(b, kv, hd, own, generator=g), torch.randn(b, kv, own, hd, generator=g)
    pos = torch.tensor([0, 3, 8, 5])  # each row's new token: own index (position p + index)
    j = torch.arange(own)[None]
    neg = _additive((j > pos[:, None]) | (j <= pos[:, None] - window))
    neg_shared = _additive(torch.arange(p)[None] <= (pos + p)[:, None] - window)
    got = _attend(q, kt, v, neg, 0.5, shared=(ks, vs, neg_shared))
    full_k = torch.cat((ks[None].expand(b, -1, -1, -1), kt), dim=-1)
    full_v = torch.cat((vs[None].expand(b, -1, -1, -1), v), dim=-2)
    key_pos, q_pos = torch.arange(p + own)[None], (pos + p)[:, None]
    full_neg = _additive((key_pos > q_pos) | (key_pos <= q_pos - window))
    torch.testing.assert_close(got, _attend(q, full_k, full_v, full_neg, 0.5), rtol=1e-5, atol=1e-6)


def test_gemma3_lean_generation_equals_transformers_generate(tmp_path, smollm2_dir):
    """Tiny Gemma-3 (sliding window 6, soft-capped logits): prompts sharing a long prefix decode in the lean
    scheduler (windowed prefill and decode steps) to transformers' greedy text, at batch sizes 1 and 4."""
    from model_helpers import make_tiny_checkpoint

    from sharpbench.models import load_model
    from sharpbench.models.hf.fastpath import lean_body

    gemma = load_model(str(make_tiny_checkpoint(tmp_path / "g", smollm2_dir, kind="gemma3")))
    assert lean_body(gemma.model) is not None
    shared = ("Question: how many apples are left when a basket of twelve apples loses five of them, and how many "
              "pears are left when a crate of twenty pears loses eight of them on the way to the market? Answer: ")
    prompts = [shared + tail for tail in ("seven", "the rest", "twelve minus five is", "we count them one by one")]
    reqs = _greedy(prompts, 20)
    ours = _texts(gemma, reqs, 4)
    assert _texts(gemma, reqs, 1) == ours
    assert ours == [_reference(gemma, p, 20) for p in prompts]
    from sharpbench.models.hf.generate import MIN_SHARED_DECODE

    # the shared prefix spans several windows and is long enough to be kept once and attended once per step
    assert len(gemma.tok_encode(shared)) > max(3 * 6, MIN_SHARED_DECODE)


@pytest.mark.slow
def test_gemma3_270m_lean_generation_equals_transformers_generate():
    """The packaged Gemma-3-270M on 8-shot gsm8k_cot prompts (~900 tokens, past its 512-token window): the lean
    scheduler's greedy text equals transformers' generate."""
    from sharpbench.models import load_model, packaged

    try:
        path = packaged.ensure_checkpoint("gemma3-270m")
    except packaged.ModelPackageMissingError as err:  # pragma: no cover - CI installs it
        pytest.skip(str(err))
    gemma = load_model(str(path), dtype="float32")
    prompts = [it.prompt for it in get_task("gsm8k_cot").items(3)]
    assert min(len(gemma.tok_encode(p)) for p in prompts) > 600
    reqs = _greedy(prompts, 24)
    assert _texts(gemma, reqs, 3) == [_reference(gemma, p, 24) for p in prompts]
