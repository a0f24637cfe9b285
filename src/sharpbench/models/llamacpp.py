"""In-process llama.cpp backend (llama-cpp-python) for GGUF files.

The model is loaded with ``logits_all=True`` so that every evaluated
position keeps its logits.  Requests that share a context are scored from
one evaluation of it: the context is evaluated once, then each continuation
(all but its last token, which is never an input) is evaluated on top of the
context's KV cache and rolled back.

llama.cpp computes in the GGUF file's own weight types (dot products of
quantized weights with 8-bit quantized activations), so logliks differ from
the ``hf`` backend's dequantized float32 forward by quantization noise; the
store records the dtype as ``"gguf"``.

Generation (:meth:`LlamaCppBackend.generate`) runs its own token loop on
llama.cpp's samplers, one request at a time, with lm-eval 0.4.13's
``generate_until`` semantics (see :mod:`sharpbench.models.gen_text`).

Install with ``pip install "sharpbench[llamacpp]"`` (llama-cpp-python
compiles llama.cpp; a few minutes on two cores).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from sharpbench.models.base import BackendInfo, ModelIdentity, constructor_options
from sharpbench.models.errors import BackendError, UnknownModelError
from sharpbench.models.fingerprint import weights_fingerprint
import sharpbench.models.packaged as packaged
from sharpbench.models.packaged import PACKAGED_MODELS
from sharpbench.models.resolve import default_threads
from sharpbench.models.gen_text import cut_at_stop, in_request_order, prompt_window
from sharpbench.results import ChoiceResult, Generation, GenerationRequest, TokenRequest

_DEFAULT_N_CTX = 2048  # lm-eval's default window; the logits buffer is n_ctx x vocab floats


def _require_llama_cpp() -> Any:
    try:
        import llama_cpp  # optional dependency (the llamacpp extra)
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise BackendError(
            'the llamacpp backend needs llama-cpp-python: pip install "sharpbench[llamacpp]" '
            "(it compiles llama.cpp, a few minutes)"
        ) from err
    return llama_cpp


def resolve_gguf(name_or_path: str, *, filename: str | None = None) -> Path | None:
    """The local GGUF file for ``name_or_path``, ``None`` for a hub repo id.

    Packaged short names give their verified (joined) GGUF; a ``.gguf`` path
    is used as is; a directory must hold exactly one ``.gguf`` (or name one
    with ``filename``).

    Raises
    ------
    UnknownModelError
        A path that is neither, or a directory without a unique GGUF.
    """
    key = name_or_path.strip()
    if key.lower() in PACKAGED_MODELS:
        return packaged.gguf_path(key.lower())
    path = Path(key).expanduser()
    if path.is_file():
        if path.suffix != ".gguf":
            raise UnknownModelError(f"{key!r} is not a .gguf file; the llamacpp backend loads GGUF files only")
        return path
    if path.is_dir():
        found = [path / filename] if filename else sorted(path.glob("*.gguf"))
        if len(found) != 1 or not found[0].is_file():
            raise UnknownModelError(
                f"{key!r} holds {len(found)} .gguf files; pass one file (or filename=NAME)"
            )
        return found[0]
    if "/" in key and not key.startswith((".", "/", "~")):
        return None
    raise UnknownModelError(f"{key!r} is not a packaged model, a .gguf file or a hub repo id")


class LlamaCppBackend:
    """Score token requests with llama.cpp in this process.

    Parameters
    ----------
    model_id : str
        What the user asked for (recorded).
    path : Path, optional
        The GGUF file; ``None`` downloads ``filename`` from hub repo ``model_id``.
    n_ctx : int, optional
        Context window (also the truncation length); default
        ``min(training context, 2048)``.
    n_threads : int, optional
        CPU threads (default: the hf backend's rule, :func:`sharpbench.models.default_threads`:
        ``$OMP_NUM_THREADS`` when set, else torch's default).
    n_gpu_layers : int
        Layers offloaded to a GPU build of llama.cpp (``-1``: all).
    fingerprint : str, optional
        Precomputed weight fingerprint.
    """

    name = "llamacpp"
    dtype = "gguf"

    def __init__(
        self,
        model_id: str,
        path: Path | None,
        *,
        filename: str | None = None,
        n_ctx: int | None = None,
        n_threads: int | None = None,
        n_batch: int = 512,
        n_gpu_layers: int = 0,
        fingerprint: str | None = None,
        seed: int = 0,
    ) -> None:
        llama_cpp = _require_llama_cpp()
        if n_threads is None:
            n_threads = default_threads()
        threads = int(n_threads)
        opts = dict(logits_all=True, n_batch=n_batch, n_ubatch=n_batch, n_threads=threads,
                    n_threads_batch=threads, n_gpu_layers=n_gpu_layers, seed=seed, verbose=False)
        try:
            if path is None:
                self.llm = llama_cpp.Llama.from_pretrained(model_id, filename=filename, n_ctx=n_ctx or 0, **opts)
            else:
                self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx or _DEFAULT_N_CTX, **opts)
        except (ValueError, RuntimeError, OSError) as err:
            raise BackendError(f"llama.cpp could not load {model_id!r} ({path}): {err}") from err
        train = int(self.llm._model.n_ctx_train())
        if n_ctx is None and train < self.llm.n_ctx():  # never run past the trained window
            self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=train, **opts)
        self.model_id = model_id
        self.path = path
        if fingerprint is not None:
            self.fingerprint = fingerprint
        else:
            self.fingerprint = weights_fingerprint(path) if path is not None else f"{model_id}/{filename}"
        self._bos = int(self.llm.token_bos())
        self._eos = int(self.llm.token_eos())
        self._add_bos = bool(self.llm._model.add_bos_token()) and self._bos >= 0
        self._ctx_cached: tuple[int, ...] | None = None  # context whose evaluation the KV cache holds
        self._kv_prompt: tuple[int, ...] = ()  # tokens the KV cache holds as a whole evaluation from position 0

    @property
    def max_length(self) -> int:
        # llama.cpp pads the context it allocates (to 256 tokens) and reports the padded size, while
        # llama-cpp-python sizes its token and logits buffers by the n_ctx asked for: the smaller one.
        return min(int(self.llm.n_ctx()), len(self.llm.input_ids))

    @property
    def prefix_token_id(self) -> int:
        return self._bos if self._bos >= 0 else self._eos

    def tok_encode(self, text: str, *, add_special_tokens: bool | None = None) -> list[int]:
        """llama.cpp's tokenizer with lm-eval ``HFLM.tok_encode`` semantics.

        ``add_special_tokens=None`` adds BOS when the GGUF says the model wants
        one (``tokenizer.ggml.add_bos_token``), unless the text already starts
        with it.  Special-token text in ``text`` (a chat template's
        ``<|im_start|>``) is parsed as that special token, as the HF tokenizers
        lm-eval uses do.
        """
        if add_special_tokens is None:
            bos_text = self.llm.detokenize([self.prefix_token_id], special=True).decode("utf-8", "replace")
            add = self._add_bos and not (bos_text and text.startswith(bos_text))
        else:
            add = bool(add_special_tokens) and self._add_bos
        return list(self.llm.tokenize(text.encode("utf-8"), add_bos=add, special=True))

    def loglikelihood(self, requests: Sequence[TokenRequest]) -> list[ChoiceResult]:
        """Score requests; those with one context share its evaluation (and any cached prefix)."""
        out: list[ChoiceResult | None] = [None] * len(requests)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, req in enumerate(requests):
            if not req.context or not req.continuation:
                raise ValueError(f"request {i} has an empty context or continuation")
            groups.setdefault(tuple(req.context), []).append(i)
        for ctx, idxs in groups.items():
            self._eval_context(ctx)
            for i in idxs:
                out[i] = self._score_continuation(ctx, requests[i].continuation)
        return out  # type: ignore[return-value]

    def generate(
        self, requests: Sequence[GenerationRequest], progress: Callable[[int], None] | None = None
    ) -> list[Generation]:
        """Generate for each request, in request order (lm-eval 0.4.13 ``generate_until`` semantics).

        The prompt is tokenized as contexts are (:meth:`tok_encode`) and
        left-truncated to ``max_length - max_gen_toks`` tokens, then
        evaluated as a whole evaluation from position 0 would, reusing only
        whole ``n_batch`` batches of a shared prefix the KV cache holds (see
        :meth:`_eval_prompt`: a greedy text never depends on the request
        before it; a few-shot prefix longer than ``n_batch`` is computed
        once; requests run in token order, so prompts sharing a prefix follow
        one another).  Each step samples one token with llama.cpp's sampler
        (greedy: argmax; sampled: top-k, temperature, top-p in the order
        transformers applies them, then a draw seeded with the request's
        ``seed``, so a seeded request reproduces whatever runs before it).
        It stops at an end-of-generation token (``"eos"``, counted in
        ``n_tokens``, not in the text), when a stop string (or, as lm-eval
        adds it, the end-of-text token's text) appears in the decoded text
        (``"stop"``; the text is cut before the earliest one) or after
        ``max_gen_toks`` tokens (``"length"``).  ``progress(n)`` gets the new
        token counts.
        """
        return in_request_order(self.generate_iter(requests, progress), len(requests))

    def generate_iter(
        self, requests: Sequence[GenerationRequest], progress: Callable[[int], None] | None = None, *,
        batch_size: int | None = None,
    ) -> Iterator[tuple[int, Generation, float]]:
        """Yield ``(request index, Generation, seconds)`` as each request finishes (see :meth:`generate`).

        ``batch_size`` is ignored: llama.cpp generates one sequence at a time here.
        """
        prompts = [prompt_window(self.tok_encode(r.prompt), self.max_length, r.max_gen_toks) or [self.prefix_token_id]
                   for r in requests]
        # in token order, so that prompts sharing a prefix follow one another (the results do not depend on it)
        for i in sorted(range(len(requests)), key=lambda i: prompts[i]):
            t0 = time.perf_counter()
            gen = self._generate_one(requests[i], prompts[i], progress)
            yield i, gen, time.perf_counter() - t0

    # -------------------------------------------------------------- internals
    def _generate_one(
        self, req: GenerationRequest, ids: list[int], progress: Callable[[int], None] | None
    ) -> Generation:
        llama_cpp = _require_llama_cpp()
        from llama_cpp import _internals  # llama-cpp-python's sampler wrapper

        llm = self.llm
        sampler = _internals.LlamaSampler()
        try:
            if req.do_sample and req.temperature > 0:
                if req.top_k > 0:
                    sampler.add_top_k(int(req.top_k))
                sampler.add_temp(float(req.temperature))
                if req.top_p < 1.0:
                    sampler.add_top_p(float(req.top_p), 1)
                sampler.add_dist(llama_cpp.LLAMA_DEFAULT_SEED if req.seed is None else int(req.seed) & 0xFFFFFFFF)
            else:
                sampler.add_greedy()
            self._eval_prompt(ids)
            vocab = llm._model.vocab
            stops = [s for s in req.until if s]
            eos_text = llm.detokenize([self._eos], special=True).decode("utf-8", "replace") if self._eos >= 0 else ""
            if eos_text and eos_text not in stops:  # lm-eval adds the end-of-text string to the stops
                stops.append(eos_text)
            gen: list[int] = []
            pieces: list[bytes] = []  # each token's text (llama.cpp decodes a token list piece by piece)
            reason, reported = "length", 0
            while len(gen) < req.max_gen_toks:
                tok = int(sampler.sample(llm._ctx, -1))
                gen.append(tok)
                if llama_cpp.llama_vocab_is_eog(vocab, tok):
                    reason = "eos"
                    break
                pieces.append(llm.detokenize([tok], special=False))
                if stops and cut_at_stop(_utf8(pieces), stops)[1]:
                    reason = "stop"
                    break
                if len(gen) < req.max_gen_toks:
                    llm.eval([tok])
                if progress is not None and len(gen) - reported >= 16:
                    progress(len(gen) - reported)
                    reported = len(gen)
        finally:
            sampler.close()
        if progress is not None and len(gen) > reported:
            progress(len(gen) - reported)
        text, _found = cut_at_stop(_utf8(pieces), stops)  # the end-of-generation token has no piece
        return Generation(text=text, n_tokens=len(gen), stop_reason=reason)

    def _eval_prompt(self, ids: list[int]) -> None:
        """Evaluate a generation prompt, reusing whole ``n_batch`` chunks of a prefix the cache already holds.

        ``llm.eval`` cuts a prompt into ``n_batch``-token batches from position
        0, and a batch's logits and keys depend only on the tokens up to its
        end; so the KV of the leading whole batches a previous prompt shares
        with this one is exactly what evaluating this prompt afresh computes,
        and the text cannot depend on the request before it.  At least the
        last batch is always evaluated (it gives the first token's logits).
        """
        llm = self.llm
        self._ctx_cached = None  # the KV cache is about to hold this prompt, not a scored context
        common = 0
        for a, b in zip(self._kv_prompt, ids):
            if a != b:
                break
            common += 1
        keep = (min(common, len(ids) - 1) // llm.n_batch) * llm.n_batch
        if getattr(llm, "_is_recurrent", False) or getattr(llm, "_is_hybrid", False):
            keep = 0  # a recurrent state cannot be cut back to a prefix
        self._kv_prompt = ()
        llm.n_tokens = keep
        llm.eval(ids[keep:])
        self._kv_prompt = tuple(ids)

    def _eval_context(self, ctx: tuple[int, ...]) -> None:
        """Evaluate ``ctx`` from position 0, unless it is exactly what the cache holds.

        llama.cpp's kernels depend on how many tokens a batch has, so a
        context evaluated in pieces (reusing a shared prefix) gives logits
        that differ by ~0.05 nats from one evaluated whole; a fresh whole
        evaluation keeps scores independent of request order.
        """
        llm = self.llm
        if len(ctx) > self.max_length:
            raise BackendError(f"context of {len(ctx)} tokens exceeds n_ctx={self.max_length}")
        if self._ctx_cached == ctx:
            return
        self._ctx_cached = None
        self._kv_prompt = ()
        llm.n_tokens = 0
        llm.eval(list(ctx))
        self._ctx_cached = self._kv_prompt = ctx

    def _score_continuation(self, ctx: tuple[int, ...], cont: tuple[int, ...]) -> ChoiceResult:
        import numpy as np  # start-up time: the backend registry (and so the CLI's help) imports this module

        llm = self.llm
        n_ctx = len(ctx)
        if n_ctx + len(cont) - 1 > self.max_length:
            raise BackendError(f"request of {n_ctx + len(cont)} tokens exceeds n_ctx={self.max_length}")
        llm.n_tokens = n_ctx
        if len(cont) > 1:
            llm.eval(list(cont[:-1]))
        rows = np.asarray(llm.scores[n_ctx - 1 : n_ctx - 1 + len(cont)], dtype=np.float64)
        if not np.isfinite(rows).all():
            raise BackendError("llama.cpp returned non-finite logits")
        target = np.asarray(cont)
        mx = rows.max(axis=1)
        lse = mx + np.log(np.exp(rows - mx[:, None]).sum(axis=1))
        logp = rows[np.arange(len(cont)), target] - lse
        greedy = bool((rows.argmax(axis=1) == target).all())
        llm.n_tokens = n_ctx  # roll back: the context stays cached for the next choice
        return ChoiceResult(loglik=float(logp.sum()), is_greedy=greedy, n_tokens=len(cont))

    def __repr__(self) -> str:
        return f"LlamaCppBackend({self.model_id!r}, n_ctx={self.max_length})"


def _utf8(pieces: list[bytes]) -> str:
    """Generated text as lm-eval decodes it: special tokens skipped (empty pieces), invalid UTF-8 replaced."""
    return b"".join(pieces).decode("utf-8", errors="replace")


def load_llamacpp(name_or_path: str, *, dtype: str = "float32", device: str | None = None, **kw: Any) -> LlamaCppBackend:
    """Factory registered as backend ``"llamacpp"``.

    ``dtype`` must stay at its default: llama.cpp computes in the file's own
    types.  ``device="cuda"`` offloads all layers (needs a CUDA build).
    """
    if dtype not in BACKEND.dtypes:
        raise ValueError(
            f"--dtype {dtype} does not apply to the llamacpp backend: it computes in the GGUF file's "
            "own weight types (pick a GGUF of another type instead)"
        )
    filename = kw.pop("filename", None)
    path = resolve_gguf(name_or_path, filename=filename)
    if device == "cuda":
        kw.setdefault("n_gpu_layers", -1)
    kw.pop("batch_size", None)
    kw.pop("max_length", None) if kw.get("max_length") is None else kw.setdefault("n_ctx", kw.pop("max_length"))
    return LlamaCppBackend(name_or_path, path, filename=filename, **kw)


def identify_llamacpp(name_or_path: str, *, dtype: str = "float32", **kw: Any) -> ModelIdentity | None:
    """The identity :func:`load_llamacpp` would report (the GGUF's fingerprint); ``None`` for a hub repo."""
    path = resolve_gguf(name_or_path, filename=kw.get("filename"))
    if path is None:
        return None
    return ModelIdentity(name_or_path, weights_fingerprint(path), "llamacpp", BACKEND.store_dtype(dtype))


BACKEND = BackendInfo(
    name="llamacpp", load=load_llamacpp, identify=identify_llamacpp, dtypes=("float32", "gguf"), stored_dtype="gguf",
    options=lambda: constructor_options(LlamaCppBackend, {"model_id", "path"}, {"batch_size", "max_length"}),
    summary="llama-cpp-python on a GGUF file, in this process",
)
