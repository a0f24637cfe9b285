"""What a model *is* for the store, known without loading its weights.

A run in the store is keyed by the model's weight fingerprint, backend and
dtype.  Knowing that key before loading lets the pipeline skip the load when
everything asked for is already stored, and lets a fan-out driver plan which
items still need scoring before it ships work to remote workers.  Each
backend says how it identifies a model (``BackendInfo.identify`` in
:data:`sharpbench.models.REGISTRY`).
"""

from __future__ import annotations

from typing import Any

from sharpbench.models import REGISTRY
from sharpbench.models.base import ModelIdentity

__all__ = ["ModelIdentity", "identify"]


def identify(name_or_path: str, *, backend: str = "hf", dtype: str = "float32", **kw: Any) -> ModelIdentity | None:
    """The identity a loaded backend would report, or ``None`` when only loading can tell.

    Parameters
    ----------
    name_or_path : str
        What the user typed (packaged short name, path, hub id, or a served model name).
    backend : str
        A key of :data:`sharpbench.models.REGISTRY` (``"hf"``, ``"llamacpp"``, ``"openai"``...).
    dtype : str
        As passed to :func:`sharpbench.models.load_model`.
    **kw
        Backend options (``fingerprint=`` overrides; the openai backend's ``base_url``...).

    Returns
    -------
    ModelIdentity or None
        ``None`` for hub ids (the commit is only known after download) and
        for backends that cannot tell ahead of time.

    Raises
    ------
    UnknownModelError, ModelPackageMissingError
        As :func:`sharpbench.models.load_model` would.
    """
    info = REGISTRY.get(backend)
    stored_dtype = info.store_dtype(dtype) if info is not None else dtype
    if kw.get("fingerprint"):
        return ModelIdentity(name_or_path, str(kw["fingerprint"]), backend, stored_dtype)
    if info is None or info.identify is None:
        return None
    return info.identify(name_or_path, dtype=dtype, **kw)
