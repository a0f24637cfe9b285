"""Loading the hf backend: the registry entry, and ``device_map`` / peft adapters (``--model-args``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sharpbench.models.base import BackendInfo, ModelIdentity, constructor_options
from sharpbench.models.errors import BackendError
from sharpbench.models.fingerprint import weights_fingerprint
from sharpbench.models.hf.backend import HFBackend
from sharpbench.models.model_args import adapter_fingerprint
from sharpbench.models.resolve import check_device, resolve_source


def load_hf_model(
    name_or_path: str,
    source: str,
    *,
    dtype: str = "float32",
    device: str | None = None,
    device_map: Any = None,
    peft: str | None = None,
    trust_remote_code: bool = False,
    revision: str | None = None,
    max_length: int | None = None,
    batch_size: int = 64,
    max_batch_tokens: int = 32768,
    add_bos_token: bool = False,
    fingerprint: str | None = None,
    base_fingerprint: str | None = None,
    gguf_file: str | None = None,
):
    """Load a transformers causal LM with ``device_map`` and/or a peft adapter into an :class:`HFBackend`.

    ``source`` is where :func:`sharpbench.models.resolve_source` found ``name_or_path``
    (its ``gguf_file`` and the packaged weights' ``fingerprint`` come as ``gguf_file`` and
    ``base_fingerprint``).  ``fingerprint`` overrides the store identity as a whole; otherwise it
    is the base weights' fingerprint plus the adapter's (:func:`adapter_fingerprint`).

    Raises
    ------
    BackendError
        ``peft=`` without the peft package installed.
    """
    import torch  # start-up time: the hf backend's dependencies load on first use
    import transformers

    if dtype not in ("float32", "bfloat16", "float16"):
        raise ValueError(f"dtype must be one of float32, bfloat16, float16, got {dtype!r}")
    common: dict[str, Any] = {"trust_remote_code": bool(trust_remote_code)}
    local = Path(source).exists()
    if revision and not local:
        common["revision"] = revision
    if gguf_file:
        common["gguf_file"] = gguf_file
    tokenizer = transformers.AutoTokenizer.from_pretrained(source, **common)
    model_kw = dict(common, dtype=getattr(torch, dtype), attn_implementation="sdpa")
    if device_map is not None:
        model_kw["device_map"] = device_map
    model = transformers.AutoModelForCausalLM.from_pretrained(source, **model_kw)
    if device_map is None:
        model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    base_fp = fingerprint or base_fingerprint
    if base_fp is None:
        if local:
            from sharpbench.models.fingerprint import weights_fingerprint

            base_fp = weights_fingerprint(Path(source) / gguf_file if gguf_file else Path(source))
        else:
            base_fp = f"{source}@{getattr(model.config, '_commit_hash', None) or revision or 'main'}"
    if peft:
        try:
            from peft import PeftModel
        except ImportError as err:
            raise BackendError('peft= needs the peft package: pip install "sharpbench[lora]"') from err
        model = PeftModel.from_pretrained(model, str(peft))
        if fingerprint is None:
            base_fp = adapter_fingerprint(base_fp, str(peft))
    model.eval()
    return HFBackend.from_model(model, tokenizer, model_id=name_or_path, fingerprint=base_fp, max_length=max_length,
                                batch_size=batch_size, max_batch_tokens=max_batch_tokens,
                                add_bos_token=add_bos_token)


# ----------------------------------------------------------------- registry
def load_hf(name_or_path: str, *, dtype: str, device: str | None, **kw: Any) -> HFBackend:
    """Factory registered as backend ``"hf"``: resolve the name, check the device, load."""
    check_device(device, "hf")
    source, extra = resolve_source(name_or_path)
    if kw.get("peft") or kw.get("device_map") is not None:  # --model-args peft= / device_map=
        extra = {"base_fingerprint" if k == "fingerprint" else k: v for k, v in extra.items()}
        return load_hf_model(name_or_path, source, dtype=dtype, device=device, **extra, **kw)
    kw.pop("peft", None)
    kw.pop("device_map", None)
    return HFBackend(name_or_path, source, dtype=dtype, device=device, **extra, **kw)


def identify_hf(name_or_path: str, *, dtype: str = "float32", **kw: Any) -> ModelIdentity | None:
    """The identity :func:`load_hf` would report; ``None`` for a hub id (its commit is known after download)."""
    source, extra = resolve_source(name_or_path)
    if "fingerprint" in extra:
        return ModelIdentity(name_or_path, str(extra["fingerprint"]), "hf", dtype)
    path = Path(source)
    if not path.exists():
        return None
    target = path / extra["gguf_file"] if "gguf_file" in extra else path
    return ModelIdentity(name_or_path, weights_fingerprint(target), "hf", dtype)


BACKEND = BackendInfo(
    name="hf", load=load_hf, identify=identify_hf, dtypes=("float32", "bfloat16", "float16"),
    options=lambda: constructor_options(HFBackend, {"model_id", "source", "dtype", "device"}) | {"device_map", "peft"},
    summary="transformers in this process",
)
