"""lm-eval style ``--model-args`` for the hf backend, and loading with ``device_map`` / a peft adapter.

``pretrained=HuggingFaceTB/SmolLM2-135M,dtype=auto,device_map=auto,peft=./lora,trust_remote_code=true,max_length=4096``
means what it means to lm-eval 0.4.13's ``HFLM``:

* ``pretrained``: the model (packaged short name, path or hub id; replaces ``--model``);
* ``dtype``: ``float32`` / ``bfloat16`` / ``float16``, or ``auto``: bfloat16 on a CUDA GPU
  that supports it (else float16 there), float32 on the CPU;
* ``device_map``: passed to transformers (accelerate places the layers, e.g. across GPUs);
* ``peft``: a LoRA (or other peft) adapter loaded on top with ``peft.PeftModel``;
* ``trust_remote_code``, ``revision``, ``max_length``, ``add_bos_token``, ``device``.

lm-eval's automatic batch size is ``--batch-size auto`` / ``batch_size="auto"``
(:mod:`sharpbench.engine.batching`), not a model arg.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sharpbench.models.errors import UnknownModelArgError

__all__ = [
    "LMEVAL_MODEL_ARGS",
    "auto_dtype",
    "adapter_fingerprint",
    "parse_lmeval_model_args",
    "resolve_model_args",
]

#: Keys ``--model-args`` takes (lm-eval ``HFLM`` names).
LMEVAL_MODEL_ARGS = (
    "pretrained", "dtype", "device_map", "peft", "trust_remote_code", "max_length", "revision",
    "add_bos_token", "device",
)
_DTYPE_ALIASES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16",
                  "float16": "float16", "fp16": "float16", "half": "float16"}


def parse_lmeval_model_args(text: str) -> dict[str, Any]:
    """``"pretrained=x,dtype=auto,trust_remote_code=true"`` -> dict (booleans and integers parsed).

    Raises
    ------
    UnknownModelArgError
        A key lm-eval's hf model does not take here (the message lists the valid ones), or a malformed pair.
    """
    import difflib

    out: dict[str, Any] = {}
    for pair in (p.strip() for p in text.split(",")):
        if not pair:
            continue
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UnknownModelArgError(f"--model-args expects KEY=VALUE pairs separated by commas, got {pair!r}")
        if key not in LMEVAL_MODEL_ARGS:
            close = difflib.get_close_matches(key, LMEVAL_MODEL_ARGS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UnknownModelArgError(
                f"unknown --model-args key {key!r}{hint}; valid keys: {', '.join(LMEVAL_MODEL_ARGS)}"
            )
        value: Any = raw.strip()
        if value.lower() in ("true", "false"):
            value = value.lower() == "true"
        elif key == "max_length":
            try:
                value = int(value)
            except ValueError:
                raise UnknownModelArgError(f"--model-args max_length must be an integer, got {raw!r}") from None
        out[key] = value
    return out


def auto_dtype(device: str | None = None) -> str:
    """``dtype=auto``: bfloat16 on a CUDA GPU that supports it (else float16), float32 on the CPU."""
    import torch

    on_cuda = torch.cuda.is_available() and (device is None or str(device).startswith("cuda"))
    if not on_cuda:
        return "float32"
    return "bfloat16" if torch.cuda.is_bf16_supported() else "float16"


def resolve_model_args(args: Mapping[str, Any], *, model: str, dtype: str = "float32",
                       device: str | None = None) -> tuple[str, str, str | None, dict[str, Any]]:
    """``(model, dtype, device, backend kwargs)`` for :func:`~sharpbench.models.load_model` from parsed model args."""
    args = dict(args)
    model = str(args.pop("pretrained", model))
    device = args.pop("device", device)
    raw = str(args.pop("dtype", dtype))
    if raw == "auto":
        dtype = auto_dtype(device)
    elif raw in _DTYPE_ALIASES:
        dtype = _DTYPE_ALIASES[raw]
    else:
        raise UnknownModelArgError(f"--model-args dtype must be auto, float32, bfloat16 or float16, got {raw!r}")
    kw = {k: v for k, v in args.items() if v not in (None, "")}
    return model, dtype, device, kw


def adapter_fingerprint(base_fingerprint: str, peft: str) -> str:
    """Store identity of base weights + an adapter: the adapter's weight hash when it is a local directory."""
    path = Path(peft).expanduser()
    if path.exists():
        from sharpbench.models.fingerprint import weights_fingerprint

        return f"{base_fingerprint}+peft:{weights_fingerprint(path)}"
    return f"{base_fingerprint}+peft:{peft}"
