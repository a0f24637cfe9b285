"""The names a user chooses among: every analysis registry's keys, in one import-free module.

Each analysis builds (or checks) its registry from the tuple here, and the
command line builds its option choices and help text from the same tuple, so
the two cannot drift apart. The module imports nothing: the analysis
packages' ``__init__`` modules import numpy, pandas, scipy or torch, so a
names module inside them would cost the CLI a second or more at start-up
(``sharpbench --help`` reads every choice list).

Order matters: the first name is listed first in help text.
"""

from __future__ import annotations

__all__ = [
    "ABILITY_METHODS", "CALIBRATION_BINNINGS", "HARD_RANKINGS", "IRT_MODELS", "IRT_PRIORS", "MATRIX_FORMATS",
    "PERTURB_DIRECTIONS", "P_CORRECTIONS", "RANK_METHODS", "SELECTION_METHODS", "SKILL_SOURCES",
    "STORE_EXPORT_FORMATS", "TINY_ESTIMATORS", "TINY_METHODS",
]

#: IRT models (:data:`sharpbench.irt.models.MODELS`; it also accepts ``"rasch"`` for ``"1pl"``).
IRT_MODELS = ("1pl", "2pl", "3pl", "4pl")
#: Item-parameter priors (``"auto"`` picks one of :data:`sharpbench.irt.priors.PRESETS`, the others).
IRT_PRIORS = ("auto", "none", "weak", "strong")

#: Next-item rules of adaptive testing (:class:`sharpbench.adaptive.selection.SelectionRule`).
SELECTION_METHODS = ("fisher", "kl", "random")
#: Ability updates of adaptive testing (:class:`sharpbench.adaptive.cat.AdaptiveTest`).
ABILITY_METHODS = ("map", "eap")

#: Item rankings of the hard subset (:func:`sharpbench.distill.hard_rank.deletion_order`).
HARD_RANKINGS = ("ref-vs-others", "mean", "irt-difficulty", "irt-discrimination")
#: Selection methods of tiny subsets (:func:`sharpbench.distill.tiny.select_tiny`).
TINY_METHODS = ("anchor", "irt-info", "stratified", "random", "text", "cv")
#: Score estimators of tiny subsets (:func:`sharpbench.distill.estimators.estimate_scores`).
TINY_ESTIMATORS = ("weighted", "irt", "pirt", "gpirt")

#: Rank aggregation methods (:mod:`sharpbench.insight.rank`).
RANK_METHODS = ("mean", "borda", "kemeny", "bradley-terry")
#: Where skill labels come from (:mod:`sharpbench.insight.skills`).
SKILL_SOURCES = ("metadata", "embeddings", "rationales")
#: Multiple-comparison corrections (:func:`sharpbench.insight.stats.adjust_pvalues`): Holm,
#: Benjamini-Hochberg, Bonferroni.
P_CORRECTIONS = ("holm", "bh", "bonferroni")
#: Confidence bins of calibration (:func:`sharpbench.insight.calibration.reliability_table`): equal width,
#: equal mass.
CALIBRATION_BINNINGS = ("uniform", "quantile")

#: Ablation directions of ``perturb`` (:func:`sharpbench.compare.perturb.make_variants`): a random unit
#: vector, the mean residual of a prompt set, the difference of two sets' means.
PERTURB_DIRECTIONS = ("random", "mean", "diff")

#: Files ``Store.export`` writes (:mod:`sharpbench.store.export`).
STORE_EXPORT_FORMATS = ("parquet", "csv")
#: Response-matrix files :func:`sharpbench.matrix.io.write_matrix` writes: wide CSV, normalised long
#: Parquet, long CSV.
MATRIX_FORMATS = ("csv", "parquet", "long")
