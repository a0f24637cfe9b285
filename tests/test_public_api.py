"""``import sharpbench as sb``: every public name resolves, lazily."""

from __future__ import annotations

import subprocess
import sys

import sharpbench as sb


def test_every_name_in_all_resolves():
    missing = [name for name in sb.__all__ if getattr(sb, name, None) is None]
    assert not missing
    assert set(sb.__all__) <= set(dir(sb))


def test_entry_points_are_the_real_objects():
    from sharpbench.engine.evaluator import Evaluator
    from sharpbench.engine.pipeline import run_eval
    from sharpbench.models import load_model
    from sharpbench.store import Store

    assert sb.evaluate is run_eval and sb.Evaluator is Evaluator
    assert sb.load_model is load_model and sb.Store is Store


def test_import_stays_lazy():
    code = "import sys, sharpbench; print(any(m in sys.modules for m in ('torch', 'duckdb', 'transformers', 'numpy')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_unknown_attribute_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'evalute'"):
        sb.evalute  # noqa: B018


def test_elicit_study_is_the_function_not_the_package():
    import sharpbench.elicit.study as study  # importing the package must not shadow the public name

    assert sb.elicit_study is study.elicit and callable(sb.elicit_study)
