"""Per-item metrics and their aggregation; defined in :mod:`sharpbench.metrics` (re-exported here)."""

from sharpbench.metrics import (
    ITEM_METRICS,
    OPTIONAL_METRICS,
    MetricError,
    aggregate,
    aggregate_groups,
    common_metric_names,
    item_metrics,
    mean_stderr,
    pooled_stderr,
    summarize,
)

__all__ = [
    "ITEM_METRICS", "OPTIONAL_METRICS", "MetricError", "aggregate", "aggregate_groups", "item_metrics",
    "mean_stderr", "common_metric_names", "pooled_stderr", "summarize",
]
