"""What a model *is* for the store, known without loading its weights.

A run in the store is keyed by the model's weight fingerprint, backend and
dtype.  Knowing that key before loading lets the pipeline skip the load when
everything asked for is already stored, and lets a fan-out driver plan which
items still need scoring before it ships work to remote workers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ModelIdentity:
    """The store's view of a model: enough to build a run key."""

    model_id: str
    fingerprint: str
    backend: str
    dtype: str

    @property
    def name(self) -> str:
        """The backend kind, under the attribute name a loaded backend uses."""
        return self.backend


def identify(name_or_path: str, *, backend: str = "hf", dtype: str = "float32", **kw: Any) -> ModelIdentity | None:
    """The identity a loaded backend would report, or ``None`` when only loading can tell.

    Parameters
    ----------
    name_or_path : str
        What the user typed (packaged short name, path, hub id, or a served model name).
    backend : str
        ``"hf"``, ``"llamacpp"`` or ``"openai"``.
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
    if kw.get("fingerprint"):
        return ModelIdentity(name_or_path, str(kw["fingerprint"]), backend, _dtype(backend, dtype))
    if backend == "hf":
        return _hf_identity(name_or_path, dtype)
    if backend == "llamacpp":
        from sharpbench.models.fingerprint import weights_fingerprint
        from sharpbench.models.llamacpp import resolve_gguf

        path = resolve_gguf(name_or_path, filename=kw.get("filename"))
        if path is None:
            return None
        return ModelIdentity(name_or_path, weights_fingerprint(path), backend, _dtype(backend, dtype))
    if backend == "openai":
        from sharpbench.models.openai_api import served_fingerprint

        return ModelIdentity(name_or_path, served_fingerprint(name_or_path, kw.get("tokenizer")), backend,
                             _dtype(backend, dtype))
    return None


def _dtype(backend: str, dtype: str) -> str:
    # llama.cpp and servers compute in their own types; the store records that, not the CLI default.
    return {"llamacpp": "gguf", "openai": "server"}.get(backend, dtype)


def _hf_identity(name_or_path: str, dtype: str) -> ModelIdentity | None:
    from sharpbench.models import resolve_source

    source, extra = resolve_source(name_or_path)
    if "fingerprint" in extra:
        return ModelIdentity(name_or_path, str(extra["fingerprint"]), "hf", dtype)
    path = Path(source)
    if not path.exists():
        return None  # hub id: the commit hash is known after download
    from sharpbench.models.fingerprint import weights_fingerprint

    target = path / extra["gguf_file"] if "gguf_file" in extra else path
    return ModelIdentity(name_or_path, weights_fingerprint(target), "hf", dtype)
