"""Every lm-eval task, as it is: ``--tasks lmeval:NAME`` (or ``lmeval:/path/task.yaml``).

lm-evaluation-harness builds the task (its own task loader, prompts, few-shot
sampling, chat rendering) and its requests (``Task.build_all_requests`` as
``simple_evaluate`` calls it); sharpbench scores them with its own engine and
store; the per-document results go back to the task's own filter ensembles,
``process_results`` and aggregation functions, so the reported metrics are
lm-eval's by construction:

* ``multiple_choice`` / ``loglikelihood``: one :class:`~sharpbench.data.task.Item`
  per document whose requests are the document's instances'
  ``(context, continuation)`` pairs (in instance order); its stored per-item
  metrics are lm-eval's ``process_results`` values (:meth:`LMEvalChoiceItem.rescore`);
* ``generate_until``: one :class:`~sharpbench.data.task.GenItem` per document
  (prompt, ``until``, ``max_gen_toks`` and sampling from the instance's
  arguments, ``repeats`` from the task) whose ``scoring`` applies the task's
  filter ensembles and ``process_results`` (:class:`LMEvalScoring`);
* ``loglikelihood_rolling``: one :class:`~sharpbench.data.task.RollingItem`
  (the task's own word and byte counts).

:meth:`LMEvalTask.summarize` recomputes the task's metrics from the stored
results (log-likelihoods, generated texts) with ``process_results`` and
``task.aggregation()`` (``mean`` with lm-eval's closed-form stderr; other
aggregations, e.g. ``perplexity``, ``f1`` or corpus ``bleu``, their value with a
bootstrap stderr only when asked for).

Reported metric names: multiple choice, loglikelihood and rolling tasks report
``acc``, ``acc_norm``, ``perplexity``... as sharpbench's own tasks do (the
filter appended, ``"acc,<filter>"``, only for a filter other than lm-eval's
``"none"``); generative tasks report ``"<metric>,<filter>"`` as lm-eval does.

lm-eval is optional: without it ``lmeval:`` tasks fail with an error naming
``pip install lm-eval==0.4.13``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from sharpbench.answers.scoring import ScoredAnswers
from sharpbench.data.base import DEFAULT_FEWSHOT_SEED
from sharpbench.data.errors import TaskError, UnknownTaskError
from sharpbench.data.task import GenItem, Item, Request, RollingItem
from sharpbench.results import ItemResult

__all__ = [
    "LMEVAL_PIN",
    "PREFIX",
    "LMEvalChoiceItem",
    "LMEvalScoring",
    "LMEvalTask",
    "is_lmeval_name",
    "load_lmeval_task",
]

#: Task names with this prefix are built by lm-eval's task loader.
PREFIX = "lmeval:"
#: The lm-eval release whose semantics sharpbench mirrors.
LMEVAL_PIN = "0.4.13"
_INVALID = "[invalid]"
_TASK_MANAGER: Any = None


def is_lmeval_name(name: str) -> bool:
    """Whether ``name`` asks for an lm-eval task (``lmeval:NAME`` or ``lmeval:/path/task.yaml``)."""
    return isinstance(name, str) and name.strip().startswith(PREFIX)


def _lm_eval() -> Any:
    try:
        import lm_eval
        import lm_eval.tasks
    except ImportError as exc:
        raise TaskError(
            f"lmeval: tasks are built by lm-evaluation-harness, which is not installed "
            f"(pip install lm-eval=={LMEVAL_PIN}): {exc}"
        ) from None
    return lm_eval


def _default_manager() -> Any:
    global _TASK_MANAGER
    if _TASK_MANAGER is None:
        _TASK_MANAGER = _lm_eval().tasks.TaskManager()
    return _TASK_MANAGER


def _is_yaml(ref: str) -> bool:
    return ref.endswith((".yaml", ".yml"))


def _load_lm_task(ref: str, task_manager: Any = None) -> Any:
    """A fresh lm-eval task object for a task name or a task YAML path."""
    lm_eval = _lm_eval()
    if _is_yaml(ref):
        path = Path(ref).expanduser()
        if not path.is_file():
            raise TaskError(f"lm-eval task file {ref} not found")
        from lm_eval.tasks._yaml_loader import load_yaml

        try:
            cfg = load_yaml(str(path), resolve_func=False, recursive=True)
        except Exception as exc:  # noqa: BLE001 - lm-eval's YAML errors vary
            raise TaskError(f"lm-eval task file {ref}: {exc}") from None
        name = cfg.get("task") if isinstance(cfg, Mapping) else None
        if not isinstance(name, str):
            raise TaskError(f"lm-eval task file {ref} names no single task ('task: NAME'); groups are not supported")
        manager = lm_eval.tasks.TaskManager(include_path=[str(path.parent)], include_defaults=False)
    else:
        name, manager = ref, task_manager or _default_manager()
        _check_name(manager, name)
    try:
        loaded = manager.load([name])
    except (KeyError, ValueError) as exc:
        raise UnknownTaskError(f"lm-eval {lm_eval.__version__} has no task {name!r}: {exc}") from None
    except (ImportError, OSError, RuntimeError) as exc:  # its data set (offline, missing) or its code
        raise TaskError(f"lm-eval could not load task {name!r}: {type(exc).__name__}: {exc}") from None
    tasks = loaded["tasks"]
    if len(tasks) != 1 or loaded.get("groups"):
        raise TaskError(
            f"lmeval:{ref} is a group or tag of {len(tasks)} tasks; name its tasks one by one "
            f"(e.g. lmeval:{next(iter(tasks), '?')})"
        )
    return next(iter(tasks.values()))


def _check_name(manager: Any, name: str) -> None:
    """Fail before any data loads for an unknown name (with close names) or a group / tag."""
    import difflib

    import lm_eval

    groups = set(getattr(manager, "all_groups", ())) | set(getattr(manager, "all_tags", ()))
    if name in groups:
        raise TaskError(f"lmeval:{name} is an lm-eval group or tag; name its tasks one by one (lmeval:TASK)")
    known = getattr(manager, "all_subtasks", None)
    if known is not None and name not in known:
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
        hint = f" Did you mean: {', '.join('lmeval:' + c for c in close)}?" if close else ""
        raise UnknownTaskError(f"lm-eval {lm_eval.__version__} has no task {name!r}.{hint}")


def load_lmeval_task(
    name: str, num_fewshot: int | None = None, *, task_manager: Any = None, fewshot_seed: int = DEFAULT_FEWSHOT_SEED
) -> LMEvalTask:
    """The bridge task for ``lmeval:NAME`` / ``lmeval:/path/task.yaml`` (the prefix is optional here).

    Parameters
    ----------
    num_fewshot : int, optional
        As lm-eval's ``--num_fewshot`` (ignored for a task whose config fixes 0).
    task_manager : lm_eval.tasks.TaskManager, optional
        Where task names are looked up (default: every lm-eval task).
    """
    ref = name.strip()
    ref = ref.removeprefix(PREFIX)
    if not ref:
        raise TaskError("lmeval: needs a task name or a task YAML path, e.g. lmeval:arc_easy")
    return LMEvalTask(ref, num_fewshot=num_fewshot, task_manager=task_manager, fewshot_seed=fewshot_seed)


def _stable(obj: Any) -> Any:
    """JSON fallback that is the same in every process (functions by name, no memory addresses)."""
    if callable(obj):
        return f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', type(obj).__name__)}"
    return re.sub(r" at 0x[0-9a-fA-F]+", "", str(obj))


def _scalar(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    try:  # numpy scalars
        import numpy as np

        if isinstance(value, np.generic) and np.ndim(value) == 0:
            return float(value)
    except ImportError:  # pragma: no cover
        pass
    return None


class LMEvalTask:
    """An lm-eval task whose requests sharpbench's engine scores (see the module docstring).

    Parameters
    ----------
    ref : str
        lm-eval task name or task YAML path (without the ``lmeval:`` prefix).
    num_fewshot : int, optional
    task_manager : lm_eval.tasks.TaskManager, optional
    fewshot_seed : int
        lm-eval's ``fewshot_random_seed`` (1234 by default, as ``simple_evaluate``).
    options : sharpbench.data.gen.GenOptions, optional
        ``--gen-kwargs`` / ``--repeats`` / ``--seed`` (generative tasks).
    bootstrap_iters : int
        Bootstrap draws for the stderr of non-mean aggregations (0: none, NaN).
    """

    def __init__(self, ref: str, num_fewshot: int | None = None, *, task_manager: Any = None,
                 fewshot_seed: int = DEFAULT_FEWSHOT_SEED, options: Any = None, bootstrap_iters: int = 0) -> None:
        from sharpbench.data.gen import GenOptions

        self.ref = ref
        self._manager = task_manager
        self._num_fewshot_arg = num_fewshot
        self.fewshot_seed = int(fewshot_seed)
        self.options = options or GenOptions()
        self.bootstrap_iters = int(bootstrap_iters)
        self.style: Any = None
        self._lm = _load_lm_task(ref, task_manager)
        self._configure()
        self._items: list[Any] = []
        self._docs: dict[int, Any] = {}
        self._args: dict[int, list[tuple]] = {}

    # ------------------------------------------------------------------ lm-eval configuration
    def _configure(self) -> None:
        """Configure the lm-eval task as ``simple_evaluate`` does (gen kwargs, num_fewshot, seed)."""
        lm = self._lm
        if self.kind == "generate_until" and self.options.gen_kwargs:
            kw = {k: (list(v) if k == "until" else v) for k, v in self.options.gen_kwargs.items()}
            lm.set_config(key="generation_kwargs", value=kw, update=True)
        if self.kind == "generate_until" and self.options.repeats is not None:
            lm.set_config(key="repeats", value=int(self.options.repeats))
        n = self._num_fewshot_arg
        if n is not None:
            if lm.get_config("num_fewshot") != 0:
                lm.set_config(key="num_fewshot", value=int(n))
        elif lm.get_config("num_fewshot") is None:
            lm.set_config(key="num_fewshot", value=0)
        lm.set_fewshot_seed(seed=self.fewshot_seed)

    def _copy(self) -> LMEvalTask:
        new = copy.copy(self)
        new._lm = _load_lm_task(self.ref, self._manager)
        new._items, new._docs, new._args = [], {}, {}
        return new

    def with_options(self, options: Any) -> LMEvalTask:
        """The same task with other run options (``--gen-kwargs``, ``--repeats``, ``--seed``)."""
        new = self._copy()
        new.options = options
        new._configure()
        return new

    def with_style(self, style: Any) -> LMEvalTask:
        """The same task addressed through ``style`` (chat template, system prompt, few-shot as multi-turn).

        lm-eval renders the prompts itself (``build_all_requests(apply_chat_template=...)``)
        with the model's chat template, as ``HFLM.apply_chat_template`` does.
        """
        new = self._copy()
        new._configure()
        new.style = None if style is None or style.is_plain else style
        return new

    # ------------------------------------------------------------------ attributes the pipeline uses
    @property
    def lm_task(self) -> Any:
        """The lm-eval task object (configured; its instances are those of the last :meth:`items`)."""
        return self._lm

    @property
    def name(self) -> str:
        return PREFIX + str(self._lm.config.task)

    @property
    def kind(self) -> str:
        out = self._lm.OUTPUT_TYPE
        return "multiple_choice" if out == "loglikelihood" else out

    @property
    def output_type(self) -> str:
        """lm-eval's own output type (``loglikelihood`` is scored as sharpbench's multiple choice)."""
        return self._lm.OUTPUT_TYPE

    @property
    def num_fewshot(self) -> int:
        return int(self._lm.get_config("num_fewshot") or 0)

    @property
    def split(self) -> str:
        cfg = self._lm.config
        return str(cfg.test_split or cfg.validation_split or cfg.training_split or "?")

    @property
    def version(self) -> str | None:
        v = getattr(self._lm, "VERSION", None)
        if v is None:
            v = (self._lm.config.metadata or {}).get("version")
        return None if v is None else str(v)

    @property
    def group(self) -> str | None:
        return None

    @property
    def source(self) -> str:
        import lm_eval

        cfg = self._lm.config
        data = "/".join(str(x) for x in (cfg.dataset_path, cfg.dataset_name) if x)
        return f"lm-eval {lm_eval.__version__} task {cfg.task} ({data or 'custom data'})"

    @property
    def n_docs(self) -> int:
        return len(self._lm.eval_docs)

    @property
    def filter_names(self) -> list[str]:
        return [f.name for f in getattr(self._lm, "_filters", [])] or ["none"]

    @property
    def lm_metric_names(self) -> list[str]:
        """The task's metrics, lm-eval's names (``metric_list``; a custom ``process_results`` may add more)."""
        return list(self._lm._metric_fn_list)

    @property
    def metric_names(self) -> list[str]:
        return [self.metric_key(m, f) for f in self.filter_names for m in self.lm_metric_names]

    def metric_key(self, metric: str, filt: str) -> str:
        """The reported name of ``metric`` under filter ``filt`` (see the module docstring)."""
        if self.kind != "generate_until" and filt == "none":
            return metric
        return f"{metric},{filt}"

    def settings(self) -> dict[str, Any]:
        """Generation settings (generative tasks): lm-eval's ``generation_kwargs`` and ``repeats``."""
        kw = dict(self._lm.config.generation_kwargs or {})
        until = kw.get("until", [])
        return {
            "until": tuple([until] if isinstance(until, str) else until), "max_gen_toks": int(kw.get("max_gen_toks", 256)),
            "do_sample": bool(kw.get("do_sample", False)), "temperature": float(kw.get("temperature", 0.0)),
            "top_p": float(kw.get("top_p", 1.0)), "top_k": int(kw.get("top_k", 0) or 0),
            "repeats": int(self._lm.config.repeats or 1),
        }

    @property
    def template_hash(self) -> str:
        """sha256 of lm-eval's task config, the task version, num_fewshot, seed, chat setup and lm-eval's version."""
        import lm_eval

        payload = {
            "lm_eval": lm_eval.__version__,
            "config": self._lm.dump_config(),
            "version": self.version,
            "num_fewshot": self.num_fewshot,
            "fewshot_seed": self.fewshot_seed,
            "seed": self.options.seed if self.kind == "generate_until" else None,
            "chat": self.style.key if self.style is not None else None,
        }
        blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, default=_stable)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def __repr__(self) -> str:
        return f"LMEvalTask({self.name!r}, num_fewshot={self.num_fewshot}, split={self.split!r})"

    # ------------------------------------------------------------------ items
    def _chat_kwargs(self) -> dict[str, Any]:
        style = self.style
        if style is None:
            return {}
        setup = style.setup
        out: dict[str, Any] = {"system_instruction": setup.system_prompt,
                               "fewshot_as_multiturn": bool(setup.fewshot_as_multiturn)}
        if setup.apply_chat_template:
            from sharpbench.data.chat import render_chat

            tokenizer, model = style.tokenizer, style.model

            def chat_template(history: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
                return render_chat([(m["role"], m["content"]) for m in history], tokenizer,
                                   add_generation_prompt=add_generation_prompt, model=model)

            out.update(apply_chat_template=True, chat_template=chat_template,
                       tokenizer_name=getattr(tokenizer, "name_or_path", "").replace("/", "__"))
        return out

    def items(self, limit: int | None = None) -> list[Any]:
        """One sharpbench item per document: the first ``limit`` documents (all: ``None``)."""
        if limit is not None and limit < 0:
            raise TaskError(f"limit must be >= 0, got {limit}")
        n_total = self.n_docs
        n = n_total if limit is None else min(int(limit), n_total)
        if len(self._items) >= n:
            return self._items[:n]
        if n_total == 0:
            raise TaskError(f"task {self.name}: the '{self.split}' split has no documents; there is nothing to evaluate")
        lm = self._lm
        lm.set_fewshot_seed(seed=self.fewshot_seed)  # the sampler is stateful: the same shots on every build
        try:
            lm.build_all_requests(limit=n, rank=0, world_size=1, **self._chat_kwargs())
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise TaskError(f"task {self.name}: lm-eval could not build its requests: {exc}") from exc
        by_doc: dict[int, list[Any]] = defaultdict(list)
        for inst in lm.instances:
            by_doc[inst.doc_id].append(inst)
        items = []
        for doc_id in sorted(by_doc):
            insts = sorted(by_doc[doc_id], key=lambda i: i.idx)
            self._docs[doc_id] = insts[0].doc
            self._args[doc_id] = [tuple(i.arguments) for i in insts]
            items.append(self._item(doc_id, insts))
        self._items = items
        return items[:n]

    def _item(self, doc_id: int, insts: list[Any]) -> Any:
        lm, doc = self._lm, insts[0].doc
        out = lm.OUTPUT_TYPE
        if out == "generate_until":
            if len(insts) != 1:
                raise TaskError(f"task {self.name}, document {doc_id}: {len(insts)} generate_until requests")
            ctx, kw = insts[0].arguments
            kw = dict(kw or {})
            until = kw.get("until", [])
            until = [until] if isinstance(until, str) else list(until or [])
            target = lm.doc_to_target(doc)
            return GenItem(
                item_id=doc_id, prompt=str(ctx), target=str(target), scoring=LMEvalScoring(self, doc_id),
                until=tuple(until), max_gen_toks=int(kw.get("max_gen_toks", 256)),
                do_sample=bool(kw.get("do_sample", False)), temperature=float(kw.get("temperature", 0.0)),
                top_p=float(kw.get("top_p", 1.0)), top_k=int(kw.get("top_k", 0) or 0),
                repeats=int(insts[0].repeats or 1), seed=self.options.seed,
            )
        if out == "loglikelihood_rolling":
            (text,) = insts[0].arguments
            n_words, n_bytes = self._rolling_counts(doc)
            return RollingItem(item_id=doc_id, text=str(text), n_words=n_words, n_bytes=n_bytes)
        pairs = [tuple(i.arguments) for i in insts]
        requests = tuple(Request(str(c), str(x)) for c, x in pairs)
        conts = tuple(str(x) for _, x in pairs)
        gold = 0
        if out == "multiple_choice":
            gold = self._gold(doc, len(pairs))
        return LMEvalChoiceItem(item_id=doc_id, requests=requests, gold=gold, choices=conts, bridge=self)

    def _rolling_counts(self, doc: Any) -> tuple[int, int]:
        """The (words, bytes) the task's own ``process_results`` divides by (wikitext counts the raw page)."""
        lm = self._lm
        target = lm.doc_to_target(doc)
        words, nbytes = int(lm.count_words(target)), int(lm.count_bytes(target))
        try:
            out = lm.process_results(doc, [0.0])
        except Exception:  # noqa: BLE001 - a custom process_results; fall back on lm-eval's counts
            return words, nbytes
        for key, default in (("word_perplexity", None), ("byte_perplexity", None), ("bits_per_byte", None)):
            v = out.get(key, default)
            if isinstance(v, (tuple, list)) and len(v) == 2:
                if key == "word_perplexity":
                    words = int(v[1])
                else:
                    nbytes = int(v[1])
        return words, nbytes

    def _gold(self, doc: Any, n: int) -> int:
        lm = self._lm
        try:
            choices = lm.doc_to_choice(doc)
            gold = lm.doc_to_text(doc) if lm.multiple_input else lm.doc_to_target(doc)
            if isinstance(gold, list):
                gold = gold[0] if gold else 0
            if isinstance(gold, str):
                gold = choices.index(gold) if gold in choices else 0
            gold = int(gold)
        except (TypeError, ValueError, KeyError, IndexError):
            return 0
        return gold if 0 <= gold < n else 0

    # ------------------------------------------------------------------ lm-eval's scoring
    def doc(self, doc_id: int) -> Any:
        if doc_id not in self._docs:
            self.items(doc_id + 1)
        return self._docs[doc_id]

    def filtered(self, doc_id: int, resps: Sequence[Sequence[Any]]) -> dict[str, list[Any]]:
        """Apply the task's filter ensembles to one document's responses: filter -> per instance."""
        from lm_eval.api.instance import Instance

        doc = self.doc(doc_id)
        args = self._args[doc_id]
        if len(resps) != len(args):
            raise TaskError(f"task {self.name}, document {doc_id}: {len(resps)} results for {len(args)} requests")
        rtype = "loglikelihood" if self._lm.OUTPUT_TYPE == "multiple_choice" else self._lm.OUTPUT_TYPE
        insts = []
        for idx, (a, r) in enumerate(zip(args, resps, strict=True)):
            inst = Instance(request_type=rtype, doc=doc, arguments=a, idx=idx,
                            metadata=(self._lm.config.task, doc_id, len(r)))
            inst.resps = list(r)
            insts.append(inst)
        filters = getattr(self._lm, "_filters", None)
        if not filters:
            return {"none": [i.resps[0] for i in insts]}
        for f in filters:
            f.apply(insts)
        return {f.name: [i.filtered_resps[f.name] for i in insts] for f in filters}

    def process(self, doc_id: int, resps: Sequence[Sequence[Any]]) -> dict[str, dict[str, Any]]:
        """lm-eval's ``process_results`` of one document per filter: filter -> {metric: value}."""
        doc = self.doc(doc_id)
        return {f: dict(self._lm.process_results(doc, vals)) for f, vals in self.filtered(doc_id, resps).items()}

    def resps_of(self, result: Any) -> list[list[Any]]:
        """The per-instance responses of a stored result, as lm-eval's model would have returned them."""
        if self._lm.OUTPUT_TYPE == "generate_until":
            samples = sorted(result.samples, key=lambda s: s.index)
            return [[s.generation.text for s in samples]]
        if self._lm.OUTPUT_TYPE == "loglikelihood_rolling":
            return [[float(result.choices[0].loglik)]]
        return [[(float(c.loglik), bool(c.is_greedy))] for c in result.choices]

    def item_metrics(self, doc_id: int, resps: Sequence[Sequence[Any]]) -> dict[str, float]:
        """One document's numeric per-item metrics under their reported names."""
        out = {}
        for f, values in self.process(doc_id, resps).items():
            for m, v in values.items():
                x = _scalar(v)
                if x is not None:
                    out[self.metric_key(m, f)] = x
        return out

    def summarize(self, results: Sequence[Any]) -> dict[str, tuple[float, float]]:
        """The task's metrics over ``results`` with lm-eval's ``process_results`` and ``aggregation()``.

        Returns ``{name: (value, stderr)}``; stderr is lm-eval's closed form for
        ``mean`` (and ``acc_all``), a bootstrap for other aggregations when
        ``bootstrap_iters > 0``, else NaN.
        """
        from lm_eval.api import metrics as lm_metrics

        raw: dict[tuple[str, str], list[Any]] = defaultdict(list)
        for r in sorted(results, key=lambda r: r.item_id):
            for f, values in self.process(r.item_id, self.resps_of(r)).items():
                for m, v in values.items():
                    raw[(m, f)].append(v)
        aggregations = self._lm.aggregation() or {}
        closed = {lm_metrics.mean: lm_metrics.mean_stderr, lm_metrics.acc_all: lm_metrics.acc_all_stderr}
        out: dict[str, tuple[float, float]] = {}
        for (m, f), values in raw.items():
            agg: Callable = aggregations.get(m, lm_metrics.mean)
            value = float(agg(values))
            stderr = float("nan")
            se_fn = closed.get(agg)
            if se_fn is None and self.bootstrap_iters > 0:
                se_fn = lm_metrics.stderr_for_metric(agg, self.bootstrap_iters)
            if se_fn is not None and len(values) > 1:
                stderr = float(se_fn(values))
            out[self.metric_key(m, f)] = (value, stderr)
        order = {k: i for i, k in enumerate(self.metric_names)}
        return dict(sorted(out.items(), key=lambda kv: order.get(kv[0], len(order))))

    @property
    def scoring_key(self) -> str:
        """What every item's scoring depends on: the task's filters, metrics and process_results (its config)."""
        cfg = self._lm.dump_config()
        part = {k: cfg.get(k) for k in ("filter_list", "metric_list", "process_results", "doc_to_target")}
        blob = json.dumps([self.name, self.version, part], sort_keys=True, default=_stable)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class LMEvalChoiceItem(Item):
    """A multiple-choice / loglikelihood document of an lm-eval task (an :class:`Item` with lm-eval's metrics)."""

    def __init__(self, *, bridge: LMEvalTask, **fields: Any) -> None:
        super().__init__(**fields)
        object.__setattr__(self, "_bridge", bridge)

    def rescore(self, result: ItemResult) -> ItemResult:
        """``result`` with lm-eval's per-item metrics (its ``process_results``) instead of sharpbench's."""
        bridge = self._bridge
        metrics = bridge.item_metrics(self.item_id, bridge.resps_of(result))
        return ItemResult(item_id=result.item_id, gold=result.gold, choices=result.choices, metrics=metrics)


class LMEvalScoring:
    """A generative document's scoring by its lm-eval task: filter ensembles, then ``process_results``.

    Satisfies the :class:`~sharpbench.answers.scoring.AnswerScoring` duck type
    (``score``, ``key``, ``metric_keys``). ``gold`` is ignored: lm-eval's
    ``process_results`` reads the document itself.
    """

    def __init__(self, bridge: LMEvalTask, doc_id: int) -> None:
        self.bridge = bridge
        self.doc_id = doc_id

    @property
    def key(self) -> str:
        return self.bridge.scoring_key

    @property
    def metric_keys(self) -> tuple[str, ...]:
        return tuple(self.bridge.metric_names)

    def __repr__(self) -> str:
        return f"LMEvalScoring({self.bridge.name!r}, doc {self.doc_id})"

    def score(self, samples: Sequence[str], gold: Any = None, **_: Any) -> ScoredAnswers:
        if isinstance(samples, str) or not samples:
            raise ValueError("score needs a non-empty sequence of samples (strings)")
        b, doc_id = self.bridge, self.doc_id
        primary = b.lm_metric_names[0] if b.lm_metric_names else None
        answers, metrics = {}, {}
        whole = b.filtered(doc_id, [list(samples)])
        doc = b.doc(doc_id)
        for f, vals in whole.items():
            answers[f] = str(vals[0])
            for m, v in b._lm.process_results(doc, vals).items():
                x = _scalar(v)
                if x is not None:
                    metrics[b.metric_key(m, f)] = x
        extracted: dict[str, list[str]] = defaultdict(list)
        correct: dict[str, list[bool]] = defaultdict(list)
        unextracted: dict[str, list[bool]] = defaultdict(list)
        sample_metrics: dict[str, list[float]] = defaultdict(list)
        for s in samples:
            for f, vals in b.filtered(doc_id, [[s]]).items():
                text = str(vals[0])
                extracted[f].append(text)
                unextracted[f].append(text == _INVALID)
                values = b._lm.process_results(doc, vals)
                for m, v in values.items():
                    x = _scalar(v)
                    if x is not None:
                        sample_metrics[b.metric_key(m, f)].append(x)
                p = _scalar(values.get(primary)) if primary is not None else None
                correct[f].append(p is not None and not math.isnan(p) and p == 1.0)
        return ScoredAnswers(
            answers=answers, metrics=metrics,
            extracted={k: tuple(v) for k, v in extracted.items()},
            correct={k: tuple(v) for k, v in correct.items()},
            unextracted={k: tuple(v) for k, v in unextracted.items()},
            sample_metrics={k: tuple(v) for k, v in sample_metrics.items()},
        )
