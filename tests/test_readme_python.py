"""The README's Python examples run as written (blocks after a ``<!-- test: python -->`` line)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
MARK = re.compile(r"<!-- test: python -->\s*\n```python\n(.*?)\n```", re.DOTALL)


def readme_blocks() -> list[str]:
    return MARK.findall(README.read_text(encoding="utf-8"))


def test_the_readme_has_tested_python_examples():
    blocks = readme_blocks()
    assert len(blocks) >= 3
    text = "\n".join(blocks)
    for name in ("sb.evaluate", "sb.Evaluator", "sb.TwoPL", "sb.ChatSetup", "sb.elicit_study"):
        assert name in text


@pytest.mark.slow
def test_readme_python_examples_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    namespace: dict = {"__name__": "readme"}
    for i, block in enumerate(readme_blocks()):
        exec(compile(block, f"README.md python block {i + 1}", "exec"), namespace)  # noqa: S102
    out = capsys.readouterr().out
    assert "piqa 5" in out
    assert "exact_match,flexible-extract" in out  # the generative example
    assert re.search(r"plain 0\.\d\d, elicited 0\.\d\d", out) and "probe 0." in out  # the elicitation example
    assert (tmp_path / "api-example.duckdb").exists()
    assert os.path.exists(tmp_path / "api-example.duckdb")
