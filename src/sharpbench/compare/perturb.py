"""Make damaged variants of a model to test damage metrics on real weights.

Two kinds of edits, both saved as plain HF checkpoints:

* Gaussian weight noise: every linear weight inside the decoder layers gets
  ``scale * std(W) * N(0, 1)`` added (relative noise, per matrix).
* Directional ablation, as abliteration does: the matrices that write into the
  residual stream (attention ``o_proj`` and MLP ``down_proj`` of every layer)
  are edited as ``W <- W - weight * r r^T W``, which removes (``weight=1``) or
  shrinks the component along the unit direction ``r`` of everything the
  layers add to the residual stream. The direction is random, the mean
  residual of a prompt set at a layer, or the difference of means between two
  prompt sets (the abliteration recipe with harmful vs harmless prompts).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from sharpbench.choices import PERTURB_DIRECTIONS
from sharpbench.compare.errors import CompareError


@dataclass(frozen=True)
class Perturbation:
    """A description of one edit, saved beside the checkpoint as ``perturbation.json``."""

    kind: str  # "noise" | "ablate"
    scale: float  # noise: relative std; ablate: projection weight in [0, 1]
    base: str
    seed: int = 0
    direction: str | None = None  # ablate: "random", "mean", "diff"
    layer: int | None = None

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.scale:g}"


def decoder_layers(model):
    """The list of decoder blocks of a causal LM (text-only or multimodal wrapper)."""
    inner = getattr(model, "model", None)
    for path in (("language_model", "layers"), ("layers",)):
        obj = inner
        for attr in path:
            obj = getattr(obj, attr, None) if obj is not None else None
        if obj is not None:
            return obj
    raise CompareError(f"cannot find the decoder layers of {type(model).__name__} (expected model.model.layers)")


def residual_writers(layer) -> list:
    """Weights of one block that write into the residual stream: attention o_proj and MLP down_proj."""
    out = []
    attn = getattr(layer, "self_attn", None)
    if attn is not None and hasattr(attn, "o_proj"):
        out.append(attn.o_proj.weight)
    mlp = getattr(layer, "mlp", None)
    if mlp is not None and hasattr(mlp, "down_proj"):
        out.append(mlp.down_proj.weight)
    if not out:
        raise CompareError(f"layer {type(layer).__name__} has no o_proj/down_proj to ablate")
    return out


def add_gaussian_noise(model, scale: float, *, seed: int = 0) -> int:
    """Add relative Gaussian noise in place to every 2-D weight of the decoder layers.

    Returns the number of matrices changed.
    """
    import torch

    if scale < 0:
        raise CompareError(f"noise scale must be >= 0, got {scale}")
    gen = torch.Generator().manual_seed(seed)
    n = 0
    with torch.no_grad():
        for layer in decoder_layers(model):
            for name, p in layer.named_parameters():
                if p.ndim != 2:
                    continue
                noise = torch.randn(p.shape, generator=gen, dtype=torch.float32)
                p.add_((scale * p.float().std() * noise).to(p.dtype))
                n += 1
    return n


def ablate_direction(model, direction, *, weight: float = 1.0) -> int:
    """Project ``direction`` out of the residual-stream writers in place (``W -= weight * r r^T W``).

    Parameters
    ----------
    direction : torch.Tensor of shape (hidden_size,)
        Normalised inside.
    weight : float
        1 removes the component fully; smaller values shrink it.

    Returns the number of matrices changed.
    """
    import torch

    r = torch.as_tensor(direction, dtype=torch.float32).flatten()
    hidden = model.config.hidden_size
    if r.numel() != hidden:
        raise CompareError(f"direction has {r.numel()} entries, the model's hidden size is {hidden}")
    norm = r.norm()
    if not torch.isfinite(norm) or norm == 0:
        raise CompareError("ablation direction is zero or not finite")
    r = r / norm
    n = 0
    with torch.no_grad():
        for layer in decoder_layers(model):
            for w in residual_writers(layer):
                wf = w.float()
                w.copy_((wf - weight * torch.outer(r, r @ wf)).to(w.dtype))
                n += 1
    return n


def mean_residual(model, tokenizer, prompts: Sequence[str], *, layer: int, batch_size: int = 16):
    """Mean hidden state after block ``layer`` at the last prompt token (chat-formatted prompts)."""
    import torch

    from sharpbench.compare.kld import chat_texts

    n_layers = len(decoder_layers(model))
    if not 0 <= layer < n_layers:
        raise CompareError(f"layer must be in [0, {n_layers - 1}], got {layer}")
    tokenizer.padding_side = "left"
    texts = chat_texts(tokenizer, prompts)
    acc = None
    with torch.no_grad():
        for s in range(0, len(texts), batch_size):
            enc = tokenizer(texts[s : s + batch_size], return_tensors="pt", padding=True, return_token_type_ids=False)
            mask = enc["attention_mask"]
            pos = (mask.long().cumsum(-1) - 1).clamp(min=0)
            out = model(**enc, position_ids=pos, output_hidden_states=True, use_cache=False)
            h = out.hidden_states[layer + 1][:, -1, :].float().sum(0)
            acc = h if acc is None else acc + h
    return acc / len(texts)


def make_direction(model, tokenizer, how: str, *, layer: int | None = None, seed: int = 0,
                   prompts: Sequence[str] = (), contrast: Sequence[str] = ()):
    """A unit direction: ``random``, ``mean`` (mean residual of ``prompts``) or ``diff`` (contrast - prompts)."""
    import torch

    hidden = model.config.hidden_size
    if layer is None:
        layer = len(decoder_layers(model)) // 2
    if how == "random":
        r = torch.randn(hidden, generator=torch.Generator().manual_seed(seed))
    elif how == "mean":
        if not prompts:
            raise CompareError("direction 'mean' needs a prompt set")
        r = mean_residual(model, tokenizer, prompts, layer=layer)
    elif how == "diff":
        if not prompts or not contrast:
            raise CompareError("direction 'diff' needs two prompt sets (--prompts and --contrast)")
        r = mean_residual(model, tokenizer, contrast, layer=layer) - mean_residual(model, tokenizer, prompts, layer=layer)
    else:
        raise CompareError(f"unknown direction {how!r}; use one of {', '.join(PERTURB_DIRECTIONS)}")
    return r / r.norm()


def save_variant(model, tokenizer, out_dir: Path, info: Perturbation) -> Path:
    """Write the edited model, its tokenizer and ``perturbation.json`` to ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    (out_dir / "perturbation.json").write_text(json.dumps(asdict(info), indent=2))
    return out_dir


def make_variants(
    base: str,
    out_dir: str | Path,
    *,
    noise: Sequence[float] = (),
    ablate: Sequence[float] = (),
    direction: str = "random",
    layer: int | None = None,
    prompts: Sequence[str] = (),
    contrast: Sequence[str] = (),
    seed: int = 0,
) -> list[tuple[Perturbation, Path]]:
    """Create one checkpoint per noise scale and per ablation weight under ``out_dir``.

    The base weights are reloaded for every variant, so edits never stack.
    """
    from sharpbench.compare.hf import load_hf

    if not noise and not ablate:
        raise CompareError("nothing to make: give --noise and/or --ablate values")
    out = []
    model, tok = load_hf(base)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    r = None
    if ablate:
        r = make_direction(model, tok, direction, layer=layer, seed=seed, prompts=prompts, contrast=contrast)
    if layer is None:
        layer = len(decoder_layers(model)) // 2
    jobs = [Perturbation("noise", float(s), base, seed) for s in noise]
    jobs += [Perturbation("ablate", float(w), base, seed, direction, layer) for w in ablate]
    for info in jobs:
        model.load_state_dict(state)
        if info.kind == "noise":
            add_gaussian_noise(model, info.scale, seed=seed)
        else:
            ablate_direction(model, r, weight=info.scale)
        out.append((info, save_variant(model, tok, Path(out_dir) / info.name, info)))
    return out
