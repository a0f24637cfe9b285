"""Score an in-memory model again and again: the evaluator of an optimisation loop.

:class:`Evaluator` wraps an already-loaded transformers model (plain, a peft
``PeftModel``, or one whose weights the caller edits in place), builds the task
plan and tokenizes every request once, then scores the pre-encoded requests on
every :meth:`Evaluator.score` call with the engine's backend (the packed
shared-prefix scorer), returning lm-eval's metrics and the per-item results.

>>> import sharpbench as sb                                                       # doctest: +SKIP
>>> ev = sb.Evaluator(model, tokenizer, tasks="piqa", limit=100)                  # doctest: +SKIP
>>> base = ev.reference_logprobs()                                                # doctest: +SKIP
>>> for trial in range(200):                                                      # doctest: +SKIP
...     edit(model)                                                               # doctest: +SKIP
...     acc = ev.score().metrics["piqa"]["acc_norm"][0]                           # doctest: +SKIP
...     kl = ev.kld(base)                                                         # doctest: +SKIP

First-token KL divergence is heretic's (p-e-w/heretic ``KLDivergence``): each
prompt in the chat template (system prompt "You are a helpful assistant.",
generation prompt), log-softmax of the next-token logits in float32, and
``F.kl_div(logp_now, logp_reference, reduction="batchmean", log_target=True)``,
i.e. the mean over prompts of KL(P_reference || P_now).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sharpbench.engine.batching import AUTO, DEFAULT_BATCH_SIZE, parse_batch_size, resolve_batch_size
from sharpbench.engine.metrics import item_metrics
from sharpbench.engine.pipeline import (
    TaskPlan,
    _ids_by_task,
    finish_run,
    plan_tasks,
    resolve_task_list,
    select_items,
    summarize,
    task_metric_names,
)
from sharpbench.engine.requests import EncodedItem, encode_item
from sharpbench.engine.results import ItemResult
from sharpbench.models.errors import ScoringError

__all__ = ["Evaluator", "EvaluatorScore", "IN_MEMORY_FINGERPRINT", "DEFAULT_SYSTEM_PROMPT"]

#: Fingerprint prefix of a stored in-memory call: ``"in-memory, edited:<label>"``.
IN_MEMORY_FINGERPRINT = "in-memory, edited:"
DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


@dataclass
class EvaluatorScore:
    """What :meth:`Evaluator.score` returns.

    Attributes
    ----------
    metrics : dict
        ``{task: {metric: (value, stderr)}}`` as :func:`~sharpbench.engine.pipeline.run_eval` reports them.
    results : dict
        ``{task: [ItemResult, ...]}`` in item-id order.
    elapsed_s : float
        Seconds the call took (scoring, plus storing when asked).
    run_ids : dict
        ``{task: run_id}`` of the stored runs (empty unless ``store=`` was given).
    """

    metrics: dict[str, dict[str, tuple[float, float]]]
    results: dict[str, list[ItemResult]]
    elapsed_s: float = 0.0
    run_ids: dict[str, str] = field(default_factory=dict)

    def metric(self, name: str = "acc_norm", task: str | None = None) -> float:
        """One metric's value (``task`` may be left out when there is a single task)."""
        if task is None:
            if len(self.metrics) != 1:
                raise ValueError(f"several tasks scored ({', '.join(self.metrics)}): name one")
            task = next(iter(self.metrics))
        return float(self.metrics[task][name][0])


@dataclass(frozen=True)
class _Batch:
    encoded: tuple[EncodedItem, ...]
    requests: tuple[Any, ...]


class Evaluator:
    """Score an already-loaded model on a fixed item set, tokenized once.

    Parameters
    ----------
    model : transformers model, peft.PeftModel or Backend
        A causal LM in memory (its current weights are scored on every call),
        or an already-built backend (then ``tokenizer`` may be None).
    tokenizer : transformers tokenizer
        The model's tokenizer.
    tasks : str, list of str or list of Task
        As :func:`~sharpbench.engine.pipeline.run_eval` takes them.
    limit : int, optional
        First ``limit`` documents of each task.
    item_ids : mapping task -> ids, or ids, optional
        Only these document ids.
    num_fewshot : int, optional
    batch_size : int or "auto"
        Items per backend call (as ``run_eval``; the results do not depend on it
        beyond floating-point noise).  ``"auto"``: per task, the largest batch
        that fits in free GPU memory (searched once, here, on CUDA; the
        default 16 on the CPU); the KL prompts then go 16 at a time.
    kld_prompts : sequence of str or "harmless", optional
        Prompts for :meth:`reference_logprobs` / :meth:`kld`; ``"harmless"`` is
        the shipped set of 100 everyday instructions.  Tokenized once.
    kld_limit : int, optional
        Use only the first ``kld_limit`` of ``kld_prompts``.
    system_prompt : str or None
        System turn of the KL chat prompts (heretic's default).
    model_id : str, optional
        Name recorded with stored runs.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        *,
        tasks: Any = "piqa",
        limit: int | None = None,
        item_ids: Mapping[str, Iterable[int]] | Iterable[int] | None = None,
        num_fewshot: int | None = None,
        batch_size: int | str = 16,
        kld_prompts: Sequence[str] | str | None = None,
        kld_limit: int | None = None,
        system_prompt: str | None = DEFAULT_SYSTEM_PROMPT,
        model_id: str | None = None,
    ) -> None:
        size = parse_batch_size(batch_size)
        if size is None:
            raise ValueError("batch_size must be a positive integer or 'auto', got None")
        self.backend = _backend(model, tokenizer, model_id)
        self.model = getattr(self.backend, "model", None)
        self.tokenizer = getattr(self.backend, "tokenizer", tokenizer)
        self.batch_size = DEFAULT_BATCH_SIZE["multiple_choice"] if size == AUTO else int(size)
        self.limit = limit
        task_list = resolve_task_list(tasks, num_fewshot)
        ids_by_task = _ids_by_task(item_ids, task_list)
        self._by_id = {t.name: ids_by_task.get(t.name) is not None for t in task_list}
        items_by_task = {t.name: select_items(t, limit, ids_by_task.get(t.name)) for t in task_list}
        self.plans: list[TaskPlan] = plan_tasks(self.backend, None, task_list, items_by_task, limit)
        # Tokenize once, in the runner's order (windows of items, longest packed row first), so that a
        # call batches the requests exactly as run_eval does.
        from sharpbench.engine.runner import default_window

        self._batches: dict[str, list[_Batch]] = {}
        self.n_truncated = 0
        self.batch_sizes: dict[str, int] = {}  # per task: the batch size (``"auto"`` resolved)
        for plan in self.plans:
            batches = []
            kind = getattr(plan.task, "kind", "multiple_choice")
            bs = self.batch_sizes[plan.task.name] = resolve_batch_size(self.backend, size, kind, plan.items)
            window = default_window(bs)
            if kind == "generate_until":
                self._batches[plan.task.name] = plan.items  # generated on every call (nothing to tokenize once)
                continue
            for start in range(0, len(plan.items), window):
                encoded = [encode_item(self.backend, it) for it in plan.items[start : start + window]]
                self.n_truncated += sum(e.n_truncated for e in encoded)
                ordered = sorted(encoded, key=lambda e: -e.packed_length)
                for b in range(0, len(ordered), bs):
                    chunk = tuple(ordered[b : b + bs])
                    batches.append(_Batch(chunk, tuple(r for e in chunk for r in e.requests)))
            self._batches[plan.task.name] = batches
        self._kld_inputs = None
        if kld_prompts is not None:
            self._kld_inputs = self._encode_prompts(kld_prompts, kld_limit, system_prompt)

    # ------------------------------------------------------------------ tasks
    @property
    def n_items(self) -> int:
        """Items scored per call, all tasks together."""
        return sum(len(p.items) for p in self.plans)

    def score(self, *, store: Any = None, label: str | None = None) -> EvalScore:
        """Score the model's current weights on the planned items.

        Parameters
        ----------
        store : Store, str or Path, optional
            Also store this call as a run per task; its fingerprint is
            ``"in-memory, edited:<label>"`` (the weights are not hashed).
        label : str
            Caller's name of this call (e.g. ``"trial-17"``); needed with ``store``.

        Returns
        -------
        EvaluatorScore
        """
        if store is not None and not label:
            raise ValueError("storing an in-memory call needs label= (e.g. label='trial-17'): it names the run")
        t0 = time.perf_counter()
        model = self.model
        was_training = bool(getattr(model, "training", False))
        if was_training:
            model.eval()
        try:
            results = {name: self._score_task(batches, self.batch_sizes[name])
                       for name, batches in self._batches.items()}
        finally:
            if was_training:
                model.train()
        metrics = {
            p.task.name: summarize(results[p.task.name], task_metric_names(p.task, results[p.task.name]))
            for p in self.plans
        }
        out = EvaluatorScore(metrics, results)
        if store is not None:
            out.run_ids = self._store(store, str(label), results)
        out.elapsed_s = time.perf_counter() - t0
        return out

    def _score_task(self, batches: list[_Batch], batch_size: int) -> list[ItemResult]:
        from sharpbench.models.hf.scoring import NonFiniteLogitsError

        if batches and getattr(batches[0], "kind", "") == "generate_until":  # generative items
            from sharpbench.engine.generation import generate_items

            with self.backend.prefix_session():  # no prefix states survive the call (weights change between calls)
                return sorted(generate_items(self.backend, batches, batch_size=batch_size),
                              key=lambda r: r.item_id)
        out: list[ItemResult] = []
        for batch in batches:
            try:
                scored = self.backend.loglikelihood(list(batch.requests))
            except NonFiniteLogitsError as err:
                raise ScoringError(f"non-finite logits while scoring on {self.backend.model_id}: {err}") from err
            if len(scored) != len(batch.requests):
                raise ScoringError(f"backend returned {len(scored)} results for {len(batch.requests)} requests")
            offset = 0
            for e in batch.encoded:
                choices = scored[offset : offset + len(e.requests)]
                offset += len(e.requests)
                metrics = item_metrics([c.loglik for c in choices], e.item.gold, e.item.choices)
                out.append(ItemResult(item_id=e.item.item_id, gold=e.item.gold, choices=tuple(choices),
                                      metrics=metrics))
        out.sort(key=lambda r: r.item_id)
        return out

    def _store(self, store: Any, label: str, results: Mapping[str, list[ItemResult]]) -> dict[str, str]:
        from types import SimpleNamespace

        from sharpbench.store import Store

        ident = SimpleNamespace(model_id=self.backend.model_id, fingerprint=f"{IN_MEMORY_FINGERPRINT}{label}",
                                name=self.backend.name, dtype=self.backend.dtype)
        plans = plan_tasks(ident, None, [p.task for p in self.plans], {p.task.name: p.items for p in self.plans},
                           self.limit)
        own = not isinstance(store, Store)
        st = Store(store, shared=True) if own else store
        try:
            run_ids = {}
            for plan in plans:
                meta = {it.item_id: dict(it.metadata) for it in plan.items if it.metadata}
                hashes = {it.item_id: it.content_hash for it in plan.items}
                gen = {it.item_id: it for it in plan.items if getattr(it, "kind", "") == "generate_until"}
                st.write_items(plan.spec, results[plan.task.name], meta, content_hashes=hashes, overwrite=True,
                               gen_items=gen or None)
                finish_run(st, plan.spec, "complete", "keep" if self._by_id[plan.task.name] else self.limit)
                run_ids[plan.task.name] = plan.spec.run_id
            return run_ids
        finally:
            if own:
                st.close()

    # ------------------------------------------------------------ KL divergence
    def _encode_prompts(self, prompts: Sequence[str] | str, limit: int | None, system_prompt: str | None):
        import torch

        if isinstance(prompts, str):
            if prompts != "harmless":
                raise ValueError(f"kld_prompts must be a list of prompts or 'harmless', got {prompts!r}")
            prompts = _harmless_prompts()
        prompts = [p for p in prompts if p and p.strip()][:limit] if limit else [p for p in prompts if p.strip()]
        if not prompts:
            raise ValueError("kld_prompts is empty")
        tok = self.tokenizer
        if tok is None or getattr(tok, "chat_template", None) is None:
            raise ValueError("first-token KL needs the tokenizer's chat template (an instruct model's tokenizer)")
        chats = [([{"role": "system", "content": system_prompt}] if system_prompt else [])
                 + [{"role": "user", "content": p}] for p in prompts]
        texts = tok.apply_chat_template(chats, add_generation_prompt=True, tokenize=False)
        ids = [tok(t, return_token_type_ids=False)["input_ids"] for t in texts]
        pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
        width = max(len(x) for x in ids)
        input_ids = torch.tensor([[pad] * (width - len(x)) + list(x) for x in ids], dtype=torch.long)
        mask = torch.tensor([[0] * (width - len(x)) + [1] * len(x) for x in ids], dtype=torch.long)
        position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
        return input_ids, mask, position_ids

    def reference_logprobs(self):
        """float32 log-probabilities of the first answer token on the ``kld_prompts``, shape (n, vocab).

        Call it on the unchanged model (or inside ``model.disable_adapter()``)
        and pass the result to :meth:`kld` after each edit.
        """
        import torch
        import torch.nn.functional as F

        if self._kld_inputs is None:
            raise ValueError("no KL prompts: pass kld_prompts= (a list, or 'harmless') to the Evaluator")
        input_ids, mask, position_ids = self._kld_inputs
        model = self.model
        if model is None:
            raise ValueError("first-token KL needs an in-memory transformers model")
        device = next(iter(model.parameters())).device
        out = []
        was_training = bool(getattr(model, "training", False))
        model.eval()
        try:
            with torch.inference_mode():
                for s in range(0, input_ids.shape[0], self.batch_size):
                    sl = slice(s, s + self.batch_size)
                    logits = model(input_ids=input_ids[sl].to(device), attention_mask=mask[sl].to(device),
                                   position_ids=position_ids[sl].to(device), use_cache=False).logits[:, -1, :]
                    out.append(F.log_softmax(logits.float(), dim=-1).cpu())
        finally:
            if was_training:
                model.train()
        return torch.cat(out, dim=0)

    def kld(self, reference) -> float:
        """Mean first-token KL(P_reference || P_now) over the prompts (heretic's ``batchmean`` value)."""
        import torch.nn.functional as F

        now = self.reference_logprobs()
        if tuple(reference.shape) != tuple(now.shape):
            raise ValueError(f"reference log-probs have shape {tuple(reference.shape)}, expected {tuple(now.shape)}")
        return float(F.kl_div(now, reference.to(now.dtype), reduction="batchmean", log_target=True).item())

    def __repr__(self) -> str:
        tasks = ",".join(p.task.name for p in self.plans)
        return f"Evaluator({self.backend.model_id!r}, tasks={tasks!r}, n_items={self.n_items})"


EvalScore = EvaluatorScore


def _backend(model: Any, tokenizer: Any, model_id: str | None) -> Any:
    from sharpbench.models.base import Backend

    if isinstance(model, Backend) and not hasattr(model, "get_output_embeddings"):
        return model
    if tokenizer is None:
        raise TypeError("Evaluator(model, tokenizer): pass the model's tokenizer with an in-memory model")
    from sharpbench.models.hf import HFBackend

    return HFBackend.from_model(model, tokenizer, model_id=model_id)


def _harmless_prompts() -> list[str]:
    from importlib import resources

    ref = resources.files("sharpbench.data").joinpath("files/compare/harmless_prompts.txt")
    return [ln.strip() for ln in ref.read_text(encoding="utf-8").splitlines() if ln.strip()]
