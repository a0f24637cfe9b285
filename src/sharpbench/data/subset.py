"""Subset tasks: a base task restricted to a list of item ids (what ``sharpbench distill`` writes).

Task file format (TOML or YAML)::

    [task]
    name = "mmlu_pro_hard"
    base = "mmlu_pro"              # a built-in task or another task file
    item_id_field = "question_id"  # item metadata field holding the ids ("" = the item's doc index)
    item_ids = ["70", "71", ...]

Items keep the base task's prompts (few-shot examples included) and its doc
indices as ``item_id``, so a subset's results line up with the full task's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sharpbench.data.base import Task
from sharpbench.data.errors import DataFileError, TaskError
from sharpbench.data.task import Item

__all__ = ["SubsetTask", "is_subset_config", "subset_task_from_config"]


class SubsetTask(Task):
    """A base :class:`Task` restricted to listed item ids, in the base task's order."""

    def __init__(self, base: Task, name: str, item_ids: list[str], id_field: str = "") -> None:
        super().__init__(base.spec, base.num_fewshot, base.fewshot_seed)
        if not item_ids:
            raise TaskError(f"subset task {name!r} lists no item ids")
        self._base = base
        self._name = name
        self._ids = [str(i) for i in item_ids]
        self._field = id_field
        self._subset: list[Item] | None = None

    @property
    def name(self) -> str:
        return self._name

    @property
    def base(self) -> Task:
        return self._base

    @property
    def group(self) -> str | None:
        return None

    @property
    def template_hash(self) -> str:
        payload = {"base": self._base.template_hash, "field": self._field, "ids": self._ids}
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()

    @property
    def n_docs(self) -> int:
        return len(self._selected())

    def __repr__(self) -> str:
        return f"SubsetTask({self._name!r}, base={self._base.name!r}, n_items={len(self._ids)})"

    def _key(self, item: Item) -> str:
        if not self._field:
            return str(item.item_id)
        if self._field not in item.metadata:
            raise TaskError(
                f"subset task {self._name!r}: base task {self._base.name!r} items have no metadata "
                f"field {self._field!r} (they have {sorted(item.metadata)})"
            )
        return str(item.metadata[self._field])

    def _selected(self) -> list[Item]:
        if self._subset is None:
            wanted = set(self._ids)
            # Build every base item so that seeded few-shot sampling matches the full task.
            chosen = [it for it in self._base.items() if self._key(it) in wanted]
            found = {self._key(it) for it in chosen}
            missing = [i for i in self._ids if i not in found]
            if missing:
                raise TaskError(
                    f"subset task {self._name!r}: {len(missing)} item id(s) not in base task "
                    f"{self._base.name!r}, e.g. {missing[:5]}"
                )
            self._subset = chosen
        return self._subset

    def items(self, limit: int | None = None) -> list[Item]:
        """The subset's items (first ``limit`` of them), in base-task order."""
        items = self._selected()
        if limit is not None:
            if limit < 0:
                raise TaskError(f"limit must be >= 0, got {limit}")
            items = items[: int(limit)]
        return list(items)


def is_subset_config(cfg: dict[str, Any]) -> bool:
    """True for a task file of the ``[task] base = ...`` form."""
    return isinstance(cfg.get("task"), dict) and "base" in cfg["task"]


def subset_task_from_config(
    cfg: dict[str, Any], path: Path, num_fewshot: int | None, get_task: Callable[..., Task]
) -> SubsetTask:
    """Resolve ``base`` with ``get_task`` (relative task files are relative to ``path``) and build the subset.

    ``get_task`` is :func:`sharpbench.data.registry.get_task`, passed in
    because the registry sits above this module (it resolves subset files).
    """
    t = cfg["task"]
    unknown = sorted(set(cfg) - {"task"}) + sorted(set(t) - {"name", "base", "item_id_field", "item_ids"})
    if unknown:
        raise DataFileError(f"{path}: unknown setting(s) {unknown} in a subset task file")
    ids = t.get("item_ids")
    if not isinstance(ids, list) or not ids:
        raise DataFileError(f"{path}: [task] item_ids must be a non-empty list")
    base_name = str(t["base"])
    candidate = (path.parent / base_name)
    if candidate.suffix.lower() in (".toml", ".yaml", ".yml") and candidate.is_file():
        base_name = str(candidate)
    base = get_task(base_name, num_fewshot=num_fewshot)
    name = str(t.get("name") or f"{base.name}_subset")
    return SubsetTask(base, name, [str(i) for i in ids], str(t.get("item_id_field", "")))
