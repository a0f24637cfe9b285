"""lm-eval style --model-args: parsing, dtype=auto, clear errors, and a peft adapter loaded on top."""

from __future__ import annotations

import os

import pytest
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.models import UnknownModelArgError
from sharpbench.models.model_args import (
    adapter_fingerprint,
    auto_dtype,
    parse_lmeval_model_args,
    resolve_model_args,
)

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="module")
def smollm2_dir():
    from sharpbench.models import packaged

    try:
        return packaged.ensure_checkpoint("smollm2-135m")
    except packaged.ModelPackageMissingError as err:  # pragma: no cover - CI installs it
        pytest.skip(str(err))


def test_parses_lmeval_keys_with_types():
    args = parse_lmeval_model_args(
        "pretrained=HuggingFaceTB/SmolLM2-135M, dtype=auto,device_map=auto,peft=./lora,"
        "trust_remote_code=True,max_length=4096"
    )
    assert args == {
        "pretrained": "HuggingFaceTB/SmolLM2-135M", "dtype": "auto", "device_map": "auto", "peft": "./lora",
        "trust_remote_code": True, "max_length": 4096,
    }  # fmt: skip
    assert parse_lmeval_model_args("") == {}


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("pretrained=x,dtpye=auto", r"unknown --model-args key 'dtpye' \(did you mean 'dtype'\?\); valid keys: "),
        ("parallelize=True", "unknown --model-args key 'parallelize'"),
        ("pretrained", "KEY=VALUE"),
        ("max_length=long", "max_length must be an integer"),
    ],
)
def test_bad_model_args_say_what_is_wrong(text, match):
    with pytest.raises(UnknownModelArgError, match=match):
        parse_lmeval_model_args(text)


def test_resolve_maps_keys_onto_the_load_call():
    import torch

    model, dtype, device, kw = resolve_model_args(
        parse_lmeval_model_args("pretrained=gemma3-270m,dtype=auto,peft=/a,device_map=auto,max_length=512"),
        model="smollm2-135m", dtype="float32",
    )
    assert model == "gemma3-270m" and device is None
    assert dtype == ("bfloat16" if torch.cuda.is_available() and torch.cuda.is_bf16_supported()
                     else "float16" if torch.cuda.is_available() else "float32")
    assert kw == {"peft": "/a", "device_map": "auto", "max_length": 512}
    assert resolve_model_args({"dtype": "bf16"}, model="m")[1] == "bfloat16"
    assert resolve_model_args({}, model="m", dtype="float16")[:2] == ("m", "float16")
    assert auto_dtype("cpu") == "float32"
    with pytest.raises(UnknownModelArgError, match="dtype must be"):
        resolve_model_args({"dtype": "int8"}, model="m")


def test_cli_rejects_an_unknown_model_args_key_with_exit_2(tmp_path):
    res = CliRunner().invoke(app, ["eval", "--model-args", "pretrained=smollm2-135m,bogus=1", "--store",
                                   str(tmp_path / "s.duckdb")], catch_exceptions=False)
    assert res.exit_code == 2, res.output
    assert "unknown --model-args key 'bogus'" in res.stderr and "Traceback" not in res.output


@pytest.mark.slow
def test_peft_adapter_is_loaded_on_top_and_changes_identity_and_scores(tmp_path, smollm2_dir):
    peft = pytest.importorskip("peft")
    import torch
    import transformers

    from sharpbench.engine.pipeline import run_eval
    from sharpbench.models import load_model

    base = transformers.AutoModelForCausalLM.from_pretrained(smollm2_dir, dtype=torch.float32)
    torch.manual_seed(0)
    lora = peft.get_peft_model(base, peft.LoraConfig(r=1, lora_alpha=4, target_modules=["o_proj"],
                                                     init_lora_weights=False))
    adapter = tmp_path / "adapter"
    lora.save_pretrained(adapter)

    backend = load_model("smollm2-135m", peft=str(adapter))
    assert backend.peft_model is not None
    assert backend.fingerprint.startswith("sha256:") and "+peft:sha256:" in backend.fingerprint
    store = tmp_path / "s.duckdb"
    plain = run_eval("smollm2-135m", "piqa", limit=2, store=store)
    res = CliRunner().invoke(app, ["eval", "--model-args", f"pretrained=smollm2-135m,dtype=auto,peft={adapter}",
                                   "--tasks", "piqa", "--limit", "2", "--store", str(store), "--output-json",
                                   str(tmp_path / "r.json")], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    import json

    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["n_computed"] == 2  # not reused from the base model's run
    assert rep["fingerprint"] == backend.fingerprint
    assert rep["tasks"][0]["run_id"] != plain.tasks[0].run_id
    from sharpbench.store import Store

    with Store(store) as st:  # the adapter is scored, not skipped
        lls = [[c.loglik for r in st.item_results(run) for c in r.choices]
               for run in (plain.tasks[0].run_id, rep["tasks"][0]["run_id"])]
    assert all(abs(a - b) > 1e-3 for a, b in zip(*lls))


def test_adapter_fingerprint_names_a_remote_adapter():
    assert adapter_fingerprint("sha256:ab", "owner/adapter") == "sha256:ab+peft:owner/adapter"
