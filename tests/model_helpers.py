"""Helpers shared by the engine and model tests (tiny random checkpoints, task items)."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def make_tiny_checkpoint(dest: Path, tokenizer_dir: Path, *, kind: str = "llama", seed: int = 0) -> Path:
    """A 2-layer random model with the SmolLM2 tokenizer, saved as an HF checkpoint."""
    import torch
    from transformers import (
        AutoModelForCausalLM,
        AutoTokenizer,
        Gemma3TextConfig,
        LlamaConfig,
        Qwen2Config,
    )

    tok = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    common = {
        "vocab_size": len(tok),
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "max_position_embeddings": 256,
        "bos_token_id": tok.bos_token_id,
        "eos_token_id": tok.eos_token_id,
    }
    if kind == "llama":
        cfg = LlamaConfig(**common, tie_word_embeddings=True)
    elif kind == "qwen2":  # q/k/v biases, untied head
        cfg = Qwen2Config(**common, tie_word_embeddings=False)
    elif kind == "gemma3":
        cfg = Gemma3TextConfig(
            **common,
            sliding_window=6,
            layer_types=["sliding_attention", "full_attention"],
            final_logit_softcapping=5.0,
        )
    else:
        raise ValueError(kind)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0.0, 0.5)
    model.save_pretrained(str(dest))
    tok.save_pretrained(str(dest))
    return dest


def piqa_items(n: int):
    from sharpbench.data.registry import get_task

    return get_task("piqa").items(limit=n)


def mmlu_items(subject: str, n: int):
    from sharpbench.data.registry import get_task

    return get_task(f"mmlu_{subject}").items(limit=n)


def random_packed_rows(rng, n_rows):
    """Segments of packed rows (context then continuations) and the dense packed mask."""
    segments, seg_id, row_id = [], [], []
    off = 0
    for r in range(n_rows):
        c = int(rng.integers(1, 30))
        segments.append((off, 0, off, c))
        seg_id += [0] * c
        row_id += [r] * c
        start = off + c
        for s in range(1, int(rng.integers(1, 5))):
            n = int(rng.integers(1, 25))
            segments.append((off, c, start, n))
            seg_id += [s] * n
            row_id += [r] * n
            start += n
        off = start
    seg, row = np.array(seg_id), np.array(row_id)
    t = np.arange(off)
    mask = (row[:, None] == row[None, :]) & (t[None, :] <= t[:, None])
    mask &= (seg[:, None] == seg[None, :]) | (seg[None, :] == 0)
    return segments, off, mask
