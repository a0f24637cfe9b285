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


def test_cli_choices_are_the_library_names():
    """Every option's choices are built from sharpbench.choices, the same tuples the analyses check against."""
    from sharpbench import choices
    from sharpbench.adaptive.cat import AdaptiveTest  # noqa: F401  (imports the ability check)
    from sharpbench.adaptive.selection import SELECTION_METHODS
    from sharpbench.cli.adaptive_cmd import Ability, Selection
    from sharpbench.cli.distill_cmd import HardMethod, TinyMethod
    from sharpbench.cli.compare_cmd import Direction
    from sharpbench.cli.insight_cmd import Binning, Correction, RankMethod, SkillFrom
    from sharpbench.cli.output import FORMATS, OutputFormat
    from sharpbench.distill.estimators import ESTIMATORS
    from sharpbench.distill.hard_rank import RANKINGS
    from sharpbench.distill.tiny import TINY_METHODS
    from sharpbench.insight.rank import METHODS
    from sharpbench.insight.skills import SKILL_SOURCES
    from sharpbench.irt import MODELS
    from sharpbench.store.export import EXPORT_FORMATS

    def values(enum):
        return tuple(m.value for m in enum)

    assert values(Selection) == SELECTION_METHODS == choices.SELECTION_METHODS
    assert values(Ability) == choices.ABILITY_METHODS
    assert values(HardMethod) == RANKINGS == choices.HARD_RANKINGS
    assert values(TinyMethod) == TINY_METHODS == choices.TINY_METHODS
    assert ESTIMATORS == choices.TINY_ESTIMATORS
    assert values(RankMethod) == (*METHODS, "all") and METHODS == choices.RANK_METHODS
    assert values(SkillFrom) == SKILL_SOURCES == choices.SKILL_SOURCES
    assert values(Correction) == choices.P_CORRECTIONS
    assert values(Binning) == choices.CALIBRATION_BINNINGS
    assert values(Direction) == choices.PERTURB_DIRECTIONS
    assert values(OutputFormat) == FORMATS == ("table", "json", "csv")
    assert set(MODELS) == {*choices.IRT_MODELS, "rasch"}
    from sharpbench.irt.priors import PRESETS

    assert ("auto", *PRESETS) == choices.IRT_PRIORS
    assert EXPORT_FORMATS == choices.STORE_EXPORT_FORMATS


def test_help_and_errors_list_the_library_names():
    from sharpbench import choices

    def help_of(*cmd):
        return " ".join(runner.invoke(app, [*cmd, "--help"], env={"COLUMNS": "300"}).output.split())

    assert " | ".join(choices.IRT_MODELS) in help_of("irt", "fit")
    assert " | ".join(choices.IRT_PRIORS) in help_of("irt", "fit")
    assert "table | json | csv | markdown" in help_of("distill", "evaluate") and "table | json | csv" in help_of("rank")
    assert ", ".join(choices.TINY_ESTIMATORS) in help_of("predict")
    assert " | ".join(choices.STORE_EXPORT_FORMATS) in help_of("results", "export")
    assert " | ".join(choices.MATRIX_FORMATS) in help_of("matrix", "export")
    for cmd, values in ((("adaptive", "simulate"), choices.SELECTION_METHODS),
                        (("distill", "hard"), choices.HARD_RANKINGS), (("distill", "tiny"), choices.TINY_METHODS),
                        (("skills",), choices.SKILL_SOURCES)):
        assert all(v in help_of(*cmd) for v in values), cmd
    r = runner.invoke(app, ["distill", "tiny", "m.csv", "--method", "nope"])
    assert r.exit_code == 2 and all(v in r.output for v in choices.TINY_METHODS)


def test_every_matrix_format_is_written(tmp_path):
    """``matrix export --format`` offers choices.MATRIX_FORMATS: each one writes a file read back the same."""
    from sharpbench import choices
    from sharpbench.matrix import read_matrix

    src = tmp_path / "m.csv"
    src.write_text("model,i1,i2\nA,1,0\nB,0,1\n", encoding="utf-8")
    for kind in choices.MATRIX_FORMATS:
        out = tmp_path / f"out_{kind}.{'parquet' if kind == 'parquet' else 'csv'}"
        r = runner.invoke(app, ["matrix", "export", str(src), "-o", str(out), "--format", kind])
        assert r.exit_code == 0, r.output
        assert read_matrix(out).to_frame().loc["A"].tolist() == [1.0, 0.0]


def test_cli_start_up_imports_no_analysis_stack():
    """The choices come from sharpbench.choices, not the analysis packages: ``--help`` loads no numpy stack."""
    import subprocess
    import sys

    code = ("import sys; from sharpbench.cli.app import app; "
            "print(sorted(m for m in ('numpy', 'pandas', 'scipy', 'torch', 'sklearn') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_corrections_binnings_and_directions_are_the_ones_the_library_takes():
    """Each name in the three lists works in its function; an unknown one is refused naming them all; the CLI
    offers exactly these (a wrong choice exits 2 listing them)."""
    import numpy as np

    from sharpbench import choices
    from sharpbench.insight.calibration import reliability_table
    from sharpbench.insight.stats import InsightError, adjust_pvalues

    p = np.array([0.01, 0.04, 0.03, 0.5])
    for name in choices.P_CORRECTIONS:
        adj = adjust_pvalues(p, name)
        assert adj.shape == p.shape and bool((adj >= p).all())
    with pytest.raises(InsightError, match=", ".join(choices.P_CORRECTIONS)):
        adjust_pvalues(p, "sidak")
    conf, correct = np.linspace(0.3, 0.95, 40), np.arange(40) % 2
    for name in choices.CALIBRATION_BINNINGS:
        assert len(reliability_table(conf, correct, 5, name))
    with pytest.raises(InsightError, match=", ".join(choices.CALIBRATION_BINNINGS)):
        reliability_table(conf, correct, 5, "log")
    for cmd, opt, names in ((("skills", "m.csv"), "--correction", choices.P_CORRECTIONS),
                            (("calibration",), "--binning", choices.CALIBRATION_BINNINGS),
                            (("perturb", "m", "-o", "x"), "--direction", choices.PERTURB_DIRECTIONS)):
        r = runner.invoke(app, [*cmd, opt, "nope"])
        assert r.exit_code == 2 and all(v in r.output for v in names), (cmd, r.output)


def test_perturb_refuses_an_unknown_direction_naming_the_known_ones():
    from types import SimpleNamespace

    from sharpbench import choices
    from sharpbench.compare.errors import CompareError
    from sharpbench.compare.perturb import make_direction

    model = SimpleNamespace(config=SimpleNamespace(hidden_size=4))
    assert float(make_direction(model, None, "random", layer=0).norm()) == pytest.approx(1.0)
    with pytest.raises(CompareError, match=", ".join(choices.PERTURB_DIRECTIONS)):
        make_direction(model, None, "sideways", layer=0)
