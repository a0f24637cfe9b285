"""Start and stop a real llama-cpp-python OpenAI-compatible server on 127.0.0.1 for the tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` serving one GGUF file; ``start``/``kill``/``restart``.

    ``add_bos`` overrides the GGUF's ``tokenizer.ggml.add_bos_token`` so the
    server prepends BOS (its echoed logprobs are only aligned then, see
    sharpbench.models.openai_api).
    """

    def __init__(self, gguf: Path, *, port: int | None = None, add_bos: bool = True, api_key: str | None = None,
                 log: Path | None = None) -> None:
        self.gguf, self.port, self.add_bos, self.api_key = gguf, port or free_port(), add_bos, api_key
        self.log = log
        self.proc: subprocess.Popen | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 90.0) -> "LlamaServer":
        cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(self.gguf), "--host", "127.0.0.1",
               "--port", str(self.port), "--n_ctx", "512", "--n_threads", "2", "--model_alias", "smollm2"]
        if self.add_bos:
            cmd += ["--kv_overrides", "tokenizer.ggml.add_bos_token=bool:true"]
        if self.api_key:
            cmd += ["--api_key", self.api_key]
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL
        self.proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
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

    def __enter__(self) -> "LlamaServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.kill()
