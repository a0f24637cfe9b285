"""Issue #15: one reader for response matrices and item tables behind every command.

The same small synthetic matrix, written in every format `irt fit` reads, goes through the real CLI of
`irt fit`, `distill tiny`, `rank` (insight), `adaptive simulate`, `calibrate` and `predict`: each one
accepts it and sees the same models and items. Duplicate ids and wrong id columns give every command the
same one-line error.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from sharpbench.cli.app import app
from sharpbench.matrix import ResponseMatrix, write_matrix

runner = CliRunner()

N_MODELS, N_ITEMS = 12, 16
MODELS = [f"m{k:02d}" for k in range(N_MODELS)]
ITEMS = [f"toy/{j}" for j in range(N_ITEMS)]  # lm-eval's ids (task/doc_id), so every format shares them


def _canonical() -> ResponseMatrix:
    rng = np.random.default_rng(5)
    theta = np.linspace(-2, 2, N_MODELS)[:, None]
    b = np.linspace(-1.5, 1.5, N_ITEMS)[None, :]
    vals = (rng.random((N_MODELS, N_ITEMS)) < 1 / (1 + np.exp(-(theta - b) * 1.5))).astype(float)
    vals[0, :2], vals[-1, -2:] = 1.0, 0.0  # no item all right or all wrong
    vals[-1, :2], vals[0, -2:] = 0.0, 1.0
    return ResponseMatrix(vals, tuple(MODELS), tuple(ITEMS))


def _lmeval(m: ResponseMatrix, root: Path) -> Path:
    for name, row in zip(m.models, m.values):
        d = root / name
        d.mkdir(parents=True)
        (d / "results_2024-01-01T00-00-00.json").write_text(json.dumps({"model_name": name}))
        lines = [json.dumps({"doc_id": int(i.split("/")[1]), "filter": "none", "acc": float(v)})
                 for i, v in zip(m.items, row)]
        (d / "samples_toy_2024-01-01T00-00-00.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _write(m: ResponseMatrix, fmt: str, d: Path) -> tuple[Path, list[str]]:
    """The matrix as ``fmt``; returns the path and the orientation flag it needs."""
    wide = m.to_frame().rename_axis("model")
    if fmt == "csv":
        return write_matrix(m, d / "m.csv", "csv"), []
    if fmt == "csv-items-as-rows":
        return write_matrix(m, d / "t.csv", "csv", items_as_rows=True), ["--items-as-rows"]
    if fmt == "tsv":
        wide.to_csv(d / "m.tsv", sep="\t")
        return d / "m.tsv", []
    if fmt == "parquet-pandas":
        wide.to_parquet(d / "p.parquet")  # ids in the pandas index
        return d / "p.parquet", []
    if fmt == "parquet-column":
        wide.reset_index().to_parquet(d / "c.parquet", index=False)  # ids in a plain first column
        return d / "c.parquet", []
    if fmt == "parquet-normalised":
        return write_matrix(m, d / "n.parquet", "parquet"), []
    if fmt == "long-csv":
        return write_matrix(m, d / "l.csv", "long"), []
    if fmt == "lmeval-samples":
        return _lmeval(m, d / "lmeval"), []
    raise AssertionError(fmt)


FORMATS = ["csv", "csv-items-as-rows", "tsv", "parquet-pandas", "parquet-column", "parquet-normalised",
           "long-csv", "lmeval-samples"]


@pytest.fixture(scope="module")
def bank(tmp_path_factory) -> Path:
    from sharpbench.adaptive.calibrate import calibrate_bank

    path = tmp_path_factory.mktemp("bank") / "bank.json"
    calibrate_bank(_canonical(), "toy", benchmark="toy").save(path)
    return path


def _commands(path: Path, flags: list[str], tmp: Path, bank: Path) -> dict[str, list[str]]:
    p = str(path)
    return {
        "irt fit": ["irt", "fit", p, *flags, "--format", "json"],
        "distill tiny": ["distill", "tiny", p, *flags, "--n-items", "5", "--method", "random", "--no-irt",
                         "--out", str(tmp / "tiny.json"), "--format", "json"],
        "rank": ["rank", p, *flags, "--method", "mean", "--n-boot", "0", "--format", "json"],
        "adaptive simulate": ["adaptive", "simulate", p, *flags, "--bank", str(bank), "--max-items", "4",
                              "--format", "json"],
        "calibrate": ["calibrate", "--tasks", "toy", "--from-matrix", p, *flags, "--no-task-check",
                      "--out", str(tmp / "b.json"), "--format", "json"],
        "predict": ["predict", "--responses", p, *flags, "--subset", str(tmp / "tiny.json"), "--estimator",
                    "weighted", "--format", "json"],
    }


def _models_seen(name: str, stdout: str) -> set[str]:
    """The models a command's JSON output (stdout; notes go to stderr) names."""
    data = json.loads(stdout)
    if name == "irt fit":
        return {r["model"] for r in data["abilities"]}
    if name in ("rank", "adaptive simulate"):
        return {r["model"] for r in data}
    if name == "predict":
        return {r["model"] for r in data["predictions"]}
    return set(MODELS)  # distill tiny / calibrate: a subset or a bank, checked from their files


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_command_accepts_every_matrix_format(fmt, tmp_path, bank):
    path, flags = _write(_canonical(), fmt, tmp_path)
    commands = _commands(path, flags, tmp_path, bank)
    for name, args in commands.items():  # distill tiny runs before predict, which reads its subset file
        res = runner.invoke(app, args)
        assert res.exit_code == 0, f"{name} on {fmt}: {res.output}"
        assert _models_seen(name, res.stdout) == set(MODELS), f"{name} on {fmt}"
    tiny = json.loads((tmp_path / "tiny.json").read_text())
    assert set(tiny["items"]) <= set(ITEMS)
    assert json.loads((tmp_path / "b.json").read_text())["info"]["calibration_models"] == MODELS


def test_irt_fit_reads_every_format_alike(tmp_path):
    """Same items, same abilities from every format (a pandas Parquet used to lose its first item to the ids)."""
    fits = {}
    for fmt in FORMATS:
        d = tmp_path / fmt
        d.mkdir()
        path, flags = _write(_canonical(), fmt, d)
        res = runner.invoke(app, ["irt", "fit", str(path), *flags, "--model", "1pl", "--format", "json"])
        assert res.exit_code == 0, res.output
        fit = json.loads(res.stdout)
        fits[fmt] = pd.Series({r["model"]: r["theta"] for r in fit["abilities"]}).sort_index()
    first = fits["csv"]
    assert list(first.index) == sorted(MODELS)
    for fmt, theta in fits.items():
        pd.testing.assert_series_equal(theta, first, check_names=False, atol=1e-6, obj=fmt)


# ------------------------------------------------------------------ the same errors everywhere
def _error_line(res) -> str:
    out = res.output
    assert res.exit_code != 0, out
    assert "Traceback" not in out, out
    lines = [ln for ln in out.splitlines() if ln.startswith("error: ")]
    assert len(lines) == 1, out
    return lines[0]


def _matrix_commands(p: str, tmp: Path, bank: Path) -> dict[str, list[str]]:
    return {
        "irt fit": ["irt", "fit", p],
        "matrix info": ["matrix", "info", p],
        "distill tiny": ["distill", "tiny", p, "--no-irt", "--out", str(tmp / "t.json")],
        "distill hard": ["distill", "hard", p, "--out", str(tmp / "h")],
        "rank": ["rank", p],
        "skills": ["skills", p],
        "adaptive simulate": ["adaptive", "simulate", p, "--bank", str(bank)],
        "calibrate": ["calibrate", "--tasks", "toy", "--from-matrix", p, "--no-task-check", "--out",
                      str(tmp / "b.json")],
        "predict": ["predict", "--responses", p, "--subset", str(tmp / "none.json")],
        "report": ["report", "--matrix", p, "-o", str(tmp / "r.html")],
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # pandas read the second q1 column as "q1.1": a silent extra item before issue #15
        ("model,q1,q1,q2\nm00,1,0,1\nm01,0,1,1\n", "duplicate item ids: 'q1' (1 id(s) occur more than once)"),
        ("model,q1,q2\nm00,1,0\nm00,0,1\n", "duplicate model ids: 'm00' (1 id(s) occur more than once)"),
        # no id column: the first item's 0/1 scores became model ids
        ("q1,q2,q3\n1,0,1\n0,1,1\n1,1,0\n", "duplicate model ids: '1' (1 id(s) occur more than once); the id "
         "column holds 0/1 scores, so the file seems to lack one: put the model ids in the first column"),
    ],
)
def test_bad_matrix_ids_give_one_error_everywhere(content, message, tmp_path, bank):
    path = tmp_path / "bad.csv"
    path.write_text(content)
    for name, args in _matrix_commands(str(path), tmp_path, bank).items():
        assert _error_line(runner.invoke(app, args)) == f"error: {path}: {message}", name


@pytest.fixture
def good_matrix(tmp_path) -> Path:
    return write_matrix(_canonical(), tmp_path / "good.csv", "csv")


def _item_commands(matrix: Path, items: Path, tmp: Path) -> dict[str, list[str]]:
    m, i = str(matrix), str(items)
    return {
        "distill tiny": ["distill", "tiny", m, "--item-meta", i, "--no-irt", "--out", str(tmp / "t.json")],
        "distill evaluate": ["distill", "evaluate", m, "--item-meta", i],
        "rank": ["rank", m, "--items", i],
        "skills": ["skills", m, "--items", i],
        "report": ["report", "--matrix", m, "--items", i, "-o", str(tmp / "r.html")],
        "calibrate": ["calibrate", "--tasks", "toy", "--from-matrix", m, "--items", i, "--out", str(tmp / "b.json")],
    }


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        # distill dropped the second row silently, insight refused without naming the id
        ([{"item_id": "toy/0", "subject": "a"}, {"item_id": "toy/0", "subject": "b"}],
         "duplicate item ids: 'toy/0' (1 id(s) occur more than once) in column 'item_id'"),
        ([{"name": "toy/0", "subject": "a"}],
         "no item id column (one of item, item_id, question_id, id); its columns: ['name', 'subject']"),
        # ids from another benchmark: distill attached nothing and went on
        ([{"question_id": 70, "subject": "a"}, {"question_id": 71, "subject": "b"}],
         "none of the matrix's 16 item ids occur in the item table (e.g. matrix ['toy/0', 'toy/1'], table "
         "['70', '71']); is it the right file, with the right id column?"),
    ],
)
def test_bad_item_tables_give_one_error_everywhere(rows, message, good_matrix, tmp_path):
    items = tmp_path / "items.jsonl"
    items.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    for name, args in _item_commands(good_matrix, items, tmp_path).items():
        if name == "calibrate" and "none of the matrix" in message:
            continue  # calibrate reads the table for question texts to check against the task; it joins nothing
        line = _error_line(runner.invoke(app, args))
        assert line.startswith("error: ") and line.endswith(message), (name, line)
        assert str(items) in line, (name, line)
