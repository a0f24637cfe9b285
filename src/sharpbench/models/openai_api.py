"""OpenAI-compatible completions servers (vLLM, llama.cpp servers) as a scoring backend.

Each request is sent as one ``/completions`` call that echoes the prompt
with per-token logprobs (``echo=True, logprobs=1, max_tokens=1``), or, for
vLLM, with ``prompt_logprobs=1``.  The engine tokenizes locally (lm-eval's
context/continuation split needs token counts), so the server must see
exactly the same tokens:

* ``prompt_format="tokens"`` sends token ids (vLLM accepts them);
* ``"text"`` sends the decoded text and checks that the server's echoed
  tokens are the local ones, one for one (same count, same strings, and no
  extra BOS); any difference raises :class:`TokenAlignmentError` naming the
  first differing position, instead of scoring the wrong positions;
* ``"auto"`` (default) tries token ids once and falls back to text when the
  server rejects them.

Before the first request the backend probes the server with a repeated
sentence: echoed logprobs must be aligned with the tokens they score (the
copied repeat is predictable only at the right offset).  Servers that
report each token's logprob one position late (llama-cpp-python's echo
for models without a BOS token) fail the probe with a clear error.

Requests run ``max_concurrency`` at a time; 429 / 5xx / connection errors /
timeouts are retried with exponential backoff (``Retry-After`` honoured);
after ``max_retries`` the batch fails with :class:`ServerError` and the
pipeline keeps every item already stored, so rerunning resumes.  The API
key is read from the environment variable named by ``api_key_env`` at
request time and never stored.

Generation (:meth:`OpenAIBackend.generate`) sends what lm-eval 0.4.13's
``local-completions`` / ``local-chat-completions`` send: ``/completions``
with the prompt, ``max_tokens``, ``temperature`` (0 for greedy), ``stop``
(the request's stop strings and the tokenizer's end-of-text string) and
``seed`` (plus ``top_p`` and ``top_k`` when sampling with them), or
``/chat/completions`` with the request's ``messages``.  Servers differ in
how exactly they honour stop strings, so the text is also cut client-side
before the earliest stop string.
"""

from __future__ import annotations

import json
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from sharpbench.models.base import BackendInfo, ModelIdentity, constructor_options
from sharpbench.models.errors import BackendError, ServerError, TokenAlignmentError
from sharpbench.models.gen_text import cut_at_stop, in_request_order, prompt_window
from sharpbench.models.hf import LmEvalTokenization
from sharpbench.models.resolve import resolve_source
from sharpbench.results import ChoiceResult, Generation, GenerationRequest, TokenRequest

_RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_PROBE = "The quick brown fox jumps over the lazy dog near the river bank. " * 3


def served_fingerprint(model: str, tokenizer: str | None = None) -> str:
    """The store's fingerprint of a served model: its served name (the server owns the weights)."""
    return f"openai:{model}"


class OpenAIBackend(LmEvalTokenization):
    """Score token requests on an OpenAI-compatible completions endpoint.

    Parameters
    ----------
    model_id : str
        Served model name (sent as ``model``; also the store's model id).
    base_url : str
        E.g. ``http://127.0.0.1:8000/v1`` (default: ``$OPENAI_BASE_URL``).
    tokenizer : str, optional
        Local tokenizer matching the server's: a packaged model name, a
        checkpoint directory or hub id (default: ``model_id``).
    api_key_env : str
        Environment variable holding the API key (optional for local servers).
    max_concurrency : int
        Requests in flight at once.
    timeout, max_retries, backoff : float, int, float
        Per-request timeout (s), retries of a transient failure, first backoff (s).
    prompt_format : {"auto", "tokens", "text"}
    logprobs_field : {"echo", "prompt_logprobs"}
        OpenAI's ``echo`` + ``logprobs`` or vLLM's ``prompt_logprobs``.
    max_length : int
        Context window used for left truncation (default 2048).
    add_bos_token : bool
        Prepend BOS to every context (for a server that adds BOS itself).
    tree_order : bool
        Have the runner send items in prefix-tree order, so that requests
        sharing a few-shot prefix reach the server one after another and its
        prefix cache (vLLM APC, llama.cpp's slot) can serve the shared part
        (``benchmarks/server_prefix_order.py`` measures it).
    chat : {"auto", True, False}
        Generation endpoint: ``"auto"`` sends a request that carries chat
        ``messages`` to ``/chat/completions`` (the server applies its own
        template) and a plain prompt to ``/completions``; ``False`` always
        sends the rendered prompt to ``/completions``; ``True`` always uses
        ``/chat/completions`` (a plain prompt goes as one user message).
    gen_extra : dict or JSON str, optional
        Fields added to every generation request body, for server-specific
        sampling settings lm-eval does not send (``{"repeat_penalty": 1.0}``:
        llama-cpp-python's server otherwise applies its default 1.1 repeat
        penalty even to greedy decoding).
    """

    name = "openai"
    dtype = "server"

    def __init__(
        self,
        model_id: str,
        *,
        base_url: str | None = None,
        tokenizer: str | None = None,
        api_key_env: str = "OPENAI_API_KEY",
        max_concurrency: int = 4,
        timeout: float = 120.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        prompt_format: str = "auto",
        logprobs_field: str = "echo",
        max_length: int | None = None,
        fingerprint: str | None = None,
        probe: bool = True,
        add_bos_token: bool = False,
        tree_order: bool = True,
        chat: bool | str = "auto",
        gen_extra: dict[str, Any] | str | None = None,
    ) -> None:
        try:
            import httpx  # optional dependency (the openai extra)
        except ImportError:
            raise BackendError(
                'the openai backend needs httpx, which this install lacks: pip install "sharpbench[openai]"'
            ) from None

        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise BackendError("the openai backend needs base_url=URL (model arg) or $OPENAI_BASE_URL")
        if prompt_format not in ("auto", "tokens", "text"):
            raise ValueError(f"prompt_format must be auto, tokens or text, got {prompt_format!r}")
        if logprobs_field not in ("echo", "prompt_logprobs"):
            raise ValueError(f"logprobs_field must be echo or prompt_logprobs, got {logprobs_field!r}")
        self.model_id = model_id
        self.base_url = base_url.rstrip("/")
        self.fingerprint = fingerprint or served_fingerprint(model_id, tokenizer)
        self.api_key_env = api_key_env
        self.max_concurrency = max(1, int(max_concurrency))
        self.max_retries = int(max_retries)
        self.backoff = float(backoff)
        self.prompt_format = prompt_format
        self.logprobs_field = logprobs_field
        self._max_length = int(max_length or 2048)
        self._probe_pending = bool(probe)
        self.add_bos_token = bool(add_bos_token)
        self.tree_order = bool(tree_order)  # the runner sends items sharing a prefix one after another
        if isinstance(chat, str) and chat.lower() in ("true", "false"):
            chat = chat.lower() == "true"
        if chat not in ("auto", True, False):
            raise ValueError(f"chat must be auto, true or false, got {chat!r}")
        self.chat = chat
        if isinstance(gen_extra, str):
            try:
                gen_extra = json.loads(gen_extra)
            except json.JSONDecodeError as err:
                raise ValueError(f"gen_extra must be a JSON object, got {gen_extra!r} ({err})") from None
        if gen_extra is not None and not isinstance(gen_extra, dict):
            raise ValueError(f"gen_extra must be a JSON object, got {gen_extra!r}")
        self.gen_extra: dict[str, Any] = dict(gen_extra or {})
        self._lock = threading.Lock()
        self._server_adds_bos: bool | None = None
        self._client = httpx.Client(base_url=self.base_url, timeout=timeout)
        self.tokenizer = _load_tokenizer(tokenizer or model_id)
        self._pieces: dict[int, str] = {}  # token id -> decoded text, for the alignment checks

    # ---------------------------------------------------------- tokenization
    @property
    def max_length(self) -> int:
        return self._max_length

    # --------------------------------------------------------------- scoring
    def loglikelihood(self, requests: Sequence[TokenRequest]) -> list[ChoiceResult]:
        """Score each request with one completions call, ``max_concurrency`` at a time."""
        if self._probe_pending:
            self.check_alignment()
        if not requests:
            return []
        with ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(requests))) as pool:
            return list(pool.map(self._score_one, requests))

    # ------------------------------------------------------------- generation
    @property
    def generation_options(self) -> dict[str, Any]:
        """The options that change generated text beyond the request (for a run key): ``chat``, ``gen_extra``."""
        return {"chat": self.chat, "gen_extra": dict(self.gen_extra)}

    def generate(
        self, requests: Sequence[GenerationRequest], progress: Callable[[int], None] | None = None
    ) -> list[Generation]:
        """Generate for each request with one server call, ``max_concurrency`` at a time; results in request order.

        ``/completions`` gets the prompt as token ids or text as the loglik
        path sends it (``prompt_format``; ``"auto"`` tries ids once): the local
        tokenization (lm-eval's, ``add_bos_token`` included) left-truncated to
        ``max_length - max_gen_toks`` tokens; a text prompt that needed no
        truncation goes as the request's own string.  ``/chat/completions``
        (see ``chat``) gets the messages untruncated, as lm-eval sends them.

        The text is cut before the earliest stop string even where the
        server did not stop there.  ``stop_reason``: ``"length"`` when the
        server says so (and no stop string is in the text), ``"stop"`` when a
        stop string was found or the server reports one (vLLM's
        ``stop_reason``, llama.cpp's ``stop_type``), ``"eos"`` when it reports
        the end-of-text token or no stop strings were asked for; a server that
        only says ``finish_reason="stop"`` after a request with stop strings
        cannot tell the two apart: ``"stop"``.  ``n_tokens`` is the server's
        ``usage.completion_tokens`` (the local token count of the text when it
        reports none).  Transport failures, 429 and 5xx are retried as for
        loglik; an answer without choices or text raises :class:`ServerError`.
        """
        return in_request_order(self.generate_iter(requests, progress), len(requests))

    def generate_iter(
        self, requests: Sequence[GenerationRequest], progress: Callable[[int], None] | None = None, *,
        batch_size: int | None = None,
    ) -> Iterator[tuple[int, Generation, float]]:
        """Yield ``(request index, Generation, seconds)`` as each server call returns (see :meth:`generate`).

        ``max_concurrency`` calls are in flight; ``seconds`` is the wall time
        since the previous yield (the shares add up to the wall time).  On the
        first failure the calls not yet sent are cancelled and the error
        raised.  ``batch_size`` is ignored.
        """
        if not requests:
            return
        pool = ThreadPoolExecutor(max_workers=min(self.max_concurrency, len(requests)))
        try:
            futures = {pool.submit(self._generate_one, req): i for i, req in enumerate(requests)}
            last = time.perf_counter()
            for fut in as_completed(futures):
                gen = fut.result()
                if progress is not None:
                    progress(gen.n_tokens)
                now = time.perf_counter()
                yield futures[fut], gen, now - last
                last = now
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _generate_one(self, req: GenerationRequest) -> Generation:
        stops = [s for s in req.until if s]
        asked = bool(stops)
        eos = self.tokenizer.eos_token
        if eos and eos not in stops:  # lm-eval's handle_stop_sequences: the end-of-text string stops too
            stops.append(eos)
        sample = req.do_sample and req.temperature > 0
        body: dict[str, Any] = {"max_tokens": req.max_gen_toks, "temperature": float(req.temperature) if sample else 0.0}
        if stops:
            body["stop"] = stops
        if sample:
            if req.top_p < 1.0:
                body["top_p"] = float(req.top_p)
            if req.top_k > 0:
                body["top_k"] = int(req.top_k)
        if req.seed is not None:
            body["seed"] = int(req.seed)
        body.update(self.gen_extra)
        use_chat = self.chat is True or (self.chat == "auto" and req.messages is not None)
        if use_chat:
            messages = req.messages if req.messages is not None else (("user", req.prompt),)
            if stops:
                body["stop"] = stops[:4]  # lm-eval's chat payload (OpenAI's limit); the rest are cut client-side
            data = self._post({**body, "messages": [{"role": r, "content": c} for r, c in messages]},
                              path="/chat/completions")
            choice = self._first_choice(data, "/chat/completions")
            message = choice.get("message")
            text = message.get("content") if isinstance(message, dict) else None
        else:
            data = self._complete(req, body)
            choice = self._first_choice(data, "/completions")
            text = choice.get("text")
        if not isinstance(text, str):
            raise ServerError(f"{self.base_url} answered a generation request without text (choice: "
                              f"{json.dumps(choice)[:300]})")
        text, found = cut_at_stop(text, stops)
        usage = data.get("usage") or {}
        n_tokens = usage.get("completion_tokens")
        if not isinstance(n_tokens, int):
            n_tokens = len(self.tok_encode(text, add_special_tokens=False))
        return Generation(text=text, n_tokens=n_tokens, stop_reason=_stop_reason(choice, found, asked))

    def _probe_tokens(self, payload: dict[str, Any]) -> dict | None:
        """Send ``payload`` (prompt as token ids) once under ``prompt_format="auto"``; settle the format.

        No retries of a rejection: servers answer a prompt they cannot parse with 400/422 (or 500,
        llama-cpp-python); then it is text from here on and ``None`` is returned.
        """
        try:
            data = self._post(payload, retry_status=False)
        except ServerError as err:
            if err.status is None:
                raise
            with self._lock:
                self.prompt_format = "text"
            return None
        with self._lock:
            self.prompt_format = "tokens"
        return data

    def _complete(self, req: GenerationRequest, body: dict[str, Any]) -> dict:
        """One ``/completions`` call with the prompt as token ids or text (see :meth:`generate`)."""
        full = self.tok_encode(req.prompt)
        ids = prompt_window(full, self.max_length, req.max_gen_toks) or [self.prefix_token_id]
        if self.prompt_format == "auto":
            data = self._probe_tokens({**body, "prompt": ids})
            if data is not None:
                return data
        if self.prompt_format == "tokens":
            return self._post({**body, "prompt": ids})
        if len(ids) == len(full):
            return self._post({**body, "prompt": req.prompt})
        bos = self.tokenizer.bos_token_id
        text_ids = ids[1:] if bos is not None and ids and ids[0] == bos else ids  # the server adds its own BOS
        return self._post({**body, "prompt": self.tokenizer.decode(text_ids)})

    def _first_choice(self, data: Any, path: str) -> dict:
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise ServerError(f"{self.base_url}{path} answered without choices (got {json.dumps(data)[:300]}); "
                              "no generated text to score")
        return choices[0]

    # ---------------------------------------------------------------- loglik
    def check_alignment(self) -> None:
        """Probe once that echoed logprobs score the token they are reported with.

        In a sentence repeated three times, a model predicts the third copy's
        tokens well.  With correctly aligned logprobs the top alternative at
        position ``j`` is usually token ``j`` itself; with logprobs shifted
        by one it is usually token ``j + 1``.

        Raises
        ------
        TokenAlignmentError
            When the shifted reading wins clearly.
        """
        ids = self.tok_encode(_PROBE)
        steps = self._echo(ids)
        third = range(2 * len(ids) // 3, len(steps) - 1)
        aligned = sum(steps[j][2] == steps[j][0] for j in third)
        shifted = sum(steps[j][2] == steps[j + 1][0] for j in third)
        self._probe_pending = False
        if shifted > max(2 * aligned, 3):
            raise TokenAlignmentError(
                f"{self.base_url} reports each prompt token's logprob one position late (probe: the top "
                f"alternative matched the NEXT token {shifted} times, the token itself {aligned} times). "
                "llama-cpp-python's server does this for models without a BOS token "
                "(abetlen/llama-cpp-python#1983); its prompt logprobs cannot be used for scoring. Use "
                "the in-process llamacpp backend or a server with correct echo/prompt_logprobs (vLLM)."
            )

    def _score_one(self, req: TokenRequest) -> ChoiceResult:
        ids = list(req.context) + list(req.continuation)
        steps = self._echo(ids)
        n_ctx = len(req.context)
        total, greedy = 0.0, True
        for j in range(n_ctx, len(ids)):
            _tok, lp, top = steps[j]
            if lp is None:
                raise ServerError(f"{self.base_url} returned no logprob for prompt position {j}")
            total += lp
            greedy = greedy and top is not None and top == steps[j][0]
        return ChoiceResult(loglik=total, is_greedy=greedy, n_tokens=len(req.continuation))

    def _echo(self, ids: list[int]) -> list[tuple[str, float | None, str | None]]:
        """(token string, logprob, top-1 token string) for every position of ``ids``.

        Position 0 (and a leading BOS the server adds itself) has no logprob.
        """
        if self.logprobs_field == "prompt_logprobs":
            return self._prompt_logprobs(ids)
        fmt = self.prompt_format
        if fmt == "tokens":
            return self._align(ids, self._post({"prompt": ids, "echo": True, "logprobs": 1}), offset=0)
        if fmt == "auto":
            data = self._probe_tokens({"prompt": ids, "echo": True, "logprobs": 1})
            if data is not None:
                return self._align(ids, data, offset=0)
        return self._echo_text(ids)

    def _echo_text(self, ids: list[int]) -> list[tuple[str, float | None, str | None]]:
        bos = self.tokenizer.bos_token_id
        starts_bos = bos is not None and ids and ids[0] == bos
        if starts_bos and self._server_adds_bos is not False:
            # Let a server that adds BOS itself supply it (otherwise it would be doubled).
            data = self._post({"prompt": self.tokenizer.decode(ids[1:]), "echo": True, "logprobs": 1})
            n_prompt = (data.get("usage") or {}).get("prompt_tokens")
            if n_prompt == len(ids) or self._server_adds_bos:
                self._server_adds_bos = True
                return self._align(ids, data, offset=1)
            self._server_adds_bos = False
        data = self._post({"prompt": self.tokenizer.decode(ids), "echo": True, "logprobs": 1})
        n_prompt = (data.get("usage") or {}).get("prompt_tokens")
        if n_prompt is not None and n_prompt > len(ids):
            raise TokenAlignmentError(
                f"{self.base_url} turned a {len(ids)}-token prompt into {n_prompt} tokens (it adds a BOS "
                "the local tokenizer does not): the contexts would differ. Serve the model with a "
                "tokenizer config that matches the local one, or pass tokenizer=... matching the server."
            )
        return self._align(ids, data, offset=0)

    def _align(self, ids: list[int], data: dict, *, offset: int) -> list[tuple[str, float | None, str | None]]:
        """Map the echoed entries onto ``ids``; ``offset`` leading ids are absent from the echo."""
        try:
            lp = data["choices"][0]["logprobs"]
            tokens, lps, tops = lp["tokens"], lp["token_logprobs"], lp.get("top_logprobs")
        except (KeyError, IndexError, TypeError) as err:
            raise ServerError(f"{self.base_url} answered without echoed logprobs ({err!r}); "
                              "it must support echo=True with logprobs") from err
        n_gen = int((data.get("usage") or {}).get("completion_tokens", 1) or 0)
        n_echo = len(tokens) - n_gen
        want = len(ids) - offset
        if n_echo != want and len(tokens) != want:
            raise TokenAlignmentError(
                f"{self.base_url} echoed {n_echo} prompt tokens where the local tokenizer has {want}: "
                "the server tokenizes differently; pass tokenizer=... matching the server's model"
            )
        steps: list[tuple[str, float | None, str | None]] = [("", None, None)] * offset
        for k in range(want):
            local = self._piece(ids[offset + k])
            served = tokens[k]
            if served != local and "\ufffd" not in local and served:
                raise TokenAlignmentError(
                    f"{self.base_url}: prompt token {offset + k} is {served!r} on the server but {local!r} "
                    "locally; pass tokenizer=... matching the server's model"
                )
            top = tops[k] if tops else None
            best = max(top.items(), key=lambda kv: kv[1])[0] if top else None
            steps.append((local, None if offset + k == 0 else lps[k], best))
        return steps

    def _prompt_logprobs(self, ids: list[int]) -> list[tuple[str, float | None, str | None]]:
        """vLLM's ``prompt_logprobs``: per position ``{token_id: {logprob, rank, ...}}``."""
        data = self._post({"prompt": ids, "prompt_logprobs": 1})
        try:
            entries = data["choices"][0]["prompt_logprobs"]
        except (KeyError, IndexError, TypeError) as err:
            raise ServerError(f"{self.base_url} answered without prompt_logprobs ({err!r})") from err
        if len(entries) != len(ids):
            raise TokenAlignmentError(f"{self.base_url} returned {len(entries)} prompt logprobs for {len(ids)} ids")
        steps = []
        for j, entry in enumerate(entries):
            tok = self._piece(ids[j])
            if entry is None:
                steps.append((tok, None, None))
                continue
            mine = entry.get(str(ids[j])) or entry.get(ids[j])
            if mine is None:
                raise TokenAlignmentError(f"{self.base_url}: prompt position {j} does not list token {ids[j]}")
            steps.append((tok, float(mine["logprob"]), tok if int(mine.get("rank", 2)) == 1 else None))
        return steps

    def _piece(self, token_id: int) -> str:
        """Decoded text of one token id (cached: contexts repeat across choices and items)."""
        piece = self._pieces.get(token_id)
        if piece is None:
            piece = self._pieces[token_id] = self.tokenizer.decode([token_id])
        return piece

    # ------------------------------------------------------------------ HTTP
    def _post(self, body: dict[str, Any], *, retry_status: bool = True, path: str = "/completions") -> dict:
        import httpx  # optional dependency (the openai extra), checked in __init__

        payload = {"model": self.model_id, "max_tokens": 1, "temperature": 0.0, **body}
        headers = {}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        last: str = ""
        for attempt in range(self.max_retries + 1):
            wait = self.backoff * (2**attempt) * (0.5 + random.random())
            try:
                resp = self._client.post(path, json=payload, headers=headers)
            except httpx.TransportError as err:  # refused, reset, timed out
                last = f"{type(err).__name__}: {err}"
            else:
                if resp.status_code == 200:
                    try:
                        return resp.json()
                    except ValueError as err:
                        raise ServerError(f"{self.base_url}{path} answered with no JSON ({resp.text[:300]!r})") from err
                last = f"HTTP {resp.status_code}: {resp.text[:300]}"
                if resp.status_code not in _RETRY_STATUS or not retry_status:
                    raise ServerError(f"{self.base_url}{path} rejected the request ({last})",
                                      status=resp.status_code)
                retry_after = resp.headers.get("retry-after")
                if retry_after and retry_after.replace(".", "", 1).isdigit():
                    wait = max(wait, float(retry_after))
            if attempt < self.max_retries:
                time.sleep(wait)
        raise ServerError(f"{self.base_url}{path} failed after {self.max_retries + 1} attempts ({last})")

    def close(self) -> None:
        self._client.close()

    def __repr__(self) -> str:  # never shows the key
        return f"OpenAIBackend({self.model_id!r}, base_url={self.base_url!r})"


def _stop_reason(choice: dict, found: bool, asked: bool) -> str:
    """``"stop"``, ``"eos"`` or ``"length"`` for one choice (see :meth:`OpenAIBackend.generate`)."""
    if found:
        return "stop"
    if choice.get("finish_reason") == "length":
        return "length"
    stop_type = choice.get("stop_type")  # llama.cpp's server: "eos", "word", "limit"
    if stop_type in ("eos", "word", "limit"):
        return {"eos": "eos", "word": "stop", "limit": "length"}[stop_type]
    if "stop_reason" in choice:  # vLLM: the stop string, a stop token id, or None for EOS
        return "stop" if isinstance(choice["stop_reason"], str) else "eos"
    return "stop" if asked else "eos"


def _load_tokenizer(source: str) -> Any:
    """An HF tokenizer from a packaged model name, a checkpoint directory or a hub id."""
    import transformers  # start-up time

    src, extra = resolve_source(source)
    kw = {"gguf_file": extra["gguf_file"]} if "gguf_file" in extra else {}
    return transformers.AutoTokenizer.from_pretrained(src, **kw)


def load_openai(name_or_path: str, *, dtype: str = "float32", device: str | None = None, **kw: Any) -> OpenAIBackend:
    """Factory registered as backend ``"openai"`` (``dtype``/``device`` belong to the server)."""
    if dtype not in BACKEND.dtypes:
        raise ValueError(f"--dtype {dtype} does not apply to the openai backend: the server picks its dtype")
    kw.pop("batch_size", None)
    return OpenAIBackend(name_or_path, **kw)


def identify_openai(name_or_path: str, *, dtype: str = "float32", **kw: Any) -> ModelIdentity:
    """The identity :func:`load_openai` would report: the served name (the server owns the weights)."""
    return ModelIdentity(name_or_path, served_fingerprint(name_or_path, kw.get("tokenizer")), "openai",
                         BACKEND.store_dtype(dtype))


BACKEND = BackendInfo(
    name="openai", load=load_openai, identify=identify_openai, dtypes=("float32", "server"), stored_dtype="server",
    options=lambda: constructor_options(OpenAIBackend, {"model_id"}, {"batch_size"}),
    summary="an OpenAI-compatible completions server (-M base_url=...)",
)
