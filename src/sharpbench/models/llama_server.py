"""Start and stop a llama-cpp-python OpenAI-compatible server on 127.0.0.1 (tests, benchmarks).

Needs ``pip install "sharpbench[serve]"`` (llama-cpp-python with its server
extra).  The server is a child process in its own session, killed with its
process group.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` serving one GGUF file; ``start``/``kill``/``restart``.

    ``add_bos`` overrides the GGUF's ``tokenizer.ggml.add_bos_token`` so the
    server prepends BOS (its echoed logprobs are only aligned then, see
    :mod:`sharpbench.models.openai_api`).  ``n_ctx`` is small by default:
    the server converts its whole ``n_ctx x vocab`` logits buffer to logprobs
    on every request.
    """

    def __init__(self, gguf: Path, *, port: int | None = None, add_bos: bool = True, api_key: str | None = None,
                 log: Path | None = None, n_ctx: int = 512, n_threads: int = 2, alias: str = "smollm2") -> None:
        self.gguf, self.port, self.add_bos, self.api_key = gguf, port or free_port(), add_bos, api_key
        self.log, self.n_ctx, self.n_threads, self.alias = log, n_ctx, n_threads, alias
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 90.0) -> LlamaServer:
        import httpx  # optional dependency (the openai extra)

        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", str(self.n_ctx), "--n_threads", str(self.n_threads),
               "--model_alias", self.alias]
        if self.add_bos:
            cmd += ["--kv_overrides", "tokenizer.ggml.add_bos_token=bool:true"]
        if self.api_key:
            cmd += ["--api_key", self.api_key]
        if self.log:
            with open(self.log, "ab") as out:  # the child keeps its own descriptor
                self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        else:
            self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        headers = {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama-cpp-python server exited with {self.proc.returncode}: {cmd}")
            try:
                if httpx.get(f"{self.base_url}/models", headers=headers, timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"llama-cpp-python server did not come up in {timeout} s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None

    def __enter__(self) -> LlamaServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
