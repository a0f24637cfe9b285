"""Benchmarks as tasks: documents -> items -> (context, continuation) requests.

Public API::

    from sharpbench.data import get_task, resolve_tasks, list_tasks, tasks_in_group

    task = get_task("arc_easy")            # or a path to a TOML/YAML task file
    items = task.items(limit=10)           # lm-eval --limit 10
    items[0].requests[0].context, items[0].requests[0].continuation
"""

from __future__ import annotations

from sharpbench.data.base import Task, TaskSpec
from sharpbench.data.builtin import GroupInfo
from sharpbench.data.errors import (
    DataFileError,
    MissingDataError,
    TaskError,
    UnknownTaskError,
)
from sharpbench.data.registry import (
    get_task,
    group_info,
    group_of,
    is_group,
    list_groups,
    list_tasks,
    load_file_task,
    resolve_tasks,
    tasks_in_group,
)
from sharpbench.data.task import Item, Request

__all__ = [
    "DataFileError",
    "GroupInfo",
    "Item",
    "MissingDataError",
    "Request",
    "Task",
    "TaskError",
    "TaskSpec",
    "UnknownTaskError",
    "get_task",
    "group_info",
    "group_of",
    "is_group",
    "list_groups",
    "list_tasks",
    "load_file_task",
    "resolve_tasks",
    "tasks_in_group",
]
