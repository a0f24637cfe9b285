"""Build small stores and matrices for the report tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from sharpbench.engine.results import ChoiceResult, ItemResult
from sharpbench.matrix import ResponseMatrix

SHARED = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "response-matrices"


def make_store(path: Path, *, with_artifacts: bool = True) -> Path:
    """A store with three models x one task (40 items, 4 choices, subjects) plus one artifact of each kind."""
    from sharpbench.store import RunSpec, Store

    rng = np.random.default_rng(0)
    with Store(path) as store:
        for k, model in enumerate(["tiny-a", "tiny-b", "tiny-c"]):
            spec = RunSpec(model_id=model, fingerprint=f"fp{k}", backend="hf", dtype="float32",
                           task="toy_mmlu", num_fewshot=0, template_hash="t0")
            results, meta = [], {}
            for i in range(40):
                ll = rng.normal(-3, 1.5, 4)
                gold = int(rng.integers(0, 4))
                ll[gold] += 1.0 + k
                choices = tuple(ChoiceResult(float(x), bool(x == ll.max()), 2) for x in ll)
                acc = float(np.argmax(ll) == gold)
                results.append(ItemResult(i, gold, choices, {"acc": acc}))
                meta[i] = {"subject": ["algebra", "anatomy"][i % 2]}
            store.write_items(spec, results, meta)
            accs = np.array([r.metrics["acc"] for r in results])
            store.finish_run(spec.run_id, status="finished",
                             metrics={"acc": [accs.mean(), accs.std(ddof=1) / np.sqrt(len(accs))]})
        if with_artifacts:
            for kind, name, payload in artifact_payloads():
                store.save_artifact(kind, name, payload)
    return path


def artifact_payloads() -> list[tuple[str, str, dict]]:
    """Payloads in the shapes the analyses save (and one unknown kind)."""
    rng = np.random.default_rng(1)
    a, d = rng.uniform(0.5, 2, 20), rng.normal(0, 1, 20)
    models = [f"m{i}" for i in range(8)]
    return [
        ("irt", "toy-2pl", {"items": [{"item": f"q{i}", "a": a[i], "d": d[i]} for i in range(20)],
                            "abilities": [{"model": m, "theta": t, "se": 0.3} for m, t in zip(models, np.linspace(-1, 1, 8))]}),
        ("distill_hard", "toy-hard", {"method": "irt", "summary": [{"metric": "items", "baseline": 100, "subset": 20}],
                                      "scores": [{"model": m, "full": f, "subset": f * 0.8} for m, f in
                                                 zip(models, np.linspace(0.3, 0.8, 8))],
                                      "metrics": [{"model": m, "voter_penalty": v} for m, v in
                                                  zip(models, rng.uniform(0, 2, 8))]}),
        ("adaptive", "tiny-a:toy", {"summary": {"theta": 0.4, "se": 0.3},
                                    "trajectory": [{"item": f"q{i}", "response": 1.0, "theta": t, "se": s}
                                                   for i, (t, s) in enumerate(zip(np.linspace(0, 0.4, 10),
                                                                                  np.linspace(1, 0.3, 10)))]}),
        ("diff", "a-vs-b", {"base": "a", "modified": "b", "verdicts": ["toy acc -2.0 pts: drop"],
                            "deltas": [{"task": "toy", "metric": "acc", "delta": -0.02, "ci_low": -0.04,
                                        "ci_high": -0.001, "p_value": 0.03}]}),
        ("correlate", "vs-arena", {"reference": "arena", "table": [{"model": m, "arena": x, "acc": x + rng.normal(0, .1)}
                                                                  for m, x in zip(models, np.linspace(0, 1, 8))],
                                   "correlations": [{"metric": "acc", "kendall": 0.8, "spearman": 0.9}]}),
        ("sensitivity", "prompts", {"results": [{"variant": v, "acc": x, "ci_low": x - .03, "ci_high": x + .03}
                                                for v, x in zip(["default", "no-space", "lower"], [0.5, 0.45, 0.52])]}),
        ("mystery", "unknown-kind", {"note": "a kind the report does not know", "values": [1, 2, 3]}),
    ]


def small_matrix(n_items: int = 400) -> ResponseMatrix:
    """Real MMLU-Pro cells, first ``n_items`` items, with item metadata."""
    from sharpbench.matrix import read_matrix

    m = read_matrix(SHARED / "mmlu_pro_matrix.csv", items=SHARED / "mmlu_pro_items.jsonl")
    rng = np.random.default_rng(0)
    return m.select(items=np.sort(rng.choice(m.n_items, n_items, replace=False)))


def figure_attrs(html_text: str) -> list[dict[str, str]]:
    """data-title/-xlabel/-ylabel of every <figure class="plot"> (parsed with the stdlib parser)."""
    from html.parser import HTMLParser

    found: list[dict[str, str]] = []

    class P(HTMLParser):
        def handle_starttag(self, tag, attrs):
            a = dict(attrs)
            if tag == "figure" and "plot" in (a.get("class") or ""):
                found.append({k: a.get(k, "") for k in ("data-title", "data-xlabel", "data-ylabel")})

    P().feed(html_text)
    return found


MMLU_SUBJECTS = [f"subject_{i:02d}" for i in range(57)]


def _write_run(store, rng, *, model: str, backend: str, dtype: str, task: str, n: int, skill: float,
               group: str | None = None, fewshot: int = 0, subject: str | None = None) -> None:
    from sharpbench.store import RunSpec

    spec = RunSpec(model_id=model, fingerprint=f"fp-{model}-{backend}-{dtype}", backend=backend, dtype=dtype,
                   task=task, num_fewshot=fewshot, template_hash="t0", task_group=group)
    results, meta = [], {}
    for i in range(n):
        ll = rng.normal(-3, 1.5, 4)
        gold = int(rng.integers(0, 4))
        ll[gold] += skill
        choices = tuple(ChoiceResult(float(x), bool(x == ll.max()), 2) for x in ll)
        results.append(ItemResult(i, gold, choices, {"acc": float(np.argmax(ll) == gold)}))
        meta[i] = {"subject": subject or ["algebra", "anatomy", "biology"][i % 3]}
    store.write_items(spec, results, meta)
    accs = np.array([r.metrics["acc"] for r in results])
    se = accs.std(ddof=1) / np.sqrt(n) if n > 1 else None
    store.finish_run(spec.run_id, status="finished", metrics={"acc": [accs.mean(), se]})


def make_mixed_store(path: Path) -> Path:
    """A store shaped like a real one after a few days of use (rows written with the store API).

    * smollm2-135m on ``arc_easy`` (30 items) under hf/float32, hf/bfloat16 and llamacpp/q8_0, plus two
      other models (one near 100% so a ± 1.96 stderr interval would cross 1, one near 0%);
    * 57 one-item MMLU subject runs (task group ``mmlu``) of smollm2-135m hf/float32;
    * 3 prompt-sensitivity variant runs (task ``sensitivity:mmlu:<variant>``, one 5-shot) and their
      ``sensitivity`` artifact;
    * a ``calibration`` artifact per run (as ``sharpbench calibration --save`` writes them) and an
      ``adaptive`` artifact whose summary holds interval lists.
    """
    from sharpbench.insight.calibration import calibration_from_frames
    from sharpbench.store import Store

    rng = np.random.default_rng(18)
    with Store(path) as store:
        for backend, dtype in (("hf", "float32"), ("hf", "bfloat16"), ("llamacpp", "q8_0")):
            _write_run(store, rng, model="smollm2-135m", backend=backend, dtype=dtype, task="arc_easy", n=30,
                       skill=1.5)
        _write_run(store, rng, model="big-model", backend="hf", dtype="bfloat16", task="arc_easy", n=30, skill=9)
        _write_run(store, rng, model="broken-model", backend="hf", dtype="float32", task="arc_easy", n=30,
                   skill=-9)
        for s in MMLU_SUBJECTS:
            _write_run(store, rng, model="smollm2-135m", backend="hf", dtype="float32", task=f"mmlu_{s}", n=1,
                       skill=1.0, group="mmlu", subject=s)
        for v, k in (("default", 0), ("no-space", 0), ("five-shot", 5)):
            _write_run(store, rng, model="smollm2-135m", backend="hf", dtype="float32", task=f"sensitivity:mmlu:{v}",
                       n=12, skill=1.0, group="sensitivity:mmlu", fewshot=k)
        store.save_artifact("sensitivity", "smollm2-135m:mmlu", {
            "tasks": "mmlu", "variants": [{"name": v} for v in ("default", "no-space", "five-shot")],
            "models": [{"model": "smollm2-135m", "n_items": 12, "plain": 0.5, "accuracy":
                        {"default": 0.5, "no-space": 0.42, "five-shot": 0.58}, "mean": 0.5, "std": 0.065,
                        "spread": 0.16, "best_variant": "five-shot"}]})
        res = calibration_from_frames(store.choices_frame(), store.items_frame())
        runs = store.runs().set_index("run_id")
        for rid, v in res.items():
            name = f"{runs.loc[rid, 'model_id']} / {runs.loc[rid, 'task']} / {rid[:8]}"
            store.save_artifact("calibration", name, {**{m: x for m, x in v.items() if m != "reliability"},
                                                      "reliability": v["reliability"].to_dict(orient="records")})
        store.save_artifact("adaptive", "smollm2-135m:arc_easy-bank:20261206T120000", {
            "summary": {"n_items": 25, "theta": 0.41234567, "se": 0.2971, "theta_ci": [-0.170, 0.994],
                        "accuracy": 0.5612345, "accuracy_ci": [0.4123456, 0.5523456], "stopped": "se"},
            "trajectory": [{"item": f"q{i}", "response": 1.0, "theta": t, "se": s}
                           for i, (t, s) in enumerate(zip(np.linspace(0, 0.4, 10), np.linspace(1, 0.3, 10)))]})
    return path


def html_sections(text: str) -> dict[str, str]:
    """The report's ``<section>`` blocks by their ``<h2>`` title."""
    import re

    out = {}
    for block in re.findall(r"<section id=.*?</section>", text, flags=re.S):
        m = re.search(r"<h2>(.*?)</h2>", block)
        if m:
            out[m.group(1)] = block
    return out


# a real headless Chromium (the `browser` fixture is in conftest.py)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
NO_BROWSER = pytest.mark.skipif(CHROMIUM is None or DRIVER is None,
                                reason="apt-get install -y chromium chromium-driver to run the browser tests")
