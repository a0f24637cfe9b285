"""A cell's numbers from its arms, and one study from results computed apart.

:func:`summarize` turns the arms of one model x task (each arm's per-item answers
and correctness) into a :class:`~sharpbench.elicit.result.CellResult`: the vote
over the prompt arms, every method's held-out score and paired gain, the
elicited maximum and its ratio to the plain score.  The study calls it once per
cell; :func:`combine` calls it again when two results hold arms of the same cell
(other methods computed in another call or session), so that a study built in
pieces gives the numbers one call would have given.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from sharpbench.elicit.errors import ElicitError
from sharpbench.elicit.result import ArmScore, CellResult, Comparison, ElicitResult, MethodScore, spent_seconds
from sharpbench.elicit.settings import ElicitSettings
from sharpbench.elicit.stats import answer_prior, cell_stats, half_splits, majority_vote

PROMPT_METHODS = ("plain", "variants", "system-prompts", "direct", "cot")  # single prompts, greedy
# a cell's methods, in the order the study runs their arms and the tables show them
METHOD_ORDER = ("plain", "variants", "system-prompts", "direct", "cot", "self-consistency", "best-prompt", "vote",
                "probe", "prior")
BASELINES = ("probe", "prior")  # read-outs, not ways of asking: never part of the elicited maximum
PRIOR_NOTE = ("baseline: the answer most often right in one half of the items, given to every item of the other "
              "(held out); a read-out that knows only the answer distribution scores this")
# settings that shape a result's numbers; combining results that differ in any other setting is refused
FREE_SETTINGS = ("methods", "batch_size")


@dataclass
class Arm:
    """One arm while a cell is summarized: per-item answers (``None``: not read) and correctness."""

    method: str
    name: str
    answers: list[str | None]
    correct: np.ndarray
    tokens: int = 0
    seconds: float | None = None
    run_id: str | None = None
    reads: dict[str, int] = field(default_factory=dict)  # generated multiple choice: answers read each way


def summarize(model: str, task: str, arms: list[Arm], gold: Sequence[str | None], notes: dict[str, str],
              methods: Collection[str], *, n_boot: int, n_splits: int, seed: int, params: float | None = None,
              instruct: bool | None = None, dtype: str | None = None) -> CellResult:
    """One cell's result from its arms.

    Parameters
    ----------
    arms : list of Arm
        Every computed arm (not the vote: it is formed here when ``"vote"`` is in
        ``methods`` and there are at least 3 prompt arms).  Appended to in place.
    gold : sequence of str or None, length n_items
        The canonical right answer of each item (what the vote is scored against).
    notes : dict
        Method -> note (how it ran, or why it was skipped); the vote's note is set here.
    methods : collection of str
        The method names asked for (``self-consistency`` without its ``:k``).
    n_boot, n_splits, seed
        Bootstrap resamples, held-out splits and their seed (:func:`~sharpbench.elicit.stats.cell_stats`).
    """
    n = len(gold)
    for a in arms:
        if len(a.correct) != n or (a.answers and len(a.answers) != n):
            raise ElicitError(f"{model} on {task}: arm {a.name} covers {len(a.correct)} items, the cell {n}")
    prompt_arms = [a for a in arms if a.method in PROMPT_METHODS]
    if "vote" in methods and len(prompt_arms) >= 3:
        plain_idx = next(i for i, a in enumerate(prompt_arms) if a.name == "plain")
        vote = majority_vote([a.answers for a in prompt_arms], prefer=plain_idx)
        correct = np.array([float(v is not None and v == g) for v, g in zip(vote, gold)])
        arms.append(Arm("vote", "vote", vote, correct, 0, None))
        notes["vote"] = f"majority over {len(prompt_arms)} prompts' answers (ties: the plain prompt's)"
    elif "vote" in methods:
        notes["vote"] = "skipped: a vote needs at least 3 prompts (add variants, cot or system-prompts)"
    if any(a.method == "probe" for a in arms):  # the probe's baseline: does it read more than the answer prior?
        if all(g is not None for g in gold):
            arms.append(Arm("prior", "prior", [], answer_prior(gold, half_splits(n, n_splits, seed)), 0, None))
            notes["prior"] = PRIOR_NOTE
        else:
            notes["prior"] = "skipped: some items' gold answers are unknown (a result saved before cells kept them)"
    correct = {a.name: a.correct for a in arms}
    groups: dict[str, list[str]] = {}
    for a in arms:
        groups.setdefault(a.method, []).append(a.name)
    if "variants" in groups:
        groups["variants"] = ["plain"] + groups["variants"]
    prompt_methods = {a.method for a in prompt_arms} - {"plain"}
    if len(prompt_methods) > 1:  # one method alone is its own best prompt
        groups["best-prompt"] = [a.name for a in prompt_arms]
    compare = []
    if "vote" in groups:
        compare.append(("vote", "best-prompt" if "best-prompt" in groups else next(iter(prompt_methods))))
    if "probe" in groups:
        compare.append(("probe", "elicited"))
        if "prior" in groups:
            compare.append(("probe", "prior"))
    st = cell_stats(correct, groups, elicit_from=[a.name for a in arms if a.method not in BASELINES],
                    compare=compare, n_boot=n_boot, n_splits=n_splits, seed=seed)
    rows = []
    for m in METHOD_ORDER:
        if m in groups:
            members = [a for a in arms if a.name in groups[m]]
            e, g = st.methods[m], st.gains[m]
            best = max(members, key=lambda a: a.correct.mean()).name
            # what the method adds to the plain prompt (a vote costs the prompts it votes over)
            paid = prompt_arms if m == "vote" else [a for a in members if m == "plain" or a.name != "plain"]
            rows.append(MethodScore(
                method=m, score=e.value, low=e.low, high=e.high, gain=g.value, gain_low=g.low, gain_high=g.high,
                n_arms=len(members), best_arm=best, tokens=sum(a.tokens for a in paid),
                seconds=spent_seconds(paid),  # known when every arm it pays for is
                note=notes.get(m),
            ))
        elif m in notes:
            rows.append(MethodScore(method=m, score=None, note=notes[m]))
    accs = np.array([a.correct.mean() for a in prompt_arms])
    ratio = st.ratio
    return CellResult(
        model=model, task=task, n_items=n,
        plain=st.plain.value, plain_low=st.plain.low, plain_high=st.plain.high,
        elicited=st.elicited.value, elicited_low=st.elicited.low, elicited_high=st.elicited.high,
        ratio=None if ratio is None else ratio.value, ratio_low=None if ratio is None else ratio.low,
        ratio_high=None if ratio is None else ratio.high,
        best_method=max((r for r in rows if r.score is not None and r.method not in BASELINES),
                        key=lambda r: r.score).method,
        prompt_std=float(accs.std(ddof=1)) if accs.size > 1 else 0.0,
        prompt_range=float(accs.max() - accs.min()) if accs.size else 0.0,
        methods=rows,
        arms=[ArmScore(a.method, a.name, float(a.correct.mean()), len(a.correct), a.tokens, a.seconds, a.run_id,
                       list(a.answers), [float(x) for x in a.correct]) for a in arms],
        comparisons=[Comparison(a, b, e.value, e.low, e.high) for (a, b), e in st.comparisons.items()],
        params=params, instruct=instruct, dtype=dtype, gold=list(gold),
    )


def gold_from_arms(arms: Sequence[ArmScore], n_items: int) -> list[str | None]:
    """Each item's right answer where some arm answered it right (``None`` elsewhere).

    For results saved before cells kept their gold answers.  What a vote needs is
    exact: a vote's answer is one of the arms' answers, so it is right exactly when
    an arm gave that answer and was right.

    Raises
    ------
    ElicitError
        When two arms were right with different answers on one item (not answers in one canonical form).
    """
    gold: list[str | None] = [None] * n_items
    for a in arms:
        if a.method == "vote" or not a.answers:
            continue
        for j, (ans, c) in enumerate(zip(a.answers, a.correct)):
            if c == 1 and ans is not None:
                if gold[j] is not None and gold[j] != ans:
                    raise ElicitError(f"item {j}: arms are right with answers {gold[j]!r} and {ans!r}; "
                                      "the cell's gold answer is unknown")
                gold[j] = ans
    return gold


def merge_cells(cells: Sequence[CellResult], settings: dict) -> CellResult:
    """One cell from several results' arms of the same model x task x dtype.

    An arm two results both hold must agree item by item (the same stored run,
    read twice); the vote is formed again over every prompt arm, and every
    number is recomputed with ``settings``' bootstrap and splits, as one call
    computing every arm would have.

    Raises
    ------
    ElicitError
        On cells of different item counts, an arm saved without its per-item
        answers, or an arm whose answers differ between results.
    """
    first = cells[0]
    default = ElicitSettings()  # a setting the saved result lacks has its default
    where = f"{first.model} on {first.task}"
    arms: dict[str, ArmScore] = {}
    ran: dict[str, str | None] = {}  # method -> note, from a result that computed it
    skipped: dict[str, str] = {}  # method -> why a result skipped it
    gold: list[str | None] | None = None
    for c in cells:
        if c.n_items != first.n_items:
            raise ElicitError(f"{where}: results cover {first.n_items} and {c.n_items} items; "
                              "merge cells of the same items")
        for a in c.arms:
            if a.method in ("vote", "prior"):  # formed again from the merged arms
                continue
            if not _kept_per_item(a, c.n_items):
                raise ElicitError(f"{where}: arm {a.arm} was saved without its per-item answers; "
                                  "save results with per_item=True to combine their cells")
            old = arms.get(a.arm)
            if old is not None and (old.correct != a.correct or old.answers != a.answers):
                diff = sum(x != y for x, y in zip(old.correct, a.correct))
                raise ElicitError(f"{where}: arm {a.arm} differs between results ({diff} items scored "
                                  "differently); they were not computed from the same run")
            arms.setdefault(a.arm, a)
        for m in c.methods:
            if m.skipped:
                skipped.setdefault(m.method, m.note or "skipped")
            elif m.method not in ran or ran[m.method] is None:
                ran[m.method] = m.note
        if c.gold:
            if gold is not None and gold != c.gold:
                raise ElicitError(f"{where}: results disagree on the items' gold answers")
            gold = list(c.gold)
    ordered = sorted(arms.values(), key=lambda a: METHOD_ORDER.index(a.method))  # the study's arm order
    if gold is None:
        gold = gold_from_arms(ordered, first.n_items)
    computed = {a.method for a in ordered}
    methods = set(ran) | set(skipped)
    # a method's note comes from a result that ran it; a skip stands only where no result ran it (the vote is
    # formed again over every prompt arm, with its own note)
    notes = {m: t for m, t in ran.items() if m in computed and t is not None}
    notes.update({m: t for m, t in skipped.items() if m not in computed and m not in ("vote", "prior")})
    params = next((c.params for c in cells if c.params is not None), None)
    instruct = next((c.instruct for c in cells if c.instruct is not None), None)
    return summarize(first.model, first.task,
                     [Arm(a.method, a.arm, list(a.answers), np.asarray(a.correct, dtype=float), a.tokens, a.seconds,
                          a.run_id) for a in ordered],
                     gold, notes, methods, n_boot=int(settings.get("n_boot", default.n_boot)),
                     n_splits=int(settings.get("n_splits", default.n_splits)),
                     seed=int(settings.get("seed", default.seed)),
                     params=params, instruct=instruct, dtype=first.dtype or "float32")


def _kept_per_item(arm: ArmScore, n_items: int) -> bool:
    """Whether ``arm`` kept its per-item scores and (but for the probe, prior and vote) its answers."""
    return len(arm.correct) == n_items and (arm.method in ("probe", "prior", "vote") or len(arm.answers) == n_items)


def _per_item(cell: CellResult) -> bool:
    """Whether every arm of ``cell`` kept its per-item scores and answers (see :func:`_kept_per_item`)."""
    return bool(cell.arms) and all(_kept_per_item(a, cell.n_items) for a in cell.arms)


def combine(results: Sequence[ElicitResult]) -> ElicitResult:
    """One study from results computed apart (other models, tasks or methods, other calls or sessions).

    Their settings must agree on everything that shapes a number (items, splits,
    bootstrap, variants, sampling; not the batch size); the methods are the
    union.  A model x task x dtype cell that several results hold is merged
    (:func:`merge_cells`): its arms are united and its numbers recomputed, so the
    methods of one cell may come from different calls.  A cell that only one
    result holds is recomputed the same way when it kept its per-item answers,
    so saved results gain what this version adds (the probe's answer prior);
    the numbers they had are unchanged.  Cells saved before results recorded
    their dtype count as float32.

    Raises
    ------
    ElicitError
        On no result, settings that differ, or cells that cannot be merged.
    """
    if not results:
        raise ElicitError("combine needs at least one result")
    settings = dict(results[0].settings)
    methods = list(dict.fromkeys(m for r in results for m in str(r.settings.get("methods", "")).split(",") if m))
    for r in results[1:]:
        for k in set(settings) | set(r.settings):
            if k not in FREE_SETTINGS and settings.get(k) != r.settings.get(k):
                raise ElicitError(f"results differ in setting {k!r}: {settings.get(k)!r} vs {r.settings.get(k)!r}; "
                                  "their numbers are not comparable")
    settings["methods"] = ",".join(methods)
    groups: dict[tuple[str, str, str], list[CellResult]] = {}
    for r in results:
        for c in r.cells:
            groups.setdefault((c.model, c.task, c.dtype or "float32"), []).append(c)
    # a cell kept with its per-item answers is recomputed (as one call of this version would give it: the
    # answer prior of a probe cell saved before it existed included); one saved without them stays as saved
    cells = [merge_cells(g, settings) if len(g) > 1 or _per_item(g[0]) else g[0] for g in groups.values()]
    return ElicitResult(cells=cells, settings=settings)
