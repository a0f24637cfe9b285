"""Task and item types: what a benchmark is, independent of where its data lives.

A *task* turns documents into :class:`Item` objects (one per scored question)
and each item into loglikelihood requests, exactly as lm-evaluation-harness
0.4.13 builds them for ``output_type: multiple_choice``.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any


@dataclass(frozen=True)
class Request:
    """One (context, continuation) pair to score; one per choice of an item.

    ``context`` already contains the few-shot examples and description;
    ``continuation`` already starts with the target delimiter (e.g. ``" "``).
    """

    context: str
    continuation: str


@dataclass(frozen=True)
class Item:
    """One scored question.

    Attributes
    ----------
    item_id : int
        Index of the document in its split (lm-eval's ``doc_id``).
    requests : tuple of Request
        One per choice, in choice order.
    gold : int
        Index of the correct choice.
    choices : tuple of str
        Choice strings as lm-eval's ``doc_to_choice`` returns them (used for
        acc_norm character lengths and acc_bytes).
    metadata : dict
        E.g. ``{"subject": "anatomy"}``.
    """

    item_id: int
    requests: tuple[Request, ...]
    gold: int
    choices: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    kind = "multiple_choice"  # the request kind (class attribute, not a field)

    def __post_init__(self) -> None:
        if not self.requests:
            raise ValueError(f"item {self.item_id}: empty choice list")
        if len(self.requests) != len(self.choices):
            raise ValueError(
                f"item {self.item_id}: {len(self.requests)} requests for {len(self.choices)} choices"
            )
        if not 0 <= self.gold < len(self.choices):
            raise ValueError(
                f"item {self.item_id}: gold index {self.gold} out of range for {len(self.choices)} choices"
            )

    @cached_property
    def content_hash(self) -> str:
        """Fingerprint of what the item is scored on: every request, the choices and the gold index.

        The store keeps it per item, so an item whose data changed (question,
        choices, answer, few-shot prompt) is recomputed instead of reused.
        """
        requests, prev = [], None
        for r in self.requests:  # a context repeated from the previous request is written once (null)
            requests.append([None if r.context == prev else r.context, r.continuation])
            prev = r.context
        blob = json.dumps([requests, list(self.choices), int(self.gold)], ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]

def check_text(task_name: str, items: list) -> None:
    """Raise :class:`~sharpbench.data.errors.DataFileError` if a prompt is not valid Unicode.

    A lone surrogate (e.g. a JSON ``"\\ud800"`` escape without its pair) cannot be
    encoded as UTF-8, so no tokenizer, store or terminal can take it; the message
    names the item, the choice and the character position.
    """
    from sharpbench.data.errors import DataFileError

    for it in items:
        kind = getattr(it, "kind", "multiple_choice")
        if kind == "generate_until":
            parts = [("prompt", "prompt", it.prompt)]
        elif kind == "loglikelihood_rolling":
            parts = [("text", "text", it.text)]
        else:
            parts = [(f"choice {j}", part, text) for j, r in enumerate(it.requests)
                     for part, text in (("context", r.context), ("continuation", r.continuation))]
        for where, part, text in parts:
            if text.isascii():
                continue
            try:
                text.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise DataFileError(
                    f"task {task_name}: item {it.item_id}, {where}: the {part} holds a lone surrogate "
                    f"{text[exc.start]!r} at character {exc.start} (not valid Unicode, e.g. a JSON "
                    "\\ud800 escape without its pair); fix the data file"
                ) from None


@dataclass(frozen=True)
class GenItem:
    """One generative question (request kind ``generate_until``).

    Attributes
    ----------
    item_id : int
        Index of the document in its split (lm-eval's ``doc_id``).
    prompt : str
        The full prompt: description, few-shot examples and the question,
        rendered through the chat template when one was asked for.
    target : str
        The reference answer (lm-eval's ``doc_to_target``), compared with the
        extracted answer by ``scoring``.
    scoring : sharpbench.answers.AnswerScoring
        Filter pipelines and metric (shared by the items of a task).
    until : tuple of str
        Stop sequences.
    max_gen_toks : int
    do_sample, temperature, top_p, top_k : sampling settings (greedy by default)
    repeats : int
        Samples per item (lm-eval's ``repeats``; self-consistency).
    seed : int
        Base seed of sampled generation (each sample derives its own from it, the item id and its index).
    messages : tuple of (role, content) or None
        The chat messages ``prompt`` was rendered from (chat endpoints take these).
    metadata : dict
    """

    item_id: int
    prompt: str
    target: str
    scoring: Any
    until: tuple[str, ...] = ()
    max_gen_toks: int = 256
    do_sample: bool = False
    temperature: float = 0.0
    top_p: float = 1.0
    top_k: int = 0
    repeats: int = 1
    messages: tuple[tuple[str, str], ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    seed: int = 1234

    kind = "generate_until"

    def __post_init__(self) -> None:
        if self.repeats < 1:
            raise ValueError(f"item {self.item_id}: repeats must be >= 1, got {self.repeats}")
        if self.max_gen_toks < 1:
            raise ValueError(f"item {self.item_id}: max_gen_toks must be >= 1, got {self.max_gen_toks}")

    @cached_property
    def content_hash(self) -> str:
        """Fingerprint of what the item is generated and scored on (prompt, target, settings, scoring).

        ``repeats`` is not part of it: more samples extend the stored ones.
        """
        blob = json.dumps(
            [self.prompt, self.target, list(self.until), self.max_gen_toks, self.do_sample, self.temperature,
             self.top_p, self.top_k, getattr(self.scoring, "key", repr(self.scoring)),
             [list(m) for m in self.messages] if self.messages else None, self.seed if self.do_sample else None],
            ensure_ascii=False,
        )
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]


def count_words(text: str) -> int:
    """Words of a text as lm-eval 0.4.13 counts them for ``word_perplexity`` (``re.split(r"\\s+", text)``)."""
    return len(re.split(r"\s+", text))


def count_bytes(text: str) -> int:
    """UTF-8 bytes of a text, lm-eval's ``count_bytes`` (for ``byte_perplexity`` and ``bits_per_byte``)."""
    return len(text.encode("utf-8"))


@dataclass(frozen=True)
class RollingItem:
    """One text scored whole (request kind ``loglikelihood_rolling``: perplexity, bits per byte).

    The engine splits the text into lm-eval's rolling windows of the model's
    context length and sums the log-likelihood of every token.

    Attributes
    ----------
    item_id : int
        Index of the document in its split (lm-eval's ``doc_id``).
    text : str
        The text to score (lm-eval's ``doc_to_target``).
    n_words, n_bytes : int, optional
        The word and byte counts the perplexities divide by; default: lm-eval's
        ``count_words`` / ``count_bytes`` of ``text`` (a task that overrides them
        passes its own counts).
    metadata : dict
    """

    item_id: int
    text: str
    n_words: int | None = None
    n_bytes: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    kind = "loglikelihood_rolling"

    def __post_init__(self) -> None:
        if not isinstance(self.text, str) or not self.text:
            raise ValueError(f"item {self.item_id}: a rolling-loglikelihood item needs a non-empty text")
        if self.n_words is None:
            object.__setattr__(self, "n_words", count_words(self.text))
        if self.n_bytes is None:
            object.__setattr__(self, "n_bytes", count_bytes(self.text))

    @cached_property
    def content_hash(self) -> str:
        """Fingerprint of what the item is scored on: the text and its word/byte counts."""
        blob = json.dumps([self.kind, self.text, int(self.n_words), int(self.n_bytes)], ensure_ascii=False)
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:32]
