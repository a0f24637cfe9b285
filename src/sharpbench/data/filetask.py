"""Tasks defined by a small TOML or YAML file over a local data file (or a Hub data set).

Example ``my_task.toml``::

    name = "capitals"
    path = "capitals.jsonl"            # relative to this file; .jsonl .json .csv .tsv .parquet
    doc_to_text = "Question: {question}\\nAnswer:"   # str.format over the row's fields
    choices = "options"                # a field holding a list (in CSV: a JSON list) ...
    # choices = ["opt_a", "opt_b"]     # ... or several fields, one choice each
    gold = "answer"                    # 0-based index, a letter A-Z, or the choice text
    id = "qid"                         # optional: kept as metadata["id"]
    metric_names = ["acc", "acc_norm"]
    target_delimiter = " "

Instead of ``doc_to_text`` a ``question`` key names a field whose text is the
whole prompt. Instead of ``path``, ``hf_path`` (+ ``hf_name``, ``split``) loads a
Hub data set (needs ``datasets`` and internet). Other keys: ``description``,
``fewshot_delimiter``, ``group``, ``num_fewshot``, ``fewshot_path`` (few-shot pool,
first-n; default: the other rows of the data file), ``metadata_fields``, ``format``.

Gold values: an integer is an index; a string equal to one of the choices is
that choice; else a single letter ``A``-``Z`` is a letter index; else a string
of digits is an index.

A generative task (``output_type = "generate_until"``) has a ``target``
(a field, or a format string over the row: the reference answer, and the
answer text of few-shot examples) instead of ``choices``/``gold``, and takes
lm-eval's generation and scoring settings::

    name = "arith"
    path = "arith.jsonl"
    output_type = "generate_until"
    doc_to_text = "Q: {question}\nA:"
    target = "answer"
    until = ["\n"]                     # stop sequences
    max_gen_toks = 32
    num_fewshot = 2
    [[filter_list]]                    # lm-eval's filter_list (default: the first sample as is)
    name = "number"
    filter = [{function = "regex", regex_pattern = "(-?[0-9]+)"}, {function = "take_first"}]
    [[metric_list]]                    # lm-eval's metric_list (default: exact_match)
    metric = "exact_match"
    ignore_case = true

Other generative keys: ``gen_prefix``, ``repeats``, ``do_sample``, ``temperature``.
"""

from __future__ import annotations

import hashlib
import json
import string
import tomllib
import warnings
from pathlib import Path
from typing import Any

from sharpbench.data.base import Doc, TaskSpec
from sharpbench.data.errors import DataFileError, DataQualityWarning, TaskError
from sharpbench.data.readers import not_utf8, read_rows
from sharpbench.data.sources import hf_split

TASK_FILE_SUFFIXES = (".toml", ".yaml", ".yml")
_KNOWN_KEYS = {
    "name", "path", "format", "hf_path", "hf_name", "split", "doc_to_text", "question", "choices", "gold",
    "id", "metric_names", "target_delimiter", "fewshot_delimiter", "description", "group", "num_fewshot",
    "fewshot_path", "metadata_fields",
    # generative tasks
    "output_type", "target", "until", "max_gen_toks", "filter_list", "metric_list", "gen_prefix", "repeats",
    "do_sample", "temperature",
}  # fmt: skip
_GEN_ONLY = {"target", "until", "max_gen_toks", "filter_list", "metric_list", "gen_prefix", "repeats", "do_sample",
             "temperature"}


def is_task_file(name: str | Path) -> bool:
    return str(name).lower().endswith(TASK_FILE_SUFFIXES)


def read_task_file(path: Path) -> dict[str, Any]:
    """The configuration dict of a TOML/YAML task file (unknown keys are an error)."""
    if not path.is_file():
        raise DataFileError(f"task file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise not_utf8(path) from None
    if path.suffix.lower() == ".toml":
        try:
            cfg = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise DataFileError(f"{path}: invalid TOML ({exc})") from exc
    else:
        import yaml  # start-up time: only YAML task files need it

        try:
            cfg = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise DataFileError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(cfg, dict):
        raise DataFileError(f"{path}: a task file must be a table/mapping of settings")
    if isinstance(cfg.get("task"), dict) and "base" in cfg["task"]:
        return cfg  # a subset task file: validated by sharpbench.data.subset
    unknown = sorted(set(cfg) - _KNOWN_KEYS)
    if unknown:
        raise DataFileError(
            f"{path}: unknown setting(s) {unknown}; known: {sorted(_KNOWN_KEYS)}"
        )
    return cfg


def _format_fields(fmt: str) -> set[str]:
    names = set()
    for _, field, _, _ in string.Formatter().parse(fmt):
        if field:
            names.add(field.split(".")[0].split("[")[0])
    return names


def _resolve_gold(value: Any, choices: list[str]) -> int:
    if isinstance(value, bool):
        raise TaskError(
            f"gold value {value!r} is a boolean; give an index, a letter or the choice text"
        )
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        v = value.strip()
        if value in choices:
            return choices.index(value)
        if v in choices:
            return choices.index(v)
        if len(v) == 1 and "A" <= v <= "Z":
            return ord(v) - ord("A")
        if v.isdigit():
            return int(v)
    raise TaskError(
        f"gold value {value!r} is neither an index, a letter nor one of the choices {choices}"
    )


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise TaskError(
                f"choices field holds text that is not a JSON list: {value[:60]!r}"
            ) from exc
    if hasattr(value, "tolist"):
        value = value.tolist()
    if not isinstance(value, list | tuple):
        raise TaskError(f"choices field must be a list, got {type(value).__name__}")
    return list(value)


def file_task_spec(path: str | Path) -> tuple[TaskSpec, int]:
    """(spec, default num_fewshot) of a TOML/YAML task file."""
    path = Path(path).resolve()
    cfg = read_task_file(path)
    name = str(cfg.get("name") or path.stem)
    base = path.parent

    if "doc_to_text" in cfg and "question" in cfg:
        raise DataFileError(
            f"{path}: give either `doc_to_text` or `question`, not both"
        )
    if "doc_to_text" in cfg:
        template = str(cfg["doc_to_text"])
        text_fields = _format_fields(template)

        def doc_to_text(d: Doc) -> str:
            return template.format(**d)
    elif "question" in cfg:
        qfield = str(cfg["question"])
        text_fields = {qfield}

        def doc_to_text(d: Doc) -> str:
            return str(d[qfield])
    else:
        raise DataFileError(
            f"{path}: set `doc_to_text` (a format string) or `question` (a field name)"
        )

    output_type = str(cfg.get("output_type", "multiple_choice"))
    if output_type not in ("multiple_choice", "generate_until"):
        raise DataFileError(f"{path}: output_type must be multiple_choice or generate_until, got {output_type!r}")
    generative = output_type == "generate_until"
    if generative:
        if "target" not in cfg:
            raise DataFileError(f"{path}: a generate_until task needs `target` (a field or a format string)")
        if "choices" in cfg or "gold" in cfg:
            raise DataFileError(f"{path}: a generate_until task has a `target`, not `choices`/`gold`")
        target_cfg = str(cfg["target"])
        target_fields = _format_fields(target_cfg) or {target_cfg}
        choices_cfg: Any = []
    else:
        stray = sorted(_GEN_ONLY & set(cfg))
        if stray:
            raise DataFileError(f"{path}: {stray} apply to generative tasks; set output_type = \"generate_until\"")
        if "choices" not in cfg or "gold" not in cfg:
            raise DataFileError(f"{path}: `choices` and `gold` are required")
        choices_cfg = cfg["choices"]
    if generative:
        choice_fields: set[str] = set()

        def doc_to_choice(d: Doc) -> list[str]:
            return []
    elif isinstance(choices_cfg, str):
        choice_fields = {choices_cfg}

        def doc_to_choice(d: Doc) -> list[str]:
            return [str(c) for c in _as_list(d[choices_cfg])]
    elif isinstance(choices_cfg, list) and all(isinstance(c, str) for c in choices_cfg):
        choice_fields = set(choices_cfg)

        def doc_to_choice(d: Doc) -> list[str]:
            return [str(d[f]) for f in choices_cfg]
    else:
        raise DataFileError(
            f"{path}: `choices` must be a field name or a list of field names"
        )
    gold_field = str(cfg["gold"]) if not generative else None
    id_field = cfg.get("id")
    meta_fields = list(cfg.get("metadata_fields") or [])
    required = (
        text_fields
        | choice_fields
        | ({gold_field} if gold_field else target_fields)
        | ({id_field} if id_field else set())
        | set(meta_fields)
    )

    def load_file(p: Path) -> list[Doc]:
        rows, where = read_rows(p, cfg.get("format"))
        if not rows:
            raise DataFileError(f"{p}: the data file has no rows; there is nothing to evaluate")
        for row, loc in zip(rows, where, strict=True):
            missing = sorted(required - set(row))
            if missing:
                raise DataFileError(f"{p}: {loc}: missing field(s) {missing}")
        return _check_rows(p, rows)

    def _check_rows(p: Path, rows: list[Doc]) -> list[Doc]:
        """Duplicate ids and null choices are errors; a null prompt field renders as "" with a warning."""
        if id_field:
            seen: dict[Any, int] = {}
            dups: list[str] = []
            for row in rows:
                key = json.dumps(row[id_field], sort_keys=True, default=str)
                seen[key] = seen.get(key, 0) + 1
                if seen[key] == 2:
                    dups.append(str(row[id_field]))
            if dups:
                shown = ", ".join(dups[:10]) + (", ..." if len(dups) > 10 else "")
                raise DataFileError(
                    f"{p}: {len(dups)} id value(s) of field '{id_field}' occur more than once: {shown}; "
                    "ids must be unique"
                )
        null_choice = [
            i for i, row in enumerate(rows)
            if any(row[f] is None for f in choice_fields)
            or (isinstance(choices_cfg, str) and isinstance(row[choices_cfg], list | tuple)
                and any(c is None for c in row[choices_cfg]))
        ]
        if null_choice:
            raise DataFileError(
                f"{p}: {len(null_choice)} row(s) have a null choice (it would be scored as the text 'None'): "
                f"item ids {', '.join(map(str, null_choice[:10]))}{', ...' if len(null_choice) > 10 else ''}"
            )
        nulls: dict[str, list[int]] = {}
        out = []
        for i, row in enumerate(rows):
            empty = [f for f in sorted(text_fields) if f in row and row[f] is None]
            if empty:
                row = {**row, **{f: "" for f in empty}}
                for f in empty:
                    nulls.setdefault(f, []).append(i)
            out.append(row)
        if nulls:
            n = len({i for ids in nulls.values() for i in ids})
            detail = "; ".join(
                f"'{f}' in item ids {', '.join(map(str, ids[:10]))}{', ...' if len(ids) > 10 else ''}"
                for f, ids in sorted(nulls.items())
            )
            warnings.warn(
                f"{p.name}: {n} row(s) have a null prompt field, rendered as empty text (not 'None'): {detail}",
                DataQualityWarning,
                stacklevel=2,
            )
        return out

    def load(split: str) -> list[Doc]:
        if split == "fewshot":
            return load_file((base / cfg["fewshot_path"]).resolve())
        if "path" in cfg:
            return load_file((base / cfg["path"]).resolve())
        if "hf_path" in cfg:
            return hf_split(
                str(cfg["hf_path"]), cfg.get("hf_name"), str(cfg.get("split", "test"))
            )
        raise DataFileError(
            f"{path}: set `path` (a local data file) or `hf_path` (a Hub data set)"
        )

    def metadata(d: Doc) -> dict[str, Any]:
        meta = {f: d[f] for f in meta_fields}
        if id_field:
            meta["id"] = d[id_field]
        return meta

    def doc_to_target(d: Doc) -> int:
        return _resolve_gold(d[gold_field], doc_to_choice(d))

    digest = hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()
    source = str(cfg["path"]) if "path" in cfg else f"hf:{cfg.get('hf_path')}"
    if generative:
        return _generative_spec(path, cfg, name, load, doc_to_text, metadata, target_cfg, digest, source)
    metric_names = cfg.get("metric_names", ["acc", "acc_norm"])
    if isinstance(metric_names, str):
        metric_names = [metric_names]
    spec = TaskSpec(
        name=name,
        group=cfg.get("group"),
        load_docs=load,
        doc_to_text=doc_to_text,
        doc_to_choice=doc_to_choice,
        doc_to_target=doc_to_target,
        test_split="test",
        fewshot_split="fewshot" if "fewshot_path" in cfg else "test",
        fewshot_sampler="first_n",
        description=str(cfg.get("description", "")),
        target_delimiter=str(cfg.get("target_delimiter", " ")),
        fewshot_delimiter=str(cfg.get("fewshot_delimiter", "\n\n")),
        metric_names=tuple(str(m) for m in metric_names),
        template_version="sharpbench:file-task:1",
        doc_metadata=metadata,
        source=f"file:{path} -> {source}",
        extra_hash={"config_sha256": digest},
        strict_items=True,
    )
    return spec, int(cfg.get("num_fewshot", 0))


def _generative_spec(path, cfg, name, load, doc_to_text, metadata, target_cfg, digest, source):
    """The :class:`~sharpbench.data.gen.GenTaskSpec` of a ``generate_until`` task file."""
    from sharpbench.answers import AnswerScoring
    from sharpbench.data.gen import GenTaskSpec

    if _format_fields(target_cfg):
        def doc_to_target(d: Doc) -> str:
            return target_cfg.format(**d)
    else:
        def doc_to_target(d: Doc) -> str:
            return str(d[target_cfg])

    until = cfg.get("until", [])
    if isinstance(until, str):
        until = [until]
    try:
        scoring = AnswerScoring.from_lmeval_config(cfg.get("filter_list"), cfg.get("metric_list"))
        spec = GenTaskSpec(
            name=name, group=cfg.get("group"), load_docs=load, doc_to_text=doc_to_text, doc_to_target=doc_to_target,
            test_split="test", fewshot_split="fewshot" if "fewshot_path" in cfg else "test",
            fewshot_sampler="first_n", description=str(cfg.get("description", "")),
            target_delimiter=str(cfg.get("target_delimiter", " ")),
            fewshot_delimiter=str(cfg.get("fewshot_delimiter", "\n\n")), scoring=scoring,
            metric_names=tuple(scoring.metric_keys), until=tuple(str(u) for u in until),
            max_gen_toks=int(cfg.get("max_gen_toks", 256)), do_sample=bool(cfg.get("do_sample", False)),
            temperature=float(cfg.get("temperature", 0.0)), repeats=int(cfg.get("repeats", 1)),
            gen_prefix=str(cfg.get("gen_prefix", "")), template_version="sharpbench:file-task:gen:1",
            doc_metadata=metadata, source=f"file:{path} -> {source}", extra_hash={"config_sha256": digest},
            strict_items=True,
        )
    except (TypeError, ValueError) as exc:  # AnswerSpecError is a ValueError
        raise DataFileError(f"{path}: {exc}") from exc
    return spec, int(cfg.get("num_fewshot", 0))
