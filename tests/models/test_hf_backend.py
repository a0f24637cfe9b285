"""HF backend on the real packaged SmolLM2: tokenization rules, window, fingerprint, CLI listing."""

from __future__ import annotations

import json
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def smol():
    from sharpbench.models import load_model, packaged

    try:
        packaged.part_paths(packaged.get_packaged("smollm2-135m"))
    except packaged.ModelPackageMissingError as err:  # pragma: no cover
        pytest.skip(str(err))
    return load_model("smollm2-135m")


@pytest.mark.slow
def test_packaged_default_loads_with_lmeval_conventions(smol):
    from sharpbench.models import packaged

    assert smol.model_id == "smollm2-135m" and smol.name == "hf" and smol.dtype == "float32"
    assert smol.max_length == 8192  # config.max_position_embeddings, as lm-eval resolves it
    assert smol.prefix_token_id == smol.tokenizer.bos_token_id
    # SmolLM2's tokenizer adds no BOS by default, so lm-eval feeds the bare text
    assert smol.tok_encode("Question: hi") == smol.tokenizer.encode("Question: hi", add_special_tokens=False)
    assert smol.fingerprint == packaged.checkpoint_meta("smollm2-135m")["fingerprint"]
    assert smol.num_parameters() > smol.num_parameters(non_embedding=True) > 100e6


@pytest.mark.slow
def test_fingerprint_is_sha256_of_weights(smol):
    import hashlib

    from sharpbench.models import packaged
    from sharpbench.models.fingerprint import weights_fingerprint

    d = packaged.checkpoint_dir("smollm2-135m")
    h = hashlib.sha256()
    h.update(b"model.safetensors\0" + (d / "model.safetensors").read_bytes())
    assert weights_fingerprint(d) == f"sha256:{h.hexdigest()}" == smol.fingerprint


def test_models_list_cli_json():
    from typer.testing import CliRunner

    from sharpbench.cli.app import app

    out = CliRunner().invoke(app, ["models", "list", "--format", "json"])
    assert out.exit_code == 0, out.output
    rows = {r["name"]: r for r in json.loads(out.output)}
    assert set(rows) == {"smollm2-135m", "gemma3-270m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"}
    assert rows["smollm2-135m"]["default"] and rows["qwen2.5-coder-1.5b"]["params"] == "1.5B"


def test_models_fetch_cli_unknown_name():
    from typer.testing import CliRunner

    from sharpbench.cli.app import app

    out = CliRunner().invoke(app, ["models", "fetch", "gemma-270m"])
    assert out.exit_code == 2  # unknown name: EXIT_INPUT, as `eval -m` (issue #15)
    assert "gemma3-270m" in out.output
