"""Generation on the llamacpp (in-process) and openai backends.

Against the REAL llama-cpp-python server on 127.0.0.1 serving the packaged
SmolLM2 GGUF, and against llama.cpp in this process on the same file.
Greedy text from ``/completions`` equals the in-process greedy text: both
evaluate the same prompt tokens whole with the same kernels and pick the
argmax, provided that

* the server does not apply its default repeat penalty of 1.1 (llama-cpp-
  python's server applies it even to greedy decoding; lm-eval does not send
  ``repeat_penalty``, so the backend takes it as ``gen_extra``);
* the server evaluates each prompt whole: it reuses the KV cache of the
  previous request's longest common token prefix, and llama.cpp's logits
  depend on how a prompt is split into batches, so consecutive prompts here
  start with different words.

Sampled text is not compared across the two: the server's sampler chain
(top-k 40, typical, min-p 0.05 defaults) is not the backend's. A tiny
``http.server`` on loopback stands in for a server that answers badly.
"""

from __future__ import annotations

import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from sharpbench.models.errors import BackendError, ServerError
from sharpbench.models.gen_text import cut_at_stop, prompt_window
from sharpbench.results import Generation, GenerationRequest

TEST_THREADS = 1 if os.environ.get("PYTEST_XDIST_WORKER") else 2  # one core per xdist worker
GREEDY_SETTINGS = {"repeat_penalty": 1.0}  # llama-cpp-python's server: no repeat penalty (see the module docstring)


# ----------------------------------------------------------------------------------------- pure helpers
def test_prompt_window_keeps_the_last_tokens():
    assert prompt_window(range(10), 8, 3) == [5, 6, 7, 8, 9]
    assert prompt_window([1, 2], 8, 3) == [1, 2]
    with pytest.raises(BackendError, match="no room"):
        prompt_window([1, 2], 8, 8)


def test_cut_at_stop_cuts_before_the_earliest_stop():
    assert cut_at_stop("a\n\nQuestion: b", ["Question:", "\n\n"]) == ("a", True)
    assert cut_at_stop("abc", ["", "x"]) == ("abc", False)
    assert cut_at_stop("xabc", ["b", "x"]) == ("", True)


# ------------------------------------------------------------------------- a server that answers badly
class _Fake:
    """Loopback HTTP server answering each POST with the next queued (status, json) and recording the bodies."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, object]] = []
        self.seen: list[tuple[str, dict]] = []
        self.echo = False
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.seen.append((self.path, body))
                if fake.echo:  # answer each prompt with itself, after a delay that reverses the arrival order
                    time.sleep(0.05 * (9 - len(fake.seen) % 10))
                    status, answer = 200, {"choices": [{"index": 0, "text": body["prompt"], "finish_reason": "stop"}],
                                           "usage": {"completion_tokens": len(body["prompt"])}}
                else:
                    status, answer = fake.answers.pop(0) if fake.answers else (200, {"choices": []})
                raw = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fake():
    srv = _Fake()
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def smollm2_tokenizer_backend():
    """An openai backend object for its tokenizer only (base_url is replaced per test)."""
    pytest.importorskip("httpx")
    from sharpbench.models.openai_api import OpenAIBackend

    return OpenAIBackend("smollm2", base_url="http://127.0.0.1:9/v1", tokenizer="smollm2-135m",
                         prompt_format="text", max_retries=2, backoff=0.01)


def _on(backend, url):
    import httpx

    backend.base_url = url
    backend._client = httpx.Client(base_url=url, timeout=10)
    backend.prompt_format = "text"
    backend.chat = "auto"
    backend.gen_extra = {}
    backend.max_concurrency = 1  # the fake answers in arrival order
    return backend


def test_empty_choices_and_missing_text_are_clear_errors(fake, smollm2_tokenizer_backend):
    backend = _on(smollm2_tokenizer_backend, fake.base_url)
    fake.answers = [(200, {"choices": []})]
    with pytest.raises(ServerError, match="without choices"):
        backend.generate([GenerationRequest("Hi", max_gen_toks=4)])
    fake.answers = [(200, {"id": "x"})]
    with pytest.raises(ServerError, match="without choices"):
        backend.generate([GenerationRequest("Hi", max_gen_toks=4)])
    fake.answers = [(200, {"choices": [{"index": 0, "text": None, "finish_reason": "stop"}]})]
    with pytest.raises(ServerError, match="without text"):
        backend.generate([GenerationRequest("Hi", max_gen_toks=4)])
    fake.answers = [(200, {"choices": [{"index": 0, "message": {"role": "assistant"}}]})]
    with pytest.raises(ServerError, match="without text"):
        backend.generate([GenerationRequest("Hi", max_gen_toks=4, messages=(("user", "Hi"),))])


def test_transient_failures_are_retried_then_fail_clearly(fake, smollm2_tokenizer_backend):
    backend = _on(smollm2_tokenizer_backend, fake.base_url)
    ok = {"choices": [{"index": 0, "text": " fine", "finish_reason": "length"}], "usage": {"completion_tokens": 4}}
    fake.answers = [(503, {"error": "busy"}), (200, ok)]
    assert backend.generate([GenerationRequest("Hi", max_gen_toks=4)]) == [Generation(" fine", 4, "length")]
    assert len(fake.seen) == 2
    fake.answers = [(503, {"error": "busy"})] * 3
    with pytest.raises(ServerError, match="failed after 3 attempts"):
        backend.generate([GenerationRequest("Hi", max_gen_toks=4)])


def test_payloads_follow_lm_eval_and_text_is_cut_client_side(fake, smollm2_tokenizer_backend):
    backend = _on(smollm2_tokenizer_backend, fake.base_url)
    backend.gen_extra = {"repeat_penalty": 1.0}
    # the server ignored the stop string: the text is cut here, and the reason is "stop"
    fake.answers = [(200, {"choices": [{"index": 0, "text": " 42\n\nQuestion: next", "finish_reason": "length"}],
                           "usage": {"completion_tokens": 8}}),
                    (200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": "4 END more"},
                                        "finish_reason": "stop"}]})]
    reqs = [GenerationRequest("Q: 6*7?\nA:", until=("Question:", "\n\n"), max_gen_toks=8, do_sample=True,
                              temperature=0.5, top_p=0.9, top_k=20, seed=3),
            GenerationRequest("<rendered>", until=("a", "b", "c", "d", "END"), max_gen_toks=5,
                              messages=(("system", "Be brief."), ("user", "2+2?")))]
    gens = backend.generate(reqs)
    assert gens[0].text == " 42" and gens[0].stop_reason == "stop" and gens[0].n_tokens == 8
    assert gens[1].text == "4 " and gens[1].stop_reason == "stop"
    assert gens[1].n_tokens == len(backend.tok_encode("4 ", add_special_tokens=False))  # no usage: counted here
    (path0, body0), (path1, body1) = fake.seen
    assert path0 == "/v1/completions"
    assert body0 == {"model": "smollm2", "prompt": "Q: 6*7?\nA:", "max_tokens": 8, "temperature": 0.5,
                     "stop": ["Question:", "\n\n", backend.tokenizer.eos_token], "top_p": 0.9, "top_k": 20,
                     "seed": 3, "repeat_penalty": 1.0}  # lm-eval adds the tokenizer's end-of-text string
    assert path1 == "/v1/chat/completions"
    assert "prompt" not in body1 and body1["stop"] == ["a", "b", "c", "d"]  # lm-eval's first four (EOS text last)
    assert body1["messages"] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    assert body1["temperature"] == 0.0 and body1["max_tokens"] == 5


def test_concurrent_requests_come_back_in_request_order(fake, smollm2_tokenizer_backend):
    backend = _on(smollm2_tokenizer_backend, fake.base_url)
    backend.max_concurrency = 4
    fake.echo = True
    prompts = [f"prompt {i}" for i in range(12)]
    progress: list[int] = []
    gens = backend.generate([GenerationRequest(p, max_gen_toks=4) for p in prompts], progress=progress.append)
    assert [g.text for g in gens] == prompts
    assert sum(progress) == sum(len(p) for p in prompts)
    assert {b["prompt"] for _, b in fake.seen} == set(prompts)


def test_streaming_stops_sending_after_a_failure(fake, smollm2_tokenizer_backend):
    backend = _on(smollm2_tokenizer_backend, fake.base_url)
    backend.max_concurrency = 2
    reqs = [GenerationRequest(f"p{i}", max_gen_toks=2) for i in range(20)]
    with pytest.raises(ServerError, match="without choices"):  # the fake answers {"choices": []}
        list(backend.generate_iter(reqs))
    sent = len(fake.seen)
    time.sleep(0.3)  # calls still queued would arrive now if they had not been cancelled
    assert len(fake.seen) == sent
    # only calls already in flight when the failure was seen went out (2 workers; a loaded machine may
    # let each start one more before the cancel), never the rest of the 20
    assert sent <= 2 * backend.max_concurrency + 2


def test_stop_reasons_reported_by_servers(fake, smollm2_tokenizer_backend):
    backend = _on(smollm2_tokenizer_backend, fake.base_url)
    choice = {"index": 0, "text": "x", "finish_reason": "stop"}
    fake.answers = [(200, {"choices": [{**choice, "stop_reason": None}]}),  # vLLM: EOS
                    (200, {"choices": [{**choice, "stop_reason": "\n"}]}),  # vLLM: a stop string
                    (200, {"choices": [choice]}),  # no stop strings asked: EOS
                    (200, {"choices": [{**choice, "stop_type": "eos"}]})]  # llama.cpp's server
    reqs = [GenerationRequest("a", until=("\n",)), GenerationRequest("b", until=("\n",)), GenerationRequest("c"),
            GenerationRequest("d", until=("\n",))]
    assert [g.stop_reason for g in backend.generate(reqs)] == ["eos", "stop", "eos", "eos"]


def test_long_prompt_is_left_truncated_before_sending(fake, smollm2_tokenizer_backend):
    backend = _on(smollm2_tokenizer_backend, fake.base_url)
    old = backend._max_length
    backend._max_length = 40
    try:
        fake.answers = [(200, {"choices": [{"index": 0, "text": "", "finish_reason": "stop"}]})] * 2
        prompt = " ".join(f"word{i}" for i in range(60))
        backend.generate([GenerationRequest(prompt, max_gen_toks=8)])
        backend.prompt_format = "tokens"
        backend.generate([GenerationRequest(prompt, max_gen_toks=8)])
    finally:
        backend._max_length = old
    ids = backend.tok_encode(prompt)
    assert fake.seen[0][1]["prompt"] == backend.tokenizer.decode(ids[-32:])
    assert fake.seen[1][1]["prompt"] == ids[-32:]


# --------------------------------------------------------------------------- the real llama.cpp (slow)
@pytest.fixture(scope="module")
def server(tmp_path_factory):
    pytest.importorskip("llama_cpp")
    pytest.importorskip("httpx")
    from sharpbench.models.llama_server import LlamaServer
    from sharpbench.models.packaged import gguf_path

    log = tmp_path_factory.mktemp("server") / "server.log"
    # the GGUF's own BOS setting (none for SmolLM2), as the in-process backend tokenizes
    with LlamaServer(gguf_path("smollm2-135m"), add_bos=False, log=log, n_threads=TEST_THREADS) as srv:
        yield srv


@pytest.fixture(scope="module")
def served(server):
    from sharpbench.models.openai_api import OpenAIBackend

    return OpenAIBackend("smollm2", base_url=server.base_url, tokenizer="smollm2-135m", max_concurrency=1,
                         max_length=512, gen_extra=GREEDY_SETTINGS)


@pytest.fixture(scope="module")
def local():
    pytest.importorskip("llama_cpp")
    from sharpbench.models import load_model

    return load_model("smollm2-135m", backend="llamacpp", n_threads=TEST_THREADS)


# Consecutive prompts start with different words (the server evaluates each one whole).
GREEDY = [
    GenerationRequest("The capital of France is", max_gen_toks=24),
    GenerationRequest("Question: What is 2+3?\nAnswer:", until=("\n",), max_gen_toks=24),
    GenerationRequest("Recipe for pancakes:\n1.", until=("\n", "3."), max_gen_toks=24),
    GenerationRequest("def add(a, b):\n", until=("\ndef", "\nclass"), max_gen_toks=24),
]


@pytest.mark.slow
@pytest.mark.server
def test_served_greedy_equals_in_process_greedy(served, local):
    progress: list[int] = []
    mine = local.generate(GREEDY, progress=progress.append)
    theirs = served.generate(GREEDY)
    for req, a, b in zip(GREEDY, mine, theirs):
        print(repr(a), repr(b))
        assert a.text == b.text, req.prompt
        assert not any(s in a.text for s in req.until)
        if a.stop_reason == "eos":  # the server neither counts the end-of-text token nor says which stop it was
            assert b.n_tokens == a.n_tokens - 1 and b.stop_reason in ("eos", "stop")
        else:
            assert (a.stop_reason, a.n_tokens) == (b.stop_reason, b.n_tokens)
    assert sum(progress) == sum(g.n_tokens for g in mine)
    assert local.generate(GREEDY[::-1])[::-1] == mine  # results in request order, whatever order they ran in
    assert mine[1].stop_reason == "stop" and mine[1].text.strip() == "5"
    assert mine[0].stop_reason == "length" and mine[0].n_tokens == 24


@pytest.mark.slow
@pytest.mark.server
def test_stop_strings_and_max_gen_toks_on_both(served, local):
    reqs = [GenerationRequest("Counting: one, two, three,", until=(",",), max_gen_toks=16),
            GenerationRequest("List of colours: red, green,", until=("never-appears-xyz",), max_gen_toks=7),
            GenerationRequest("A short poem:\n", until=("\n", " the"), max_gen_toks=16)]
    for backend in (local, served):
        gens = backend.generate(reqs)
        assert gens[0].stop_reason == "stop" and "," not in gens[0].text
        assert gens[1].stop_reason == "length" and gens[1].n_tokens == 7
        assert gens[2].stop_reason in ("stop", "eos", "length") and "\n" not in gens[2].text
        assert " the" not in gens[2].text


@pytest.mark.slow
@pytest.mark.server
def test_seeded_samples_reproduce(served, local):
    def sampled(seed):
        return GenerationRequest("Once upon a time", max_gen_toks=16, do_sample=True, temperature=1.0, seed=seed)

    other = GenerationRequest("Yesterday I", max_gen_toks=4)
    for backend in (local, served):
        progress: list[int] = []
        gens = backend.generate([sampled(7), other, sampled(7), sampled(8)], progress=progress.append)
        a, _, b, c = gens
        assert a == b
        assert a.text != c.text
        assert sum(progress) == sum(g.n_tokens for g in gens)
    alone = local.generate([sampled(7)])[0]  # in process: whatever ran before
    assert alone == local.generate([other, sampled(8), sampled(7)])[2]
    # the in-process sampler chain honours top_k: top_k=1 is greedy decoding
    top1 = GenerationRequest("Once upon a time", max_gen_toks=16, do_sample=True, temperature=1.0, top_k=1, seed=5)
    assert local.generate([top1])[0] == local.generate([GenerationRequest("Once upon a time", max_gen_toks=16)])[0]


@pytest.mark.slow
@pytest.mark.server
def test_chat_completions_with_messages(served, local):
    req = GenerationRequest("unused when messages go to the server", max_gen_toks=12,
                            messages=(("system", "You are helpful."), ("user", "What is 2+2?")))
    (gen,) = served.generate([req])
    assert isinstance(gen.text, str) and gen.text
    assert 1 <= gen.n_tokens <= 12
    # the in-process backend tokenizes a rendered chat prompt's special tokens as lm-eval's HF tokenizer does
    chat = "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    assert local.tok_encode(chat) == served.tok_encode(chat)
    assert local.tok_encode(chat)[0] != local.tok_encode("<")[0]  # parsed as the special token


@pytest.mark.slow
def test_in_process_prompt_is_left_truncated_and_scoring_still_works():
    pytest.importorskip("llama_cpp")
    from sharpbench.models import TokenRequest, load_model

    small = load_model("smollm2-135m", backend="llamacpp", n_threads=TEST_THREADS, n_ctx=64)
    assert small.max_length == 64  # llama.cpp allocates 256 (padded); llama-cpp-python's buffers hold 64
    ctx = tuple(small.tok_encode("The sky is"))
    cont = tuple(small.tok_encode(" blue", add_special_tokens=False))
    before = small.loglikelihood([TokenRequest(ctx, cont)])[0]
    long_prompt = " ".join(f"word{i}" for i in range(200))  # far more than 64 - 16 tokens
    (gen,) = small.generate([GenerationRequest(long_prompt, max_gen_toks=16)])
    assert 1 <= gen.n_tokens <= 16
    assert small.loglikelihood([TokenRequest(ctx, cont)])[0] == before  # the generation left no stale cache
    with pytest.raises(BackendError, match="no room"):
        small.generate([GenerationRequest("Hi", max_gen_toks=64)])
    streamed = list(small.generate_iter([GenerationRequest("Zebras", max_gen_toks=2),
                                         GenerationRequest("Apples", max_gen_toks=3)]))
    assert sorted(i for i, _, _ in streamed) == [0, 1] and all(sec > 0 for _, _, sec in streamed)
    assert {i: g.n_tokens for i, g, _ in streamed}[1] <= 3


@pytest.mark.parametrize("chat, path, sent", [
    (False, "/v1/completions", {"prompt": "<rendered>"}),
    (True, "/v1/chat/completions", {"messages": [{"role": "user", "content": "<rendered>"}]}),
    ("auto", "/v1/chat/completions", {"messages": [{"role": "user", "content": "2+2?"}]}),
])
def test_chat_option_picks_the_endpoint(fake, smollm2_tokenizer_backend, chat, path, sent):
    backend = _on(smollm2_tokenizer_backend, fake.base_url)
    backend.chat = chat
    text = {"message": {"content": "4"}} if "chat" in path else {"text": "4"}
    fake.answers = [(200, {"choices": [{"index": 0, "finish_reason": "stop", **text}]})]
    messages = None if chat is True else (("user", "2+2?"),)
    (gen,) = backend.generate([GenerationRequest("<rendered>", max_gen_toks=3, messages=messages)])
    assert gen.text == "4"
    assert fake.seen[0][0] == path
    assert {k: fake.seen[0][1][k] for k in sent} == sent


def test_bad_options_are_clear_errors():
    pytest.importorskip("httpx")
    from sharpbench.models.openai_api import OpenAIBackend

    with pytest.raises(ValueError, match="gen_extra must be a JSON object"):
        OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", tokenizer="smollm2-135m", gen_extra="{bad")
    with pytest.raises(ValueError, match="chat must be"):
        OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", tokenizer="smollm2-135m", chat="sometimes")
    backend = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", tokenizer="smollm2-135m",
                            gen_extra='{"repeat_penalty": 1.0}', chat="false")
    assert backend.gen_extra == {"repeat_penalty": 1.0} and backend.chat is False
    assert backend.generation_options == {"chat": False, "gen_extra": {"repeat_penalty": 1.0}}


@pytest.mark.slow
def test_in_process_reuses_whole_prompt_batches_without_changing_the_text(local):
    prefix = " ".join(f"Question {i}: what is {i} plus {i}? Answer: {2 * i}." for i in range(30))
    a = GenerationRequest(prefix + " Question 30: what is 7 plus 5? Answer:", until=("\n",), max_gen_toks=8)
    b = GenerationRequest(prefix + " Question 31: what is 3 plus 4? Answer:", until=("\n",), max_gen_toks=8)
    n_b = len(local.tok_encode(b.prompt))
    assert n_b > local.llm.n_batch
    evaluated: list[int] = []
    real_eval = local.llm.eval
    local.llm.eval = lambda toks: (evaluated.append(len(toks)), real_eval(toks))[1]
    try:
        local.generate([GenerationRequest("Unrelated", max_gen_toks=2)])
        fresh = local.generate([b])[0]
        fresh_row = np.array(local.llm.scores[n_b - 1])
        evaluated.clear()
        reused = local.generate([a, b])[1]
    finally:
        del local.llm.eval
    # a's and b's prompts share their first n_batch tokens with the prompt before: those come from the cache
    n_a, batch = len(local.tok_encode(a.prompt)), local.llm.n_batch
    assert sorted(n for n in evaluated if n > 1) == sorted([n_a - batch, n_b - batch])
    assert reused == fresh
    assert np.array_equal(np.array(local.llm.scores[n_b - 1]), fresh_row)  # the first token's logits, bit for bit
