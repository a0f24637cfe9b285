"""Issue #15: the CLI's choices come from the library's registries (no copied lists drifting apart)."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.models import BACKENDS, REGISTRY, BackendInfo, check_model_args, load_model, register_backend
from sharpbench.models.errors import UnknownBackendError, UnknownModelArgError
from sharpbench.models.identity import ModelIdentity, identify

runner = CliRunner()


def test_backend_and_dtype_help_list_every_registered_backend():
    out = " ".join(runner.invoke(app, ["eval", "--help"], env={"COLUMNS": "300"}).output.split())
    assert f"Model backend: {' | '.join(REGISTRY)}." in out
    for name, info in REGISTRY.items():
        assert f"{name}: {' | '.join(info.dtypes)}" in out


def test_each_builtin_backend_declares_load_identify_dtypes_and_options():
    assert list(REGISTRY) == ["hf", "llamacpp", "openai"]
    for name, info in REGISTRY.items():
        assert info.name == name and BACKENDS[name] is info.load
        assert info.identify is not None and info.options is not None and info.dtypes[0] == "float32"
    assert identify("served-model", backend="openai") == ModelIdentity("served-model", "openai:served-model",
                                                                        "openai", "server")
    with pytest.raises(UnknownModelArgError, match="did you mean 'n_threads'"):
        check_model_args("llamacpp", {"n_thread": 2})


def test_a_registered_backend_is_loadable_identifiable_and_in_the_help():
    class Fake:
        name, model_id, fingerprint, dtype, max_length = "fake", "m", "fp", "int8", 8

    try:
        register_backend("fake", lambda name, *, dtype, device, **kw: Fake(), dtypes=("int8",),
                         identify=lambda name, *, dtype, **kw: ModelIdentity(name, "fp", "fake", dtype))
        assert isinstance(load_model("m", backend="fake", anything=1), Fake)  # no options: -M keys unchecked
        assert identify("m", backend="fake", dtype="int8") == ModelIdentity("m", "fp", "fake", "int8")
        from sharpbench.cli.common import backend_help, dtype_help

        assert "fake" in backend_help() and "fake: int8" in dtype_help()
        assert isinstance(REGISTRY["fake"], BackendInfo)
    finally:
        REGISTRY.pop("fake", None)
        BACKENDS.pop("fake", None)
    with pytest.raises(UnknownBackendError, match="available: hf, llamacpp, openai"):
        load_model("m", backend="fake")


def test_cli_enums_match_the_library_registries():
    """The command modules keep their option enums (importing the analysis packages at start-up costs
    seconds); this pins every value to the library's own list."""
    from sharpbench.adaptive.selection import SELECTION_METHODS
    from sharpbench.cli.adaptive_cmd import Selection
    from sharpbench.cli.distill_cmd import HardMethod, TinyMethod
    from sharpbench.cli.insight_cmd import RankMethod, SkillFrom
    from sharpbench.distill.hard_rank import RANKINGS
    from sharpbench.distill.tiny import TINY_METHODS
    from sharpbench.insight.rank import METHODS
    from sharpbench.insight.skills import SKILL_SOURCES

    assert tuple(m.value for m in HardMethod) == RANKINGS
    assert tuple(m.value for m in TinyMethod) == TINY_METHODS
    assert tuple(m.value for m in RankMethod) == (*METHODS, "all")
    assert tuple(m.value for m in SkillFrom) == SKILL_SOURCES
    assert tuple(m.value for m in Selection) == SELECTION_METHODS
