"""Benchmark distillation: hard/discriminative subsets (MAGI) and tiny subsets that predict full scores.

Entry points
------------
``select_hard`` / ``optimize_hard``   progressive deletion, voter penalty, padding, optuna search
``build_tiny`` / ``select_tiny``      anchor points, IRT information, strata, random, item texts
``estimate_scores``                   weighted, IRT, p-IRT and gp-IRT full-score estimates with CIs
``ScorePredictor``                    full score from subset answers, estimator chosen by cross-validation
``evaluate_tiny``                     k-fold over models against random subsets

Minimum numbers of models: hard subsets 4 (``MIN_MODELS_HARD``); IRT estimators
5 training models (``MIN_MODELS_IRT``); the cross-validated predictor 10 (``MIN_MODELS_PREDICT``); evaluation one
more than its training needs. Missing answers (NaN) are skipped in every mean
and treated as unadministered by the IRT estimators.
"""

from __future__ import annotations

from sharpbench.distill.errors import DistillError
from sharpbench.distill.estimators import ESTIMATORS, estimate_scores
from sharpbench.distill.evaluate import EvalResult, evaluate_tiny
from sharpbench.distill.hard import MIN_MODELS_HARD, HardResult, select_hard
from sharpbench.distill.hard_optimize import optimize_hard
from sharpbench.distill.hard_rank import RANKINGS, detect_guessers
from sharpbench.distill.predictor import MIN_MODELS_PREDICT, ScorePredictor, read_scores
from sharpbench.distill.tiny import TINY_METHODS, TinySubset, select_tiny
from sharpbench.distill.tiny_fit import MIN_MODELS_IRT, build_tiny

__all__ = [
    "ESTIMATORS",
    "MIN_MODELS_HARD",
    "MIN_MODELS_IRT",
    "MIN_MODELS_PREDICT",
    "RANKINGS",
    "TINY_METHODS",
    "DistillError",
    "EvalResult",
    "HardResult",
    "ScorePredictor",
    "TinySubset",
    "build_tiny",
    "detect_guessers",
    "estimate_scores",
    "evaluate_tiny",
    "optimize_hard",
    "read_scores",
    "select_hard",
    "select_tiny",
]  # fmt: skip
