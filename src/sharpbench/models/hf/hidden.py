"""Hidden states of a transformers model right after it reads each answer option (for linear probes).

For a multiple-choice :class:`~sharpbench.data.task.Item` every request
``(context, continuation)`` is tokenized exactly as the scoring path does
(lm-eval 0.4.13's ``_encode_pair``: trailing whitespace of the context moves to
the continuation, ``cont = enc(context + continuation)[len(enc(context)):]``,
an empty context becomes the prefix token), and the model reads
``context + continuation``; the state kept is the one at the last token, i.e.
the model's state right after the whole answer option.  Sequences longer than
the model window keep their last ``max_length`` tokens (cut from the left, as
lm-eval truncates).  The options' shared prefix (the question) is computed
once per item.  The scoring path never feeds the last continuation token
(it only predicts it), so a request that fills the window exactly loses one
more context token here than there; the token boundaries are otherwise equal.

``torch`` is imported inside the functions (start-up time).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from sharpbench.models.errors import CapabilityError, ScoringError

if TYPE_CHECKING:
    from sharpbench.data.task import Item

DEFAULT_N_LAYERS = 8
MIN_SHARED = 8  # options sharing at least this many leading tokens compute them once

__all__ = [
    "DEFAULT_N_LAYERS",
    "answer_states",
    "answer_tokens",
    "default_layers",
    "num_layers",
    "resolve_layers",
    "shared_prefix",
    "supports_hidden_states",
]


def supports_hidden_states(backend: Any) -> bool:
    """Whether :func:`answer_states` can read ``backend``'s internals (a local transformers model).

    True for the ``hf`` backend (:class:`~sharpbench.models.hf.HFBackend` and
    models wrapped with ``HFBackend.from_model``); False for llama.cpp and
    OpenAI-compatible servers, whose hidden states are not exposed.
    """
    from sharpbench.models.hf.backend import HFBackend

    if not isinstance(backend, HFBackend):
        return False
    model = getattr(backend, "model", None)
    return model is not None and getattr(model, "config", None) is not None


def num_layers(backend: Any) -> int:
    """Transformer blocks of ``backend``'s model (``hidden_states`` then has ``num_layers + 1`` entries)."""
    _require(backend)
    config = backend.model.config
    cfg = getattr(config, "text_config", None) or config
    n = getattr(cfg, "num_hidden_layers", None)
    if n is None:
        raise CapabilityError(f"{type(backend.model).__name__}: the config has no num_hidden_layers")
    return int(n)


def default_layers(n_layers: int, k: int = DEFAULT_N_LAYERS) -> list[int]:
    """About ``k`` evenly spaced ``hidden_states`` indices from 1 to ``n_layers`` (the last always in).

    Parameters
    ----------
    n_layers : int
        Transformer blocks of the model (``hidden_states`` index ``n_layers`` is the last).
    k : int
        How many layers at most.

    Returns
    -------
    list of int
        Sorted distinct indices in ``[1, n_layers]``, ending with ``n_layers``.

    Examples
    --------
    >>> default_layers(30)
    [1, 5, 9, 13, 18, 22, 26, 30]
    >>> default_layers(4)
    [1, 2, 3, 4]
    """
    n_layers, k = int(n_layers), int(k)
    if n_layers < 1:
        raise ValueError(f"n_layers must be >= 1, got {n_layers}")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if k == 1:
        return [n_layers]
    if n_layers <= k:
        return list(range(1, n_layers + 1))
    # round half up (np.round rounds half to even)
    return sorted({int(np.floor(x + 0.5)) for x in np.linspace(1, n_layers, k)})


def resolve_layers(layers: Sequence[int] | None, n_layers: int) -> list[int]:
    """Check ``layers`` against a model of ``n_layers`` blocks; ``None`` gives :func:`default_layers`.

    Indices are into transformers' ``hidden_states`` tuple: 0 is the embedding
    output, ``n_layers`` the last block.  Negative indices count from the end
    (``-1`` is ``n_layers``) and are returned as their non-negative value.

    Raises
    ------
    ValueError
        An empty list, an index out of range, or a repeated layer.
    TypeError
        A layer that is not an integer.
    """
    if layers is None:
        return default_layers(n_layers)
    if isinstance(layers, (int, np.integer)):
        layers = [int(layers)]
    out: list[int] = []
    for layer in layers:
        if isinstance(layer, bool) or not isinstance(layer, (int, np.integer)):
            raise TypeError(f"layer indices must be integers, got {layer!r}")
        i = int(layer)
        if not -(n_layers + 1) <= i <= n_layers:
            raise ValueError(
                f"layer index {i} out of range: the model has {n_layers} layers, so hidden_states indices "
                f"run from 0 (embeddings) to {n_layers} (last layer), or -1 to -{n_layers + 1}"
            )
        i %= n_layers + 1
        if i in out:
            raise ValueError(f"layer {i} is given twice in layers={list(layers)!r}")
        out.append(i)
    if not out:
        raise ValueError("layers is empty: give at least one hidden_states index (or None for the default)")
    return out


def answer_tokens(backend: Any, item: Item) -> list[list[int]]:
    """The token ids the model reads for each option of ``item``: ``context + continuation``, left-truncated.

    The split into context and continuation is the scoring path's (lm-eval
    0.4.13 ``_encode_pair``); at most ``backend.max_length`` tokens are kept.
    """
    window = int(backend.max_length)
    ctx_cache: dict[str, list[int]] = {}
    out = []
    for j, req in enumerate(item.requests):
        context, continuation = req.context, req.continuation
        if context == "":
            cont = list(backend.tok_encode(continuation, add_special_tokens=False))
            if not cont:
                raise ScoringError(f"item {item.item_id}, option {j}: continuation {continuation!r} encodes to no tokens")
            prefix = int(backend.prefix_token_id)
            ids = cont if cont[0] == prefix else [prefix, *cont]
        else:
            n_spaces = len(context) - len(context.rstrip())
            if n_spaces:
                continuation = context[-n_spaces:] + continuation
                context = context[:-n_spaces]
            whole = list(backend.tok_encode(context + continuation))
            ctx = ctx_cache.get(context)
            if ctx is None:
                ctx = ctx_cache[context] = list(backend.tok_encode(context))
            ids = ctx + whole[len(ctx):]
            if len(whole) <= len(ctx):
                raise ScoringError(
                    f"item {item.item_id}, option {j}: continuation {req.continuation!r} adds no tokens after its context"
                )
        out.append(ids[-window:])
    return out


def answer_states(
    backend: Any,
    items: Sequence[Item],
    *,
    layers: Sequence[int] | None = None,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
) -> list[np.ndarray]:
    """Hidden states at the last token of every answer option of every multiple-choice item.

    Parameters
    ----------
    backend : HFBackend
        A local transformers backend (see :func:`supports_hidden_states`).
    items : sequence of Item
        Multiple-choice items (one request per option).
    layers : sequence of int, optional
        Indices into transformers' ``hidden_states`` (0 = embeddings,
        ``num_layers(backend)`` = last block); default :func:`default_layers`.
    batch_size : int
        Sequences per forward pass (right-padded, with an attention mask).
    progress : callable, optional
        Called with the number of items finished after each forward pass that finished some.

    Notes
    -----
    When an item's options share at least ``MIN_SHARED`` leading tokens (its
    question), that prefix is computed once and its key/value cache extended
    by all options in one right-padded pass; other items' options are run
    whole, longest first, ``batch_size`` at a time.  Both give the states of a
    plain per-sequence forward (to float rounding).

    Returns
    -------
    list of numpy.ndarray
        One float32 array per item, shape ``(n_options, len(layers), hidden_size)``,
        layers in the order given.

    Raises
    ------
    CapabilityError
        The backend exposes no transformers model (llama.cpp, a server).
    ValueError
        Bad ``layers`` or ``batch_size``; an item that is not multiple choice.
    TypeError
        A layer index that is not an integer.
    """
    import torch

    _require(backend)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    n_blocks = num_layers(backend)
    layer_idx = resolve_layers(layers, n_blocks)
    for it in items:
        if getattr(it, "kind", None) != "multiple_choice":
            raise ValueError(
                f"item {getattr(it, 'item_id', '?')}: hidden states need multiple-choice items, "
                f"got {getattr(it, 'kind', type(it).__name__)!r}"
            )
    model = backend.model
    body = getattr(model, "base_model", model)  # the decoder without the LM head: no (batch, time, vocab) logits
    hidden = int((getattr(model.config, "text_config", None) or model.config).hidden_size)
    out = [np.zeros((len(it.requests), len(layer_idx), hidden), dtype=np.float32) for it in items]
    device = model.get_input_embeddings().weight.device
    pad = _pad_id(backend)
    full: list[tuple[int, int, list[int]]] = []  # (item position, option, token ids) run whole, batched
    with torch.inference_mode():
        for i, it in enumerate(items):
            tokens = answer_tokens(backend, it)
            p = shared_prefix(tokens)
            if p < MIN_SHARED:
                full.extend((i, j, ids) for j, ids in enumerate(tokens))
                continue
            for start in range(0, len(tokens), int(batch_size)):
                chunk = tokens[start:start + int(batch_size)]
                out[i][start:start + len(chunk)] = _run_shared(body, chunk, p, layer_idx, n_blocks, pad, device)
            if progress is not None:
                progress(1)
        left = Counter(i for i, _, _ in full)
        order = sorted(range(len(full)), key=lambda s: -len(full[s][2]))  # similar lengths together: less padding
        for start in range(0, len(order), int(batch_size)):
            batch = [full[s] for s in order[start:start + int(batch_size)]]
            picked = _run_batch(body, [ids for _, _, ids in batch], layer_idx, n_blocks, pad, device)
            done = 0
            for r, (i, j, _) in enumerate(batch):
                out[i][j] = picked[r]
                left[i] -= 1
                done += left[i] == 0
            if progress is not None and done:
                progress(int(done))
    return out


def shared_prefix(tokens: Sequence[Sequence[int]]) -> int:
    """Length of the longest common prefix of the options' tokens, leaving every option at least one token."""
    if len(tokens) < 2:
        return 0
    first = tokens[0]
    n = min(len(t) for t in tokens) - 1
    p = 0
    while p < n and all(t[p] == first[p] for t in tokens):
        p += 1
    return p


def _states(res: Any, n_blocks: int, model: Any):
    states = res.hidden_states
    if states is None or len(states) != n_blocks + 1:
        raise CapabilityError(
            f"{type(model).__name__} returned {0 if states is None else len(states)} hidden states, "
            f"expected {n_blocks + 1} (num_hidden_layers + 1)"
        )
    return states


def _pick(states, last: list[int], layer_idx: list[int]) -> np.ndarray:
    """``(rows, layers, hidden)`` float32 states at position ``last[r]`` of each row."""
    import torch

    dev = states[0].device
    rows = torch.arange(len(last), device=dev)
    at = torch.tensor(last, device=dev)
    picked = torch.stack([states[k][rows, at] for k in layer_idx], dim=1).float().cpu().numpy()
    if not np.isfinite(picked).all():
        raise ScoringError("the model produced NaN or inf hidden states")
    return picked


def _right_padded(seqs: Sequence[Sequence[int]], pad: int):
    import torch

    width = max(len(ids) for ids in seqs)
    input_ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for r, ids in enumerate(seqs):
        input_ids[r, : len(ids)] = torch.tensor(list(ids), dtype=torch.long)
        mask[r, : len(ids)] = 1
    return input_ids, mask


def _run_batch(body, seqs, layer_idx, n_blocks, pad, device) -> np.ndarray:
    """Whole sequences, right-padded in one forward."""
    input_ids, mask = _right_padded(seqs, pad)
    res = body(input_ids=input_ids.to(device), attention_mask=mask.to(device), output_hidden_states=True,
               use_cache=False)
    return _pick(_states(res, n_blocks, body), [len(ids) - 1 for ids in seqs], layer_idx)


def _run_shared(body, seqs, p, layer_idx, n_blocks, pad, device) -> np.ndarray:
    """Sequences sharing their first ``p`` tokens: the prefix once (key/value cache), then the rest together."""
    import torch

    prefix = torch.tensor([list(seqs[0][:p])], dtype=torch.long, device=device)
    first = body(input_ids=prefix, use_cache=True)
    past = getattr(first, "cache", None) or first.past_key_values  # transformers 5.x renamed past_key_values
    past.batch_repeat_interleave(len(seqs))
    rest = [ids[p:] for ids in seqs]
    input_ids, mask = _right_padded(rest, pad)
    mask = torch.cat([torch.ones((len(seqs), p), dtype=torch.long), mask], dim=1)
    res = body(input_ids=input_ids.to(device), attention_mask=mask.to(device), use_cache=True,
               output_hidden_states=True, **{_cache_kwarg(body): past})
    return _pick(_states(res, n_blocks, body), [len(r) - 1 for r in rest], layer_idx)


def _cache_kwarg(body: Any) -> str:
    """``cache`` (transformers >= 5.x forwards) or ``past_key_values`` (older ones)."""
    import inspect

    try:
        params = inspect.signature(body.forward).parameters
    except (TypeError, ValueError):  # pragma: no cover - a forward without a signature
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def _pad_id(backend: Any) -> int:
    tok = backend.tokenizer
    for pid in (tok.pad_token_id, tok.eos_token_id, 0):
        if pid is not None:
            return int(pid)
    return 0  # pragma: no cover


def _require(backend: Any) -> None:
    if not supports_hidden_states(backend):
        name = getattr(backend, "name", type(backend).__name__)
        raise CapabilityError(
            f"the {name} backend exposes no hidden states; the probe needs a local transformers model (backend hf)"
        )
