"""Run an elicitation study: every method's prompts on every model x task, stored per item, then scored honestly.

Each prompt ("arm") is an ordinary stored run (``sharpbench eval``'s pipeline,
or ``sharpbench sensitivity``'s variant runs), so a rerun reads back what the
store has and an interrupted study resumes. The numbers come from
:mod:`sharpbench.elicit.stats`: held-out selection wherever a method chooses
among prompts, and paired bootstrap intervals over items.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sharpbench.elicit.errors import ElicitError
from sharpbench.elicit.extract import stated_letter, stated_number
from sharpbench.elicit.families import (
    DEFAULT_METHODS,
    SYSTEM_PROMPTS,
    Family,
    MethodSpec,
    family,
    gen_variants,
    mc_variants,
    parse_methods,
    sample_items,
)
from sharpbench.elicit.result import ElicitResult
from sharpbench.elicit.settings import ElicitSettings
from sharpbench.elicit.stats import canonical, majority_vote
from sharpbench.elicit.summary import Arm, summarize

LETTERS = "abcdefghij"


@dataclass
class _Cell:
    """One model x task while it runs."""

    backend: Any
    store: Any
    fam: Family
    units: list[tuple[str, int]]
    questions: list[Any]
    settings: ElicitSettings
    say: Callable[[str], None]
    arms: list[Arm] = field(default_factory=list)
    notes: dict[str, str] = field(default_factory=dict)
    gold: list[str | None] = field(default_factory=list)

    # ------------------------------------------------------------ running an arm through the pipeline
    def run(self, method: str, name: str, task_of: Callable[[str], Any], *, chat: Any = None,
            repeats: int | None = None, sample: bool = False) -> Arm:
        from sharpbench.engine.pipeline import prompt_style, run_eval, select_items

        self.say(f"{self.fam.name}: {name}")
        by_sub: dict[str, list[int]] = {}
        for sub, i in self.units:
            by_sub.setdefault(sub, []).append(i)
        tasks = {sub: _as_task(task_of(sub)) for sub in by_sub}
        if chat is not None and not chat.is_plain:
            style = prompt_style(self.backend, chat)
            tasks = {sub: t.with_style(style) for sub, t in tasks.items()}
        names = {t.name for t in tasks.values()}
        if len(names) != len(tasks):  # several subtasks share one arm task (not expected)
            raise ElicitError(f"arm {name}: subtasks map onto the same task")
        gen = any(t.kind == "generate_until" for t in tasks.values())
        gen_kwargs: dict[str, Any] = {}
        if self.settings.max_gen_toks and gen:
            gen_kwargs["max_gen_toks"] = self.settings.max_gen_toks
        if sample:
            gen_kwargs.update(do_sample=True, temperature=self.settings.sc_temperature)
        t0 = time.perf_counter()
        rep = run_eval(self.backend, list(tasks.values()), item_ids={tasks[s].name: ids for s, ids in by_sub.items()},
                       store=self.store, batch_size=self.settings.batch_size, gen_kwargs=gen_kwargs or None,
                       repeats=repeats if gen else None, seed=self.settings.seed if gen else None)
        run_of = {t.task: t.run_id for t in rep.tasks}
        computed = {t.task: t.n_computed for t in rep.tasks}
        seconds = self._cost([(run_of[tasks[s].name], computed[tasks[s].name], len(ids)) for s, ids in by_sub.items()],
                             time.perf_counter() - t0)
        results: dict[tuple[str, int], Any] = {}
        items: dict[tuple[str, int], Any] = {}
        with self.store.session():  # one turn on the store for every subtask's results
            for sub, ids in by_sub.items():
                for r in self.store.item_results(run_of[tasks[sub].name], ids):
                    results[(sub, r.item_id)] = r
        for sub, ids in by_sub.items():
            for it in select_items(tasks[sub], ids=ids):
                items[(sub, it.item_id)] = it
        answers, correct, gold, tokens, reads = [], [], [], 0, {}
        for k, u in enumerate(self.units):
            r, it = results[u], items[u]
            n_options = len(self.questions[k].options) if self.questions else 10
            a, c, g = self._read(r, it, n_options, reads, lenient=method != "plain")
            answers.append(a), correct.append(c), gold.append(g)
            tokens += _tokens(self.backend, it, r)
        if not self.gold:
            self.gold = gold
        arm = Arm(method, name, answers, np.asarray(correct, dtype=float), tokens, seconds,
                   next(iter(run_of.values())) if len(run_of) == 1 else None, reads)
        self.arms.append(arm)
        return arm

    def _cost(self, runs: Sequence[tuple[str | None, int, int]], elapsed: float) -> float | None:
        """Seconds this arm's items cost, also when (some of) them were computed in an earlier call.

        ``runs`` lists the arm's ``(run id, items computed in this call, items of the arm in that run)``;
        ``elapsed`` is this call's wall time.  Each run's compute time is kept as an ``elicit-cost``
        artifact (seconds and items computed, summed over the calls that computed its items; a call's time
        is split over its runs by items computed); the arm's cost is each run's seconds per item times the
        arm's items in it.  ``None`` when a run's items were computed without a record (e.g. by
        ``sharpbench eval`` into the same store) or outside a store.
        """
        if any(r is None for r, _, _ in runs):
            return None
        total = sum(n for _, n, _ in runs)
        with self.store.session():
            kept = {r: (self.store.artifacts(COST_CACHE, name=r) or [{"payload": None}])[0]["payload"]
                    for r, _, _ in runs}
            for r, n, _ in runs:
                if n:
                    old = kept.get(r) or {"seconds": 0.0, "items": 0}
                    kept[r] = {"seconds": old["seconds"] + elapsed * n / total, "items": old["items"] + n}
                    self.store.save_artifact(COST_CACHE, r, kept[r])
        cost = 0.0
        for r, _, n_arm in runs:
            rec = kept.get(r)
            if not rec or not rec["items"]:
                return None
            cost += rec["seconds"] / rec["items"] * n_arm
        return cost

    def _read(self, r: Any, item: Any, n_options: int, reads: dict[str, int], *,
              lenient: bool = True) -> tuple[str | None, float, str | None]:
        """(canonical answer, correct, canonical gold) of one stored item.

        A generated answer that misses the task's format is read by the answer it states
        (:func:`~sharpbench.elicit.extract.stated_letter` for multiple choice,
        :func:`~sharpbench.elicit.extract.stated_number` for gsm8k) unless ``lenient`` is off (the plain arm
        is scored exactly as lm-eval scores it); ``reads`` counts the samples read by the task's filter
        (``format``), by the stated answer (``stated``) and not at all (``unread``).
        """
        if getattr(r, "kind", "") == "generate_until":
            scoring = item.scoring
            filt = scoring.filters[0].name
            key = f"{scoring.metric.names[0]},{filt}"
            gold = canonical(r.gold, **self.fam.match)
            read = [self._gen_answer(smp, filt, n_options, reads, lenient) for smp in r.samples]
            answers = [a for a, _ in read]
            if len(r.samples) > 1:  # self-consistency: a majority over the samples' answers
                ans = majority_vote([[a] for a in answers])[0]
                return ans, float(ans is not None and ans == gold), gold
            if self.fam.is_mc or read[0][1] == "stated":
                return answers[0], float(answers[0] is not None and answers[0] == gold), gold
            return answers[0], float(r.metrics.get(key, 0.0)), gold
        ll = np.array([c.loglik for c in r.choices], dtype=float)
        if self.fam.mc_metric == "acc_norm":
            ll = ll / np.array([max(len(c), 1) for c in item.choices], dtype=float)
        return LETTERS[int(np.argmax(ll))], float(r.metrics[self.fam.mc_metric]), LETTERS[int(item.gold)]

    def _gen_answer(self, sample: Any, filt: str, n_options: int, reads: dict[str, int],
                    lenient: bool) -> tuple[str | None, str]:
        """One sample's canonical answer and how it was read (``format``, ``stated``, ``unread``)."""
        a = _answer(sample.extracted.get(filt), self.fam)
        if lenient:
            reads.setdefault("stated", 0)
        if self.fam.is_mc and a is not None and a not in LETTERS[:n_options]:
            a = None  # the filter kept more than an option letter (lm-eval's generative MMLU keeps the response)
        how = "format"
        if a is None:
            stated = None
            if lenient:
                text = sample.generation.text
                stated = stated_letter(text, n_options) if self.fam.is_mc else stated_number(text)
            a, how = (None, "unread") if stated is None else (canonical(stated, **self.fam.match), "stated")
        reads[how] = reads.get(how, 0) + 1
        return a, how

    # ------------------------------------------------------------ prompt variants of multiple choice
    def run_mc_variants(self, spec: str) -> None:
        from sharpbench.compare.sensitivity import predicted_choice, variant_results
        from sharpbench.compare.variants import build_item, chat_renderer, describe

        render = None
        for v in mc_variants(self.fam, spec):
            if v.chat:
                if not _has_chat_template(self.backend):
                    self.notes.setdefault("variants", "chat variants skipped: no chat template")
                    continue
                render = render or chat_renderer(self.backend.tokenizer)
            name = f"variant:{'letters' if v.name == 'plain' else v.name}"
            self.say(f"{self.fam.name}: {name}")
            vitems = [build_item(q, v, chat=render if v.chat else None) for q in self.questions]
            t0 = time.perf_counter()
            results, n_new, run_id = variant_results(self.backend, [vi.item for vi in vitems], self.store,
                                                     self.fam.name, describe([v])[0], self.questions,
                                                     self.settings.batch_size or 16, count_new=True)
            seconds = self._cost([(run_id, n_new, len(vitems))], time.perf_counter() - t0)
            answers, correct, tokens = [], [], 0
            for q, vi, r in zip(self.questions, vitems, results):
                k = vi.order[predicted_choice(r, vi.item)]
                answers.append(LETTERS[k]), correct.append(float(k == q.answer))
                tokens += _tokens(self.backend, vi.item, r)
            self.arms.append(Arm("variants", name, answers, np.asarray(correct), tokens, seconds))

    # ------------------------------------------------------------ the probe
    def run_probe(self) -> None:
        from sharpbench.elicit.probe import C_GRID, min_items, probe_held_out
        from sharpbench.engine.pipeline import select_items
        from sharpbench.models.hf.hidden import (
            answer_states,
            default_layers,
            num_layers,
            supports_hidden_states,
        )

        if not self.fam.is_mc:
            self.notes["probe"] = "skipped: free-form answers (the probe reads a choice among options)"
            return
        if len(self.units) < min_items():
            self.notes["probe"] = f"skipped: the probe needs at least {min_items()} items (raise --limit)"
            return
        if not supports_hidden_states(self.backend):
            self.notes["probe"] = f"skipped: the {self.backend.name} backend does not expose hidden states"
            return
        from sharpbench.data.registry import get_task

        key = _probe_key(self.backend, self.units, self.settings)
        cached = self.store.artifacts(PROBE_CACHE, name=key)
        if cached:  # the same model, items and probe settings: the stored per-item result
            p = cached[0]["payload"]
            self.arms.append(Arm("probe", "probe", [], np.asarray(p["correct"], dtype=float), int(p["tokens"]),
                                  p.get("seconds")))
            self.notes["probe"] = p["note"]
            return
        self.say(f"{self.fam.name}: probe")
        by_sub: dict[str, list[int]] = {}
        for sub, i in self.units:
            by_sub.setdefault(sub, []).append(i)
        items = {}
        for sub, ids in by_sub.items():
            for it in select_items(get_task(sub), ids=ids):
                items[(sub, it.item_id)] = it
        ordered = [items[u] for u in self.units]
        t0 = time.perf_counter()
        layers = default_layers(num_layers(self.backend))
        states = answer_states(self.backend, ordered, layers=layers, batch_size=self.settings.batch_size or 16)
        # ~100 training items against hundreds of hidden dimensions: the regularisation is chosen with the
        # layer, by cross-validation on the training half only
        res = probe_held_out(states, np.array([it.gold for it in ordered]), n_splits=self.settings.probe_splits,
                             seed=self.settings.seed, C=C_GRID, layers=layers)
        tokens = sum(_tokens(self.backend, it, None) for it in ordered)
        seconds = time.perf_counter() - t0
        self.arms.append(Arm("probe", "probe", [], np.asarray(res.correct, dtype=float), tokens, seconds))
        chosen = ", ".join(f"{k}: {v}" for k, v in sorted(res.layers_chosen.items()))
        self.notes["probe"] = f"held out over {res.n_splits} splits; layers chosen (layer: times) {chosen}"
        self.store.save_artifact(PROBE_CACHE, key, {"correct": [float(x) for x in res.correct], "tokens": tokens,
                                                    "note": self.notes["probe"], "seconds": seconds})


PROBE_CACHE = "elicit-probe"  # store artifact kind of probe results (hidden from the store report)
COST_CACHE = "elicit-cost"  # store artifact kind of each arm run's compute seconds (hidden from the store report)


def _probe_key(backend: Any, units: Sequence[tuple[str, int]], s: ElicitSettings) -> str:
    """Model weights, items and probe settings: what a stored probe result depends on."""
    import hashlib
    import json

    from sharpbench.elicit.probe import C_GRID

    raw = json.dumps([str(backend.fingerprint), str(backend.dtype), list(units), s.probe_splits, s.seed,
                      list(C_GRID), "v1"])
    return hashlib.sha256(raw.encode()).hexdigest()[:24]


def _as_task(t: Any) -> Any:
    from sharpbench.data.base import TaskSpec

    if isinstance(t, str):
        from sharpbench.data.registry import get_task

        return get_task(t)
    if isinstance(t, TaskSpec):
        from sharpbench.data.gen import make_task

        return make_task(t)
    return t


def _reads_note(reads: dict[str, int]) -> str:
    """How a generated arm's answers were read, e.g. "answers read: 146 in the task's format, 40 by the
    answer they state, 14 not read (of 200)"."""
    total = sum(reads.values())
    parts = [f"{reads.get('format', 0)} in the task's format"]
    if "stated" in reads:
        parts.append(f"{reads['stated']} by the answer they state")
    parts.append(f"{reads.get('unread', 0)} not read")
    return f"answers read: {', '.join(parts)} (of {total})"


def _answer(extracted: str | None, fam: Family) -> str | None:
    if extracted is None or extracted in ("", "[invalid]"):
        return None
    return canonical(extracted, **fam.match) or None


def _has_chat_template(backend: Any) -> bool:
    tok = getattr(backend, "tokenizer", None)
    return getattr(tok, "chat_template", None) is not None


def _tokens(backend: Any, item: Any, result: Any) -> int:
    """Tokens the model reads (prompt x samples) and writes for one item; 0 without a tokenizer."""
    tok = getattr(backend, "tokenizer", None)
    if tok is None:
        return 0

    def n(text: str) -> int:
        return len(tok(text, add_special_tokens=False)["input_ids"])

    if hasattr(item, "requests"):
        return sum(n(rq.context + rq.continuation) for rq in item.requests)
    samples = getattr(result, "samples", ()) or ()
    return n(item.prompt) * max(len(samples), 1) + sum(int(s.generation.n_tokens) for s in samples)


def _params(model: Any, backend: Any) -> float | None:
    from sharpbench.models.packaged import PACKAGED_MODELS

    spec = PACKAGED_MODELS.get(str(model).strip().lower()) if isinstance(model, str) else None
    if spec is not None:
        m = re.fullmatch(r"([\d.]+)([MB])", spec.params)
        if m:
            return float(m.group(1)) * (1e6 if m.group(2) == "M" else 1e9)
    net = getattr(backend, "model", None)
    if hasattr(net, "parameters"):
        return float(sum(p.numel() for p in net.parameters()))
    return None


def elicit(
    models: Sequence[Any],
    tasks: str | Sequence[str],
    *,
    methods: str | Sequence[str] = DEFAULT_METHODS,
    limit: int = 200,
    store: Any = None,
    settings: ElicitSettings | None = None,
    progress: Callable[[str], None] | None = None,
    load: Callable[[Any], Any] | None = None,
) -> ElicitResult:
    """Plain score, every method's honest score and the elicited maximum of each model on each task.

    Parameters
    ----------
    models : sequence of str or Backend
        Packaged names, paths, hub ids, or loaded backends.
    tasks : str or sequence of str
        Families: ``mmlu`` (or ``mmlu_<subject>``), ``arc_challenge``,
        ``agieval_en`` (or ``agieval_<subset>``), ``gsm8k_cot``.
    methods : str
        ``plain,variants,cot,self-consistency:K,system-prompts,vote,probe``
        (``plain`` is always run).
    limit : int
        Items per task (round-robin over subjects for MMLU and AGIEval).
    store : Store or path, optional
        Where every arm's per-item answers go (default: the default store).
    settings : ElicitSettings, optional
        Sampling temperature, seed, bootstrap and split counts, variant set.
    load : callable, optional
        ``load(model) -> Backend`` (default :func:`sharpbench.models.load_model`).
    """
    from sharpbench.store import DEFAULT_STORE, Store

    s = settings or ElicitSettings()
    s.methods = ",".join(m.label for m in parse_methods(methods))
    s.limit = limit
    specs = parse_methods(s.methods)
    fams = [family(t) for t in ([x.strip() for x in tasks.split(",") if x.strip()] if isinstance(tasks, str)
                                 else list(tasks))]
    if not fams:
        raise ElicitError("no task given")
    if not models:
        raise ElicitError("no model given")
    say = progress or (lambda m: None)
    samples = {f.name: sample_items(f, limit) for f in fams}  # bad tasks fail before any model loads
    for f in fams:
        if len(samples[f.name][0]) < 10:
            raise ElicitError(f"{f.name}: {len(samples[f.name][0])} items; held-out selection needs at least 10")
    if load is None:
        from sharpbench.models import load_model as load
    own = not isinstance(store, Store)
    st = Store(store if store is not None else DEFAULT_STORE, shared=True) if own else store
    out = ElicitResult(settings=s.to_dict())
    try:
        for model in models:
            backend = model if hasattr(model, "loglikelihood") else load(model)
            label = str(model) if isinstance(model, (str, Path)) else str(backend.model_id)
            for f in fams:
                units, questions = samples[f.name]
                cell = _Cell(backend, st, f, units, questions, s, lambda m, lab=label: say(f"{lab} {m}"))
                _run_methods(cell, specs)
                out.cells.append(summarize(
                    label, f.name, cell.arms, cell.gold, cell.notes, {m.name for m in specs}, n_boot=s.n_boot,
                    n_splits=s.n_splits, seed=s.seed, params=_params(model, backend),
                    instruct=_has_chat_template(backend), dtype=str(getattr(backend, "dtype", "")) or None))
    finally:
        if own:
            st.close()
    return out


def _run_methods(cell: _Cell, specs: Sequence[MethodSpec]) -> None:
    from sharpbench.data.chat import ChatSetup

    f = cell.fam
    names = {m.name for m in specs}
    chat = _has_chat_template(cell.backend)
    gen_chat = ChatSetup(apply_chat_template=True) if chat else None
    how = "in the chat template" if chat else "as plain text (no chat template)"
    cell.run("plain", "plain", lambda sub: sub)
    if "variants" in names:
        if f.is_mc:
            cell.run_mc_variants(cell.settings.variants)
        else:
            for spec in gen_variants(f):
                cell.run("variants", f"variant:{spec.name}", lambda sub, spec=spec: spec)
    if "system-prompts" in names:
        if chat:
            cell.run("system-prompts", "system:none", lambda sub: sub, chat=ChatSetup(apply_chat_template=True))
        for key, text in SYSTEM_PROMPTS.items():
            cell.run("system-prompts", f"system:{key}", lambda sub: sub,
                     chat=ChatSetup(apply_chat_template=chat, system_prompt=text))
        cell.notes["system-prompts"] = f"system messages {how}"
    if "cot" in names:
        direct = cell.run("direct", "direct", f.direct, chat=gen_chat)
        cot = cell.run("cot", "cot", f.cot, chat=gen_chat)
        cell.notes["direct"] = f"generated {how}; {_reads_note(direct.reads)}"
        cell.notes["cot"] = f"generated {how}; {_reads_note(cot.reads)}"
    for m in specs:
        if m.name == "self-consistency":
            sc = cell.run("self-consistency", f"sc@{m.k}", f.cot, chat=gen_chat, repeats=m.k, sample=True)
            cell.notes["self-consistency"] = (f"majority of {m.k} samples at temperature "
                                              f"{cell.settings.sc_temperature}, step by step {how}; "
                                              f"{_reads_note(sc.reads)}")
    if "probe" in names:
        cell.run_probe()
