"""Find tasks by name: built-ins, groups (expanded), and TOML/YAML task files."""

from __future__ import annotations

import difflib
from pathlib import Path

from sharpbench.data.base import Task
from sharpbench.data.builtin import BUILTIN_GROUPS, BUILTIN_SPECS, GroupInfo
from sharpbench.data.errors import TaskError, UnknownTaskError
from sharpbench.data.gen import make_task
from sharpbench.data.lmeval_bridge import is_lmeval_name, load_lmeval_task
from sharpbench.data.filetask import file_task_spec, is_task_file, read_task_file
from sharpbench.data.subset import is_subset_config, subset_task_from_config


def list_tasks() -> list[str]:
    """Names of all built-in tasks, sorted."""
    return sorted(BUILTIN_SPECS)


def list_groups() -> dict[str, GroupInfo]:
    """Built-in groups by name."""
    return dict(BUILTIN_GROUPS)


def is_group(name: str) -> bool:
    return name in BUILTIN_GROUPS


def tasks_in_group(group: str) -> list[str]:
    """Member task names of a group, e.g. the 57 ``mmlu_*`` subjects of ``"mmlu"``."""
    if group not in BUILTIN_GROUPS:
        raise _unknown(group, kind="group")
    return list(BUILTIN_GROUPS[group].tasks)


def group_info(group: str) -> GroupInfo:
    """How a group aggregates (metric, size weighting) and its members."""
    if group not in BUILTIN_GROUPS:
        raise _unknown(group, kind="group")
    return BUILTIN_GROUPS[group]


def group_of(task: Task | str) -> str | None:
    """The top-level group a task belongs to (``Task.group``), or ``None``."""
    if isinstance(task, Task):
        return task.group
    return get_task(task).group


def _unknown(name: str, kind: str = "task or group") -> UnknownTaskError:
    pool = (
        list(BUILTIN_SPECS) + list(BUILTIN_GROUPS)
        if kind != "group"
        else list(BUILTIN_GROUPS)
    )
    close = difflib.get_close_matches(name, pool, n=3, cutoff=0.6)
    hint = (
        f" Did you mean: {', '.join(close)}?"
        if close
        else " Run `sharpbench tasks list` to see them."
    )
    return UnknownTaskError(f"unknown {kind} {name!r}.{hint}")


def get_task(name: str, num_fewshot: int | None = None) -> Task:
    """One task by registry name or by the path of a TOML/YAML task file.

    Raises
    ------
    UnknownTaskError
        For an unknown name (the message suggests close names) or a group name.
    """
    name = name.strip()
    if is_lmeval_name(name):  # lm-eval's own task loader (lm-eval installed)
        return load_lmeval_task(name, num_fewshot=num_fewshot)  # type: ignore[return-value]
    if is_task_file(name):
        return load_file_task(Path(name), num_fewshot=num_fewshot)
    factory = BUILTIN_SPECS.get(name)
    if factory is None:
        if name in BUILTIN_GROUPS:
            members = BUILTIN_GROUPS[name].tasks
            raise UnknownTaskError(
                f"{name!r} is a group of {len(members)} tasks (e.g. {members[0]}); "
                f"name one of them, or expand the group with resolve_tasks({name!r})"
            )
        raise _unknown(name)
    return make_task(factory(), num_fewshot=num_fewshot)


def resolve_tasks(names: str | list[str], num_fewshot: int | None = None) -> list[Task]:
    """Tasks for a comma-separated list (or list) of task names, group names and task files.

    Groups expand to their member tasks; duplicates are dropped, first occurrence
    kept. ``num_fewshot`` applies to every task (``None``: each task's default).
    """
    parts = [p.strip() for p in (names.split(",") if isinstance(names, str) else names)]
    parts = [p for p in parts if p]
    if not parts:
        raise TaskError("no task names given")
    out: list[Task] = []
    seen: set[str] = set()
    for part in parts:
        members = (
            BUILTIN_GROUPS[part].tasks
            if part in BUILTIN_GROUPS and not is_task_file(part) and not is_lmeval_name(part)
            else (part,)
        )
        for member in members:
            task = get_task(member, num_fewshot=num_fewshot)
            if task.name not in seen:
                seen.add(task.name)
                out.append(task)
    return out


def load_file_task(path: str | Path, num_fewshot: int | None = None) -> Task:
    """A :class:`Task` from a TOML/YAML task file (a data-file task or a subset of another task)."""
    cfg = read_task_file(Path(path))
    if is_subset_config(cfg):
        return subset_task_from_config(cfg, Path(path), num_fewshot, get_task)
    spec, default_shots = file_task_spec(path)
    return make_task(spec, default_shots if num_fewshot is None else num_fewshot)
