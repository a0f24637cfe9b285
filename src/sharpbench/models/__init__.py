"""Model loading: packaged short names, local checkpoints, GGUF files and hub ids.

``load_model`` resolves what the user typed and hands it to a backend of
:data:`REGISTRY`: each backend module (``hf``, ``llamacpp``, ``openai_api``)
declares its :class:`BackendInfo` (load, identify, dtypes, ``-M`` keys) once
as ``BACKEND``; third-party backends add theirs with :func:`register_backend`.
The CLI's ``--backend``/``--dtype`` help is generated from the registry.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import Any

from sharpbench.models import hf, llamacpp, openai_api
from sharpbench.models.base import Backend, BackendInfo, TokenRequest
from sharpbench.models.errors import (
    BackendError,
    ChecksumMismatchError,
    DeviceUnavailableError,
    ModelError,
    ModelPackageMissingError,
    UnknownBackendError,
    UnknownModelArgError,
    UnknownModelError,
)
from sharpbench.models.packaged import DEFAULT_MODEL, PACKAGED_MODELS
from sharpbench.models.resolve import check_device, default_threads, resolve_source

__all__ = [
    "BACKENDS",
    "REGISTRY",
    "BackendInfo",
    "DEFAULT_MODEL",
    "PACKAGED_MODELS",
    "Backend",
    "BackendError",
    "ChecksumMismatchError",
    "DeviceUnavailableError",
    "ModelError",
    "ModelPackageMissingError",
    "TokenRequest",
    "UnknownBackendError",
    "UnknownModelArgError",
    "UnknownModelError",
    "backend_info",
    "check_device",
    "check_model_args",
    "default_threads",
    "load_model",
    "register_backend",
    "resolve_source",
]

def check_model_args(backend: str, kw: dict[str, Any]) -> None:
    """Raise :class:`UnknownModelArgError` for a ``-M`` key the backend does not take.

    The message names the closest valid key and lists them all (a typo would
    otherwise be a ``TypeError`` traceback from the backend's constructor).
    A backend registered without ``options`` is not checked.
    """
    info = REGISTRY.get(backend)
    if info is None or info.options is None:
        return
    valid = info.options()
    unknown = [k for k in kw if k not in valid]
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], sorted(valid), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownModelArgError(
        f"unknown --model-arg {unknown[0]!r} for the {backend} backend{hint}; "
        f"valid keys: {', '.join(sorted(valid))}"
    )


#: Every backend kind by ``--backend`` name: how to load it, identify it ahead of loading, which dtypes
#: it takes and which ``-M`` keys (each declared once, as ``BACKEND`` in its own module).
REGISTRY: dict[str, BackendInfo] = {b.name: b for b in (hf.BACKEND, llamacpp.BACKEND, openai_api.BACKEND)}

#: The loader of each backend (``REGISTRY[name].load``), kept in step by :func:`register_backend`.
BACKENDS: dict[str, Callable[..., Backend]] = {name: info.load for name, info in REGISTRY.items()}


def register_backend(name: str, factory: Callable[..., Backend] | BackendInfo, **info: Any) -> None:
    """Add a backend: a :class:`BackendInfo`, or ``factory(name_or_path, *, dtype, device, **kw) -> Backend``
    plus any other :class:`BackendInfo` field as a keyword (``identify=``, ``dtypes=``, ``options=``...)."""
    entry = factory if isinstance(factory, BackendInfo) else BackendInfo(name=name, load=factory, **info)
    REGISTRY[name] = entry
    BACKENDS[name] = entry.load


def backend_info(name: str) -> BackendInfo:
    """The registry entry of backend ``name``.

    Raises
    ------
    UnknownBackendError
        No backend is registered under ``name`` (the message lists them).
    """
    if name not in REGISTRY:
        raise UnknownBackendError(f"unknown backend {name!r}; available: {', '.join(sorted(REGISTRY))}")
    return REGISTRY[name]


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
    check_model_args(backend, kw)
    return factory(name_or_path, dtype=dtype, device=device, **kw)
