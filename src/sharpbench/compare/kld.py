"""KL divergence between a base model and a modified model.

First-token KL, as heretic defines it (p-e-w/heretic: ``Model.get_logprobs``
plus the ``KLDivergence`` scorer): each prompt is wrapped in the chat template
with the system prompt "You are a helpful assistant." and the generation
prompt, the tokenizer is called on the rendered text (default special-token
handling, left padding), the log-softmax of the logits for the first answer
token is taken for both models, and

    KL = F.kl_div(logp_modified, logp_base, reduction="batchmean", log_target=True)
       = mean over prompts of  sum_v  P_base(v) * (log P_base(v) - log P_modified(v))

i.e. KL(P_base || P_modified). heretic reads the logits from a one-token
``generate()``; here one forward pass per batch gives the same last-position
logits (position ids are rebuilt from the attention mask, as ``generate``
does for left-padded batches), computed and compared in float32.

Beyond the first token, :func:`per_token_kl` averages the same divergence
over every position of benchmark contexts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from sharpbench.compare.errors import CompareError, TokenizerMismatchError
from sharpbench.compare.paired import bootstrap_mean_ci

DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


def chat_texts(tokenizer, prompts: Sequence[str], system_prompt: str | None = DEFAULT_SYSTEM_PROMPT) -> list[str]:
    """Render prompts with the tokenizer's chat template (system + user turn + generation prompt)."""
    if getattr(tokenizer, "chat_template", None) is None:
        raise CompareError(
            "the tokenizer has no chat template; first-token KL is defined on chat prompts "
            "(use an instruct model's tokenizer)"
        )
    chats = []
    for p in prompts:
        turn = [{"role": "user", "content": p}]
        if system_prompt:
            turn.insert(0, {"role": "system", "content": system_prompt})
        chats.append(turn)
    return tokenizer.apply_chat_template(chats, add_generation_prompt=True, tokenize=False)


def _forward_logits(model, input_ids, attention_mask, *, last_only: bool):
    """float32 logits of a left-padded batch: (b, vocab) for the last position, or (b, L, vocab).

    Callers run it under ``torch.no_grad()``.
    """
    position_ids = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)
    kwargs = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids, "use_cache": False}
    if not last_only:
        return model(**kwargs).logits.float()
    try:
        logits = model(**kwargs, logits_to_keep=1).logits
    except TypeError:  # architectures without logits_to_keep
        logits = model(**kwargs).logits
    return logits[:, -1, :].float()


def next_token_logprobs(
    model,
    tokenizer,
    texts: Sequence[str],
    *,
    batch_size: int = 16,
    progress: Callable[[int], None] | None = None,
):
    """Log-probabilities (float32) of the token following each text, one forward pass per batch.

    Returns
    -------
    torch.Tensor of shape (n_texts, vocab_size)
    """
    import torch
    import torch.nn.functional as F

    if tokenizer.padding_side != "left":
        tokenizer.padding_side = "left"
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            enc = tokenizer(batch, return_tensors="pt", padding=True, return_token_type_ids=False)
            logits = _forward_logits(model, enc["input_ids"], enc["attention_mask"], last_only=True)
            out.append(F.log_softmax(logits, dim=-1))
            if progress:
                progress(len(batch))
    return torch.cat(out, dim=0)


def kl_rows(logp_base, logp_mod) -> np.ndarray:
    """Per-row KL(P_base || P_mod) from two log-probability matrices (float64 numpy result).

    Parameters
    ----------
    logp_base, logp_mod : torch.Tensor of shape (n, vocab)
    """
    import torch

    if logp_base.shape != logp_mod.shape:
        raise TokenizerMismatchError(
            f"log-probability shapes differ: {tuple(logp_base.shape)} vs {tuple(logp_mod.shape)}"
        )
    kl = (logp_base.exp() * (logp_base - logp_mod)).sum(dim=-1)
    return kl.to(torch.float64).numpy()


def kl_batchmean(logp_base, logp_mod) -> float:
    """heretic's score: ``F.kl_div(logp_mod, logp_base, reduction="batchmean", log_target=True)``."""
    import torch.nn.functional as F

    return float(F.kl_div(logp_mod, logp_base, reduction="batchmean", log_target=True).item())


@dataclass(frozen=True)
class KLResult:
    """First-token KL over a prompt set."""

    kld: float  # heretic's batchmean value
    per_prompt: np.ndarray  # (n_prompts,)
    ci_low: float
    ci_high: float
    n_prompts: int
    top1_agreement: float  # share of prompts whose most likely first token is the same

    def to_dict(self) -> dict:
        return {
            "kld": self.kld,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "n_prompts": self.n_prompts,
            "top1_agreement": self.top1_agreement,
            "per_prompt": [float(x) for x in self.per_prompt],
        }


def first_token_kl(
    base_logp,
    mod_logp,
) -> KLResult:
    """Summarise first-token log-probabilities of both models into a :class:`KLResult`."""
    rows = kl_rows(base_logp, mod_logp)
    kld = kl_batchmean(base_logp, mod_logp)
    lo, hi = bootstrap_mean_ci(rows)
    agree = float((base_logp.argmax(-1) == mod_logp.argmax(-1)).float().mean().item())
    return KLResult(kld, rows, lo, hi, int(rows.size), agree)


def per_token_kl(
    base_model,
    mod_model,
    tokenizer,
    texts: Sequence[str],
    *,
    batch_size: int = 4,
    max_tokens: int = 512,
) -> tuple[float, int]:
    """Token-weighted mean KL(P_base || P_mod) over every position of ``texts``.

    Each text is truncated to its last ``max_tokens`` tokens. Returns the mean
    and the number of positions averaged.
    """
    import torch
    import torch.nn.functional as F

    tokenizer.padding_side = "left"
    total, count = 0.0, 0
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = list(texts[start : start + batch_size])
            enc = tokenizer(batch, return_tensors="pt", padding=True, return_token_type_ids=False,
                            truncation=True, max_length=max_tokens)
            ids, mask = enc["input_ids"], enc["attention_mask"]
            lb = F.log_softmax(_forward_logits(base_model, ids, mask, last_only=False), dim=-1)
            lm = F.log_softmax(_forward_logits(mod_model, ids, mask, last_only=False), dim=-1)
            kl = (lb.exp() * (lb - lm)).sum(-1)  # (b, L)
            m = mask.bool()
            total += float(kl[m].to(torch.float64).sum().item())
            count += int(m.sum().item())
    if count == 0:
        raise CompareError("no tokens to compare: the benchmark contexts are empty")
    return total / count, count
