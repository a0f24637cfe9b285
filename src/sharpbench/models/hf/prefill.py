"""Generation prefill through the prefix tree: each prompt's key/value cache, shared prefixes computed once.

Chain-of-thought prompts repeat the same few-shot exemplars before every
question (``gsm8k_cot``: eight solved problems, ~800 tokens, before a
~60-token question).  :func:`prefill` lays a batch of prompts into the same
prefix tree the loglikelihood scorer uses (:mod:`sharpbench.models.hf.treepack`,
one implementation for both), runs each shared prefix once, and returns, per
prompt, the next-token logits after it and its full key/value states, ready
to continue decoding from (:func:`to_dynamic_cache` hands them to
transformers' ``generate``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sharpbench.models.hf.fastpath import lean_body
from sharpbench.models.hf.prefix import PrefixKVCache
from sharpbench.models.hf.scoring import TreePassRunner
from sharpbench.models.hf.treepack import plan_tree_passes
from sharpbench.models.errors import ScoringError


@dataclass
class Prefilled:
    """One prompt after prefill.

    Attributes
    ----------
    tokens : tuple of int
        The prompt.
    logits : tensor (vocab,)
        float32 next-token logits after the prompt's last token.
    keys, values : list of tensors
        Per layer, ``(len(tokens), kv_heads, head_dim)``: the states a decoder
        attends to (keys after the rotary embedding, as transformers caches them).
    """

    tokens: tuple[int, ...]
    logits: Any
    keys: list[Any]
    values: list[Any]


def prefill(
    model: Any,
    prompts: Sequence[Sequence[int]],
    *,
    device: str = "cpu",
    max_tokens: int = 32768,
    max_rows: int = 64,
    cache: PrefixKVCache | None = None,
    min_shared: int = 16,
) -> list[Prefilled]:
    """Next-token logits and key/value states of every prompt, each shared prefix computed once.

    Parameters
    ----------
    model : transformers.PreTrainedModel
        A model the lean forward supports (Llama family, Gemma-3; see
        :func:`sharpbench.models.hf.scoring.supports_prefix_tree`).
    prompts : sequence of token sequences
        Non-empty; repeats are computed once.
    cache : PrefixKVCache, optional
        Prefix states kept between calls (read for the tree's top nodes).

    Returns
    -------
    list of Prefilled
        In the order of ``prompts``.

    Raises
    ------
    ScoringError
        For an empty prompt or a model without the lean forward.
    """
    import torch

    lean = lean_body(model)
    if lean is None:
        raise ScoringError(
            f"prefill through the prefix tree needs a model the lean forward supports (Llama family, Gemma-3); "
            f"{model.config.model_type} is not one"
        )
    uniq: dict[tuple[int, ...], int] = {}
    for i, p in enumerate(prompts):
        if not len(p):
            raise ScoringError(f"prompt {i} is empty")
        uniq.setdefault(tuple(int(t) for t in p), len(uniq))
    contexts = list(uniq)
    run = TreePassRunner(lean, device, cache)
    passes = plan_tree_passes(
        contexts, [(ci, (0,)) for ci in range(len(contexts))], max_tokens=max_tokens, max_rows=max_rows,
        min_shared=min_shared, match=run.match, save_ends=True,
    )
    done: dict[tuple[int, ...], Prefilled] = {}
    with torch.inference_mode():
        for p in passes:
            hidden = run.forward(p)
            logits = run.lean.logits(hidden) if p.score_pos else None
            row = {tuple(contexts[ci]): k for k, ci in enumerate(p.score_req)}  # one scored position per prompt
            for path, _ in p.save:
                if path in row:
                    st = run.entries[path]
                    done[path] = Prefilled(path, logits[row[path]], st.keys, st.values)
    return [done[tuple(int(t) for t in p)] for p in prompts]


def to_dynamic_cache(model: Any, state: Prefilled, *, drop_last: int = 1):
    """A transformers ``DynamicCache`` (batch of one) holding ``state`` without its last ``drop_last`` positions.

    ``model.generate(input_ids=prompt, cache=cache)`` then computes
    only the prompt's last ``drop_last`` tokens itself and continues from
    there (transformers needs at least one uncached input token).
    """
    from transformers import DynamicCache

    n = len(state.tokens) - int(drop_last)
    if n < 0:
        raise ValueError(f"cannot drop {drop_last} of {len(state.tokens)} positions")
    cache = DynamicCache(config=model.config)
    for layer, (k, v) in enumerate(zip(state.keys, state.values)):
        cache.update(k[:n].permute(1, 0, 2)[None].contiguous(), v[:n].permute(1, 0, 2)[None].contiguous(), layer)
    return cache
