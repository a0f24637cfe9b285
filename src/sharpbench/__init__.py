"""sharpbench: fast, sharp and honest measurement of language models.

The public Python API (``import sharpbench as sb``):

* evaluation: :func:`evaluate` (evaluate a model by name or an already-loaded
  backend, storing every item), :class:`Evaluator` (score an in-memory model
  again and again, e.g. inside an optimisation loop), :func:`load_model`,
  :func:`get_task`, :class:`Store`;
* analysis: :class:`ResponseMatrix`, the IRT estimators (:class:`OnePL`,
  :class:`TwoPL`, :class:`ThreePL`, :class:`FourPL`, :func:`estimate_abilities`),
  distillation (:func:`select_tiny`, :func:`select_hard`, :func:`estimate_scores`,
  :class:`ScorePredictor`) and adaptive testing (:class:`ItemBank`,
  :class:`AdaptiveTest`, :class:`StoppingRule`, :func:`calibrate_bank`).

Every name is imported lazily on first use so that ``import sharpbench`` (and
the CLI's ``--help``) stay fast.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    # evaluation
    "evaluate": ("sharpbench.engine.pipeline", "run_eval"),
    "EvalReport": ("sharpbench.engine.pipeline", "EvalReport"),
    "TaskReport": ("sharpbench.engine.pipeline", "TaskReport"),
    "ChatSetup": ("sharpbench.data.chat", "ChatSetup"),
    "GenerationRequest": ("sharpbench.results", "GenerationRequest"),
    "Generation": ("sharpbench.results", "Generation"),
    "GenItemResult": ("sharpbench.results", "GenItemResult"),
    "Evaluator": ("sharpbench.engine.evaluator", "Evaluator"),
    "EvaluatorScore": ("sharpbench.engine.evaluator", "EvaluatorScore"),
    "ItemResult": ("sharpbench.engine.results", "ItemResult"),
    "load_model": ("sharpbench.models", "load_model"),
    "Backend": ("sharpbench.models.base", "Backend"),
    "get_task": ("sharpbench.data.registry", "get_task"),
    "list_tasks": ("sharpbench.data.registry", "list_tasks"),
    "Store": ("sharpbench.store", "Store"),
    # response matrices
    "ResponseMatrix": ("sharpbench.matrix.core", "ResponseMatrix"),
    "MatrixError": ("sharpbench.matrix.core", "MatrixError"),
    "read_matrix": ("sharpbench.matrix", "read_matrix"),
    # item response theory
    "OnePL": ("sharpbench.irt", "OnePL"),
    "TwoPL": ("sharpbench.irt", "TwoPL"),
    "ThreePL": ("sharpbench.irt", "ThreePL"),
    "FourPL": ("sharpbench.irt", "FourPL"),
    "TorchTwoPL": ("sharpbench.irt", "TorchTwoPL"),
    "IRTFit": ("sharpbench.irt", "IRTFit"),
    "estimate_abilities": ("sharpbench.irt", "estimate_abilities"),
    # distillation
    "select_tiny": ("sharpbench.distill", "select_tiny"),
    "select_hard": ("sharpbench.distill", "select_hard"),
    "estimate_scores": ("sharpbench.distill", "estimate_scores"),
    "ScorePredictor": ("sharpbench.distill", "ScorePredictor"),
    # adaptive testing
    "ItemBank": ("sharpbench.adaptive", "ItemBank"),
    "AdaptiveTest": ("sharpbench.adaptive", "AdaptiveTest"),
    "StoppingRule": ("sharpbench.adaptive", "StoppingRule"),
    "calibrate_bank": ("sharpbench.adaptive.calibrate", "calibrate_bank"),
    # elicitation: the plain score against the best honest elicitation
    "elicit_study": ("sharpbench.elicit.study", "elicit"),  # sharpbench.elicit is the package
    "ElicitSettings": ("sharpbench.elicit.settings", "ElicitSettings"),
    "ElicitResult": ("sharpbench.elicit.result", "ElicitResult"),
    "combine_elicit": ("sharpbench.elicit.summary", "combine"),  # one study from results computed apart
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'sharpbench' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
