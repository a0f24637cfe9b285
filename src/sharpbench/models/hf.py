"""Hugging Face transformers backend (local checkpoint, hub id, or GGUF file)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sharpbench.models.base import BackendInfo, ModelIdentity, constructor_options
from sharpbench.models.fingerprint import weights_fingerprint
from sharpbench.models.resolve import check_device, resolve_source
from sharpbench.results import ChoiceResult, TokenRequest

_DTYPES = ("float32", "bfloat16", "float16")
_DEFAULT_MAX_LENGTH = 2048  # lm-eval 0.4.13 models/utils.py DEFAULT_MAX_LENGTH
_TOKENIZER_INFINITY = 1000000000000000019884624838656  # transformers' "unset" model_max_length


def resolve_max_length(config: Any, tokenizer: Any, default: int = _DEFAULT_MAX_LENGTH) -> int:
    """Context length as lm-eval 0.4.13's ``resolve_max_length``.

    ``text_config`` first, then ``n_positions``, ``max_position_embeddings``,
    ``n_ctx`` on the config, then the tokenizer's ``model_max_length`` unless
    unset, then ``default``.
    """
    cfg = getattr(config, "text_config", None) or config
    for attr in ("n_positions", "max_position_embeddings", "n_ctx"):
        value = getattr(cfg, attr, None)
        if value is not None:
            return int(value)
    mml = getattr(tokenizer, "model_max_length", None)
    if mml is not None and mml != _TOKENIZER_INFINITY:
        return int(mml)
    return default


def prefix_token_id(tokenizer: Any) -> int:
    """lm-eval's prefix token (context of an empty-context request): BOS, else EOS."""
    return int(tokenizer.bos_token_id if tokenizer.bos_token_id is not None else tokenizer.eos_token_id)


def lmeval_encode(tokenizer: Any, text: str, *, add_special_tokens: bool | None = None,
                  add_bos: bool = False) -> list[int]:
    """Token ids of ``text`` as lm-eval 0.4.13 ``HFLM.tok_encode`` (``add_bos_token`` unset) makes them.

    ``add_special_tokens=None`` uses the tokenizer's default (adds BOS for
    Gemma, nothing for SmolLM2/Qwen2.5) unless the text already starts with
    the decoded prefix token.  ``add_bos`` then prepends BOS where the
    tokenizer did not (for servers that add BOS themselves).
    """
    kwargs: dict[str, bool] = {}
    if add_special_tokens is not None:
        kwargs["add_special_tokens"] = add_special_tokens
    elif text.startswith(tokenizer.decode(prefix_token_id(tokenizer))):
        kwargs["add_special_tokens"] = False
    ids = list(tokenizer.encode(text, **kwargs))
    return with_bos(ids, tokenizer.bos_token_id, add_bos and add_special_tokens is not False)


def with_bos(ids: list[int], bos: int | None, add: bool) -> list[int]:
    """``ids`` with ``bos`` prepended when ``add`` and it is not already first."""
    if not add or bos is None or (ids and ids[0] == bos):
        return ids
    return [int(bos), *ids]


class LmEvalTokenization:
    """``prefix_token_id`` and ``tok_encode`` of a backend holding an HF ``tokenizer`` and ``add_bos_token``."""

    tokenizer: Any
    add_bos_token: bool = False

    @property
    def prefix_token_id(self) -> int:
        return prefix_token_id(self.tokenizer)

    def tok_encode(self, text: str, *, add_special_tokens: bool | None = None) -> list[int]:
        """Encode as lm-eval 0.4.13 ``HFLM.tok_encode`` (see :func:`lmeval_encode`)."""
        return lmeval_encode(self.tokenizer, text, add_special_tokens=add_special_tokens, add_bos=self.add_bos_token)


class HFBackend(LmEvalTokenization):
    """A transformers ``AutoModelForCausalLM`` scored with the packed shared-prefix engine.

    Parameters
    ----------
    model_id : str
        What the user asked for (short name, path or hub id); recorded, not loaded.
    source : str or Path
        Directory of an HF checkpoint, a hub id, or the directory holding ``gguf_file``.
    gguf_file : str, optional
        GGUF file name inside ``source`` (dequantized by transformers at load time).
    dtype : {"float32", "bfloat16", "float16"}
    device : str, optional
        ``"cuda"`` when available, else ``"cpu"`` if not given.
    revision : str, optional
        Hub revision (ignored for local paths).
    fingerprint : str, optional
        Precomputed weight fingerprint (e.g. from the packaged-model cache).
    max_length : int, optional
        Override the context window (lm-eval's ``max_length`` model arg).
    batch_size : int
        Maximum packed rows (one per distinct context) per forward pass.
    add_bos_token : bool
        Prepend the BOS token to every context the tokenizer would not start
        with it (as a server that adds BOS itself does); default: the
        tokenizer's own behaviour, as lm-eval.
    """

    name = "hf"

    def __init__(
        self,
        model_id: str,
        source: str | Path,
        *,
        gguf_file: str | None = None,
        dtype: str = "float32",
        device: str | None = None,
        revision: str | None = None,
        fingerprint: str | None = None,
        max_length: int | None = None,
        batch_size: int = 64,
        max_batch_tokens: int = 32768,
        trust_remote_code: bool = False,
        add_bos_token: bool = False,
    ) -> None:
        import torch  # start-up time: torch and transformers load only when a model does
        import transformers

        if dtype not in _DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(_DTYPES)}, got {dtype!r}")
        self.model_id = model_id
        self.dtype = dtype
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.batch_size = int(batch_size)
        self.max_batch_tokens = int(max_batch_tokens)
        src = str(source)
        is_local = Path(src).exists()
        common: dict[str, Any] = {"trust_remote_code": trust_remote_code}
        if not is_local and revision:
            common["revision"] = revision
        tok_kw = dict(common, gguf_file=gguf_file) if gguf_file else dict(common, use_fast=True)
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(src, **tok_kw)
        model_kw = dict(common, dtype=getattr(torch, dtype), attn_implementation="sdpa")
        if gguf_file:
            model_kw["gguf_file"] = gguf_file
        self.model = transformers.AutoModelForCausalLM.from_pretrained(src, **model_kw)
        self.model.eval()
        self.model.to(self.device)
        self._max_length = max_length
        self.add_bos_token = bool(add_bos_token)
        if fingerprint is not None:
            self.fingerprint = fingerprint
        elif is_local:
            self.fingerprint = weights_fingerprint(Path(src) / gguf_file if gguf_file else Path(src))
        else:
            commit = getattr(self.model.config, "_commit_hash", None)
            self.fingerprint = f"{src}@{commit or revision or 'main'}"

    # --- lm-eval HFLM-compatible tokenization -------------------------------------------

    @property
    def max_length(self) -> int:
        if self._max_length:
            return int(self._max_length)
        return resolve_max_length(self.model.config, self.tokenizer)

    # --- scoring -------------------------------------------------------------------------

    def loglikelihood(self, requests: Sequence[TokenRequest]) -> list[ChoiceResult]:
        """Score requests; those sharing a context are packed into one row (one pass over it)."""
        from sharpbench.engine.scoring import score_requests  # start-up time (torch); the kernels move here

        return score_requests(
            self.model,
            requests,
            max_rows=self.batch_size,
            max_tokens=self.max_batch_tokens,
            device=self.device,
        )

    def num_parameters(self, *, non_embedding: bool = False) -> int:
        """Parameter count (optionally without the input embedding and a tied output head)."""
        total = sum(p.numel() for p in self.model.parameters())
        if non_embedding:
            total -= self.model.get_input_embeddings().weight.numel()
        return int(total)

    def __repr__(self) -> str:
        return f"HFBackend({self.model_id!r}, dtype={self.dtype!r}, device={self.device!r})"


# ----------------------------------------------------------------- registry
def load_hf(name_or_path: str, *, dtype: str, device: str | None, **kw: Any) -> HFBackend:
    """Factory registered as backend ``"hf"``: resolve the name, check the device, load."""
    check_device(device, "hf")
    source, extra = resolve_source(name_or_path)
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
    options=lambda: constructor_options(HFBackend, {"model_id", "source", "dtype", "device"}),
    summary="transformers in this process",
)
