"""Hugging Face transformers backend (local checkpoint, hub id, or GGUF file)."""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sharpbench.models.fingerprint import weights_fingerprint
from sharpbench.results import ChoiceResult, Generation, GenerationRequest, TokenRequest

#: Sequences that decode together when a generate call names no batch size (the engine's default too).
GEN_SLOTS = 128

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


PREFIX_CACHE_SHARE = 0.125  # default prefix-cache budget: this share of free RAM / GPU memory
PREFIX_CACHE_MAX_MB = 4096


def free_memory(device: str) -> int:
    """Free bytes of ``device`` (GPU memory for CUDA, available RAM otherwise; 2 GiB if unknown)."""
    import os

    try:
        if str(device).startswith("cuda"):
            import torch

            return int(torch.cuda.mem_get_info(torch.device(device))[0])
        return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, ValueError, RuntimeError):
        return 2 << 30


def default_prefix_cache_mb(device: str) -> int:
    """Prefix-cache budget: 1/8 of the free memory of ``device``, at most 4 GiB."""
    return int(min(PREFIX_CACHE_MAX_MB, PREFIX_CACHE_SHARE * free_memory(device) / (1 << 20)))


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
    prefix_cache : bool
        Lay each call's contexts into a prefix tree and compute every shared
        prefix once; inside :meth:`prefix_session` (the runner opens one per
        evaluation) also keep prefix states between calls.  Llama-family
        and Gemma-3 models only (the lean forward); other architectures compute every
        context in full and say so once.  ``False`` is the plain path.
    prefix_cache_mb : int, optional
        Memory for prefix states kept between calls (default
        :func:`default_prefix_cache_mb`).
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
        prefix_cache: bool = True,
        prefix_cache_mb: int | None = None,
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
        self.score_bounds: tuple[int, int] | None = None  # set by batch_size="auto" (see auto_batch_size)
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
        self._init_prefix_cache(prefix_cache, prefix_cache_mb)
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

    def _init_prefix_cache(self, prefix_cache: bool, prefix_cache_mb: int | None) -> None:
        """Prefix-cache settings and per-backend state (no session open, architecture not yet checked)."""
        if prefix_cache_mb is not None and int(prefix_cache_mb) < 0:
            raise ValueError(f"prefix_cache_mb must be >= 0, got {prefix_cache_mb}")
        self.prefix_cache = bool(prefix_cache)
        self.prefix_cache_mb = None if prefix_cache_mb is None else int(prefix_cache_mb)
        self._cache = None
        self._tree_ok: bool | None = None
        self._noted: set[str] = set()

    @property
    def prefix_tree(self) -> bool:
        """Whether calls share prefixes through a prefix tree (cache on and the model supports it)."""
        from sharpbench.models.hf.scoring import supports_prefix_tree

        if not self.prefix_cache:
            return False
        if self._tree_ok is None:
            self._tree_ok = supports_prefix_tree(self.model)
        if self._tree_ok:
            return True
        self._note_once(
            "arch",
            f"prefix cache: {getattr(self.model.config, 'model_type', '?')} models run through their own "
            "forward (sliding-window or other attention the lean path does not take); every context is "
            "computed in full",
        )
        return False

    @property
    def tree_order(self) -> bool:
        """The runner should send items in prefix-tree order (see :func:`sharpbench.engine.runner.tree_order`)."""
        return self.prefix_tree

    @contextlib.contextmanager
    def prefix_session(self):
        """Keep prefix states between the calls made inside (one evaluation); dropped on exit.

        Weights edited between sessions are never scored against stale states.
        """
        from sharpbench.models.hf.prefix import PrefixKVCache

        if not self.prefix_tree or self._cache is not None:
            yield None
            return
        mb = self.prefix_cache_mb if self.prefix_cache_mb is not None else default_prefix_cache_mb(self.device)
        self._cache = PrefixKVCache(mb << 20)
        try:
            yield self._cache
        finally:
            cache, self._cache = self._cache, None
            if cache.skipped:
                self._note_once(
                    "budget",
                    f"prefix cache: {cache.skipped} prefix(es) larger than --prefix-cache-mb {mb} were computed "
                    "without caching",
                )

    def _note_once(self, key: str, message: str) -> None:
        import logging

        if key not in self._noted:
            self._noted.add(key)
            logging.getLogger("sharpbench").warning(message)

    def loglikelihood(self, requests: Sequence[TokenRequest]) -> list[ChoiceResult]:
        """Score requests; each shared prefix (a context, a few-shot prompt) is computed once."""
        from sharpbench.models.hf.scoring import score_requests  # start-up time (torch); the kernels move here

        max_rows, max_tokens = self.score_bounds or (self.batch_size, self.max_batch_tokens)
        return score_requests(
            self.model,
            requests,
            max_rows=max_rows,
            max_tokens=max_tokens,
            device=self.device,
            prefix_tree=self.prefix_tree,
            cache=self._cache,
        )

    def auto_batch_size(self, kind: str, worst, *, n_items: int, default: int) -> int:
        """``batch_size="auto"``: the largest batch of ``kind`` that fits in free CUDA memory (``default`` off CUDA).

        Searched once per request kind and shape, then cached on this backend
        (see :mod:`sharpbench.models.hf.autobatch`); for scoring it also sets
        :attr:`score_bounds`, the rows / tokens of one scoring forward pass, to
        that batch's (generation keeps ``batch_size`` / ``max_batch_tokens``).
        ``worst(n)`` gives the ``n`` longest items' requests, longest first.
        """
        from sharpbench.models.hf.autobatch import auto_batch_size  # start-up time (torch, accelerate)

        return auto_batch_size(self, kind, worst, n_items=n_items, default=default)

    def generate(self, requests: Sequence[GenerationRequest], progress=None, *,
                 batch_size: int | None = None) -> list[Generation]:
        """Generate for every request (lm-eval's ``generate_until`` rules); results in request order."""
        from sharpbench.models.gen_text import in_request_order

        return in_request_order(self.generate_iter(requests, progress=progress, batch_size=batch_size), len(requests))

    def generate_iter(self, requests: Sequence[GenerationRequest], progress=None, *, batch_size: int | None = None):
        """Yield ``(request index, Generation, seconds)`` as each request finishes (continuous batching).

        ``batch_size`` sequences decode together (default :data:`GEN_SLOTS`, as the engine's). Llama-family
        and Gemma-3 models with the prefix cache on prefill through the prefix tree and
        decode in the lean scheduler; others (or ``prefix_cache=False``) use
        transformers' ``generate`` on length-sorted batches.
        """
        from sharpbench.models.hf.generate import generate_iter  # start-up time (torch)

        yield from generate_iter(
            self.model, self.tokenizer, requests, self.tok_encode, max_length=self.max_length,
            device=self.device, n_slots=batch_size or GEN_SLOTS, max_tokens=self.max_batch_tokens,
            max_rows=self.batch_size, cache=self._cache, lean_ok=self.prefix_tree, progress=progress,
            memory=free_memory(self.device) // 2,
        )

    def num_parameters(self, *, non_embedding: bool = False) -> int:
        """Parameter count (optionally without the input embedding and a tied output head)."""
        total = sum(p.numel() for p in self.model.parameters())
        if non_embedding:
            total -= self.model.get_input_embeddings().weight.numel()
        return int(total)

    def __repr__(self) -> str:
        return f"HFBackend({self.model_id!r}, dtype={self.dtype!r}, device={self.device!r})"

    # --- an already-loaded model (optimisation loops) ---------------------------------------

    @classmethod
    def from_model(
        cls,
        model: Any,
        tokenizer: Any,
        *,
        model_id: str | None = None,
        fingerprint: str | None = None,
        max_length: int | None = None,
        batch_size: int = 64,
        max_batch_tokens: int = 32768,
        add_bos_token: bool = False,
    ) -> HFBackend:
        """Wrap an already-loaded transformers causal LM (plain or a peft ``PeftModel``) without copying it.

        The backend scores whatever weights the model holds at call time, so a
        caller may edit them in place (or toggle a LoRA adapter) between calls.
        dtype and device are read from the model's parameters.

        Parameters
        ----------
        model : transformers.PreTrainedModel or peft.PeftModel
            A causal language model (its output head gives next-token logits).
        tokenizer : transformers tokenizer
            The model's tokenizer (checked against the embedding size).
        model_id : str, optional
            Recorded name; default the config's ``_name_or_path``.
        fingerprint : str, optional
            Store identity; default ``"in-memory:<model_id>"`` (the weights are
            not hashed: they may change between calls).

        Raises
        ------
        TypeError
            ``model`` is not a causal LM, or ``tokenizer`` is not a tokenizer.
        ValueError
            The tokenizer has ids beyond the model's embedding table.
        """
        check_causal_lm(model, tokenizer)
        self = InMemoryHFBackend.__new__(InMemoryHFBackend)
        param = next(iter(model.parameters()))
        # A PeftModel injects its adapter layers into the transformers model it wraps: score that model
        # (the engine reads ``model.base_model`` / the output head of a transformers causal LM);
        # ``peft_model.disable_adapter()`` still switches the injected layers off.
        self.peft_model = model if callable(getattr(model, "get_base_model", None)) else None
        self.model = model.get_base_model() if self.peft_model is not None else model
        self.tokenizer = tokenizer
        self.dtype = str(param.dtype).removeprefix("torch.")
        self.device = str(param.device)
        self.batch_size = int(batch_size)
        self.max_batch_tokens = int(max_batch_tokens)
        self.score_bounds: tuple[int, int] | None = None  # set by batch_size="auto" (see auto_batch_size)
        self._max_length = max_length
        self.add_bos_token = bool(add_bos_token)
        # prefix tree per call; no cache between calls unless a session is opened (weights may change between)
        self._init_prefix_cache(True, None)
        config = getattr(model, "config", None)
        self.model_id = model_id or str(getattr(config, "_name_or_path", "") or type(model).__name__)
        self.fingerprint = fingerprint or f"in-memory:{self.model_id}"
        return self


class InMemoryHFBackend(HFBackend):
    """:meth:`HFBackend.from_model`'s backend: scores the model as it is at each call.

    The engine's lean forward reads each projection's ``.weight``
    directly; a model whose layers are wrapped (peft adapter layers, hooks,
    accelerate's ``device_map`` dispatch) is scored with its own forward
    instead, so that the wrapper's effect (e.g. the LoRA delta) counts.
    """

    def loglikelihood(self, requests: Sequence[TokenRequest]) -> list[ChoiceResult]:
        if plain_modules(self.model):
            return super().loglikelihood(requests)
        with lora_folded(self.model) as folded:
            if folded:  # every wrapped module is a LoRA linear layer: its weights now hold W + BA
                return super().loglikelihood(requests)
        from sharpbench.models.hf.scoring import score_requests

        max_rows, max_tokens = self.score_bounds or (self.batch_size, self.max_batch_tokens)
        return score_requests(self.model, requests, max_rows=max_rows, max_tokens=max_tokens,
                              device=self.device, fast=False)

    def generate_iter(self, requests: Sequence[GenerationRequest], progress=None, *, batch_size: int | None = None):
        """As :meth:`HFBackend.generate_iter`, on the weights as they are now (LoRA folded, or the model's own forward)."""
        from sharpbench.models.hf.generate import generate_iter

        if plain_modules(self.model):
            yield from super().generate_iter(requests, progress, batch_size=batch_size)
            return
        with lora_folded(self.model) as folded:
            yield from generate_iter(
                self.model, self.tokenizer, requests, self.tok_encode, max_length=self.max_length, device=self.device,
                n_slots=batch_size or GEN_SLOTS, max_tokens=self.max_batch_tokens, max_rows=self.batch_size,
                cache=self._cache if folded else None, lean_ok=bool(folded) and self.prefix_tree, progress=progress,
                memory=free_memory(self.device) // 2,
            )


@contextmanager
def lora_folded(model: Any):
    """Fold active peft LoRA adapters into their layers' weights for the duration; yields False if it cannot.

    Each enabled LoRA linear layer gets a fresh weight ``W + sum(delta)`` (its
    own ``get_delta_weight``) and its adapter path is switched off, so both
    the lean forward (which reads ``.weight``) and the module's own forward
    compute ``(W + BA) x``; afterwards the original weight tensors (the same
    objects, bit for bit) and switches are put back.  Anything other than plain
    LoRA linear layers (DoRA, LoRA bias, embeddings, hooks, merged layers)
    yields False and leaves the model untouched.
    """
    import torch

    layers = []
    for m in model.modules():
        if hasattr(m, "_hf_hook") or m._forward_hooks or m._forward_pre_hooks:
            yield False
            return
        if not hasattr(m, "base_layer"):
            continue
        base = m.get_base_layer() if callable(getattr(m, "get_base_layer", None)) else None
        if (type(base) is not torch.nn.Linear or not callable(getattr(m, "get_delta_weight", None))
                or getattr(m, "merged", True) or getattr(m, "fan_in_fan_out", False)
                or any(getattr(m, "use_dora", {}).get(a) or getattr(m, "lora_bias", {}).get(a)
                       or a in getattr(m, "lora_variant", {}) for a in m.active_adapters)):
            yield False
            return
        layers.append((m, base))
    saved = []
    try:
        with torch.no_grad():
            for m, base in layers:
                if m.disable_adapters:
                    continue
                active = [a for a in m.active_adapters if a in m.lora_A]
                if not active:
                    continue
                weight = base.weight
                folded = weight.detach().clone()
                for a in active:
                    folded += m.get_delta_weight(a).to(folded.dtype)
                saved.append((m, base, weight))
                base.weight = torch.nn.Parameter(folded, requires_grad=False)
                m._disable_adapters = True
        yield True
    finally:
        for m, base, weight in saved:
            base.weight = weight
            m._disable_adapters = False


def plain_modules(model: Any) -> bool:
    """No module of ``model`` is wrapped: no peft adapter layer, forward hook or accelerate dispatch hook."""
    for m in model.modules():
        if hasattr(m, "base_layer") or hasattr(m, "_hf_hook") or m._forward_hooks or m._forward_pre_hooks:
            return False
    return True


def check_causal_lm(model: Any, tokenizer: Any) -> None:
    """Raise a one-line error when ``model`` is not a causal LM or ``tokenizer`` does not fit it."""
    import torch

    if not isinstance(model, torch.nn.Module) or getattr(model, "config", None) is None:
        raise TypeError(f"expected a transformers model (torch.nn.Module with a config), got {type(model).__name__}")
    config = model.config
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if getattr(config, "is_encoder_decoder", False) or head is None:
        raise TypeError(
            f"{type(model).__name__} is not a causal language model (no next-token head); "
            "load it with transformers.AutoModelForCausalLM"
        )
    if not callable(getattr(tokenizer, "encode", None)) or not hasattr(tokenizer, "decode"):
        raise TypeError(f"expected a transformers tokenizer, got {type(tokenizer).__name__}")
    n_embed = int(model.get_input_embeddings().weight.shape[0])
    n_tok = len(tokenizer)
    if n_tok > n_embed:
        raise ValueError(
            f"tokenizer mismatch: the tokenizer has {n_tok} tokens but the model embeds only {n_embed} "
            f"(is it the tokenizer of another model?)"
        )
