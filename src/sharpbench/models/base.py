"""The backend interface: a backend turns token-level requests into logliks.

Keep it small: serving backends (OpenAI-compatible servers, llama.cpp) plug in
by implementing :class:`Backend` without touching the engine.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sharpbench.models.errors import CapabilityError
from sharpbench.results import ChoiceResult, Generation, GenerationRequest, TokenRequest

__all__ = [
    "Backend", "BackendInfo", "Generation", "GenerationRequest", "ModelIdentity", "TokenRequest",
    "constructor_options", "prefix_session", "require",
]

# What each request kind needs from a backend: the method it calls.
CAPABILITIES: dict[str, str] = {
    "multiple_choice": "loglikelihood",
    "generate_until": "generate",
    "loglikelihood_rolling": "loglikelihood_rolling",
}


@runtime_checkable
class Backend(Protocol):
    """A loaded model that can score token sequences."""

    name: str  # backend kind: "hf", "llamacpp", "openai"
    model_id: str  # what the user asked for (short name, path or hub id)
    fingerprint: str  # sha256 of the weights, or hub id@revision
    dtype: str  # "float32", "bfloat16", ...
    max_length: int  # context window in tokens

    @property
    def prefix_token_id(self) -> int:
        """Token used as context when the context string is empty (lm-eval: BOS or EOT)."""
        ...

    def tok_encode(self, text: str, *, add_special_tokens: bool | None = None) -> list[int]:
        """Tokenize as lm-eval's HFLM.tok_encode does for this model."""
        ...

    def loglikelihood(self, requests: Sequence[TokenRequest]) -> list[ChoiceResult]:
        """Score each request; the backend may share work between requests with a common context."""
        ...

    # Optional capabilities (checked with :func:`require`, not part of the runtime protocol check):
    #   generate(requests: Sequence[GenerationRequest], progress=None) -> list[Generation]
    #       in request order; ``progress(n_new_tokens)`` may be called as tokens are produced.
    #   loglikelihood_rolling(requests: Sequence[tuple[int, ...]]) -> list[float]


def prefix_session(backend: object):
    """The backend's prefix-cache session for one evaluation (shared prefixes kept between calls), if it has one."""
    import contextlib

    session = getattr(backend, "prefix_session", None)
    return session() if session is not None else contextlib.nullcontext()


def require(backend: object, kind: str) -> None:
    """Raise :class:`CapabilityError` unless ``backend`` can serve requests of ``kind``.

    ``kind`` is a request kind (``"multiple_choice"``, ``"generate_until"``,
    ``"loglikelihood_rolling"``); the message names the backend and what it lacks.
    """
    method = CAPABILITIES.get(kind)
    if method is None:
        raise ValueError(f"unknown request kind {kind!r}; known: {', '.join(CAPABILITIES)}")
    if not callable(getattr(backend, method, None)):
        name = getattr(backend, "name", type(backend).__name__)
        model = getattr(backend, "model_id", "")
        raise CapabilityError(
            f"the {name} backend{f' ({model})' if model else ''} cannot run {kind} tasks: it has no "
            f"{method}(); use a backend that has (hf{', llamacpp, openai' if kind == 'generate_until' else ''})"
        )


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


@dataclass(frozen=True)
class BackendInfo:
    """Everything sharpbench knows about one backend kind, declared once beside the backend.

    Attributes
    ----------
    name : str
        The ``--backend`` value.
    load : callable
        ``load(name_or_path, *, dtype, device, **kw) -> Backend``.
    identify : callable, optional
        ``identify(name_or_path, *, dtype, **kw) -> ModelIdentity | None``: the
        identity a loaded backend would report, without loading (``None``: only
        loading can tell). Missing: the backend cannot tell ahead of time.
    dtypes : tuple of str
        The ``--dtype`` values the backend takes, the default first.
    stored_dtype : str, optional
        What the store records as the dtype when the backend computes in its
        own types (``"gguf"``, ``"server"``); ``None``: the dtype asked for.
    options : callable, optional
        ``options() -> set[str]``: the ``-M`` keys the backend takes, checked
        before loading; missing: not checked.
    summary : str
        One line for ``--help``.
    """

    name: str
    load: Callable[..., Backend]
    identify: Callable[..., ModelIdentity | None] | None = None
    dtypes: tuple[str, ...] = ("float32",)
    stored_dtype: str | None = None
    options: Callable[[], set[str]] | None = None
    summary: str = ""

    def store_dtype(self, dtype: str) -> str:
        """The dtype a run of this backend is stored under when ``dtype`` was asked for."""
        return self.stored_dtype or dtype


def constructor_options(cls: type, fixed: set[str], extra: set[str] = frozenset()) -> set[str]:
    """The keyword arguments of ``cls.__init__`` less ``fixed`` (set by the loader) plus ``extra``."""
    params = inspect.signature(cls.__init__).parameters
    return {p for p in params if p != "self"} - fixed | set(extra)
