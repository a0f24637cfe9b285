"""Chat templates with lm-evaluation-harness 0.4.13 semantics, for generation and multiple choice.

What ``--apply-chat-template``, ``--system-prompt`` and ``--fewshot-as-multiturn``
do to a prompt, replicated from ``lm_eval.api.task.ConfigurableTask`` (``fewshot_context``,
``build_qa_turn``, ``construct_requests``), ``lm_eval.api.utils`` (``maybe_delimit``,
``multiturn_to_singleturn``) and ``HFLM.apply_chat_template``:

1. *Turns.* The system prompt and the task description form one system turn,
   ``maybe_delimit(system_prompt, description, fewshot_delimiter)`` (joined by the
   few-shot delimiter unless either side has whitespace at the seam). Each few-shot
   example is a user turn (the question, followed by the target delimiter in plain
   text) and an assistant turn (the answer, followed by the few-shot delimiter). The
   question is a last user turn; with a ``gen_prefix`` an assistant turn holding the
   prefix follows it.
2. *Plain text* (no chat template): the turns concatenated with their delimiters. A
   system prompt therefore still applies, glued to what follows (lm-eval adds no
   separator: ``"Be brief.Q: ..."``).
3. *Chat messages.* With ``fewshot_as_multiturn`` every turn is a message (without
   delimiters). Without it, everything between the system message and a trailing
   gen-prefix assistant message is collapsed into one user message: the plain text
   of those turns, the last one without its delimiter.
4. *Rendering.* ``tokenizer.apply_chat_template(messages, tokenize=False,
   add_generation_prompt=not gen_prefix, continue_final_message=bool(gen_prefix))``;
   if the template raises a ``jinja2`` ``TemplateError`` (e.g. "System role not
   supported") the system messages are dropped and it is rendered again.
5. *Multiple choice under a chat template.* The continuation of each choice is
   ``target_delimiter + choice`` only when the task has a ``gen_prefix`` that does not
   end in whitespace; otherwise it is the bare choice (the context ends with the
   template's assistant header, e.g. ``"<|im_start|>assistant\\n"``). Multiple-input
   tasks (Winogrande) render one context per option with an empty target delimiter
   on the question turn.

The chat template's fingerprint is lm-eval's ``chat_template_sha``: the SHA-256 of the
template string (the ``"default"`` entry when a tokenizer has several).

This module works on any tokenizer object with ``chat_template`` and
``apply_chat_template`` (a ``transformers`` tokenizer); it imports no model code.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sharpbench.errors import InputError

__all__ = [
    "ChatMessage",
    "ChatSetup",
    "ChatSetupError",
    "ChatTemplateError",
    "ChatTemplateWarning",
    "Prompt",
    "PromptStyle",
    "Shot",
    "Turn",
    "build_prompt",
    "chat_messages",
    "chat_template_hash",
    "chat_template_string",
    "mc_target_delimiter",
    "multiple_choice_requests",
    "multiple_input_requests",
    "plain_text",
    "prompt_turns",
    "render_chat",
]

ChatMessage = tuple[str, str]
"""One chat message as ``(role, content)``; roles are ``"system"``, ``"user"``, ``"assistant"``."""

Shot = tuple[str, "str | None"]
"""One few-shot example as the task renders it: ``(question_text, answer_text)``.

``answer_text`` is ``None`` (or ``""``, as lm-eval's ``build_qa_turn`` treats an empty
string target) for an example without an answer.
"""

_KEEP = object()  # sentinel: few-shot settings default to the question's


class ChatSetupError(InputError, ValueError):
    """The chat options contradict each other (e.g. multiturn few-shot without a chat template)."""


class ChatTemplateError(InputError, ValueError):
    """A chat template was asked for but the model has none (or it cannot render the prompt)."""


class ChatTemplateWarning(UserWarning):
    """The chat template rejected the system role; the system message was dropped (as lm-eval does)."""


@dataclass(frozen=True)
class ChatSetup:
    """How prompts are addressed to the model: lm-eval's ``--apply_chat_template``,
    ``--system_instruction`` and ``--fewshot_as_multiturn``.

    Attributes
    ----------
    apply_chat_template : bool
        Render every prompt with the model's chat template.
    system_prompt : str or None
        Text of the system message (joined with the task description). Without a
        chat template it is prepended to the plain prompt, as lm-eval does.
    fewshot_as_multiturn : bool
        Few-shot examples as alternating user/assistant messages instead of one user
        message. Needs ``apply_chat_template`` (lm-eval raises the same error).
    """

    apply_chat_template: bool = False
    system_prompt: str | None = None
    fewshot_as_multiturn: bool = False

    def __post_init__(self) -> None:
        if self.system_prompt is not None and not isinstance(self.system_prompt, str):
            raise ChatSetupError(
                f"the system prompt must be text, not {type(self.system_prompt).__name__}"
            )
        if self.fewshot_as_multiturn and not self.apply_chat_template:
            raise ChatSetupError(
                "--fewshot-as-multiturn needs --apply-chat-template (few-shot turns only exist inside "
                "a chat template); add --apply-chat-template or drop --fewshot-as-multiturn"
            )

    @classmethod
    def from_options(
        cls,
        apply_chat_template: bool = False,
        system_prompt: str | None = None,
        fewshot_as_multiturn: bool | None = None,
    ) -> ChatSetup:
        """The setup lm-eval 0.4.13's command line makes of its three options.

        ``fewshot_as_multiturn=None`` (not given) becomes ``apply_chat_template``:
        lm-eval turns multiturn few-shot on by default with a chat template.
        """
        if fewshot_as_multiturn is None:
            fewshot_as_multiturn = bool(apply_chat_template)
        return cls(bool(apply_chat_template), system_prompt, bool(fewshot_as_multiturn))

    @property
    def is_plain(self) -> bool:
        """True when prompts are exactly the task's plain prompts (no template, no system prompt)."""
        return not self.apply_chat_template and self.system_prompt is None

    def key_fields(self, chat_template_sha: str | None = None) -> dict[str, Any]:
        """What the setup adds to a run key: nothing for plain prompts (old keys stay valid).

        Parameters
        ----------
        chat_template_sha : str or None
            :func:`chat_template_hash` of the model's tokenizer (needed when
            ``apply_chat_template`` is set).
        """
        if self.is_plain:
            return {}
        fields: dict[str, Any] = {"system_prompt": self.system_prompt}
        if self.apply_chat_template:
            if not chat_template_sha:
                raise ValueError("a chat-template run key needs the chat template's hash")
            fields["chat_template_sha"] = chat_template_sha
            fields["fewshot_as_multiturn"] = self.fewshot_as_multiturn
        return fields


# --------------------------------------------------------------------------- turns


@dataclass(frozen=True)
class Turn:
    """One turn of a prompt (lm-eval's ``Message``): ``delimiter`` follows it in plain text only."""

    role: str
    content: str
    delimiter: str = ""

    @property
    def text(self) -> str:
        return self.content + self.delimiter


def _maybe_delimit(prefix: str | None, suffix: str | None, delimiter: str = " ") -> str:
    """lm-eval's ``maybe_delimit``: join with ``delimiter`` unless either side has whitespace at the seam."""
    if not prefix:
        return suffix or ""
    if not suffix:
        return prefix
    if prefix[-1].isspace() or suffix[0].isspace():
        return prefix + suffix
    return prefix + delimiter + suffix


def _requires_delimiter(prefix: str, suffix: str) -> bool:
    """lm-eval's ``requires_delimiter``."""
    if prefix == "":
        return False
    return not (prefix[-1].isspace() or suffix[0].isspace())


def _qa_turns(
    question: str,
    answer: str | None,
    *,
    gen_prefix: str | None,
    target_delimiter: str,
    fewshot_delimiter: str,
) -> list[Turn]:
    """lm-eval's ``build_qa_turn`` for a question and its (optional) answer, both already text."""
    if not isinstance(question, str):
        raise TypeError(f"the question must be text, not {type(question).__name__}")
    has_answer = answer is not None and answer != ""
    # the target delimiter follows the question before an answer, or before a gen prefix that needs one
    needs = (has_answer and not gen_prefix) or bool(
        gen_prefix and _requires_delimiter(question, gen_prefix)
    )
    delim = target_delimiter if needs else ""
    turns = [Turn("user", question, delim)]
    if has_answer:
        assert answer is not None
        turns.append(Turn("assistant", _maybe_delimit(gen_prefix, answer, " "), fewshot_delimiter))
    elif gen_prefix:
        turns.append(Turn("assistant", gen_prefix))
    return turns


def prompt_turns(
    question: str,
    fewshot: Sequence[Shot] = (),
    *,
    system_prompt: str | None = None,
    description: str = "",
    target_delimiter: str = " ",
    fewshot_delimiter: str = "\n\n",
    gen_prefix: str | None = None,
    fewshot_target_delimiter: Any = _KEEP,
    fewshot_fewshot_delimiter: Any = _KEEP,
    fewshot_gen_prefix: Any = _KEEP,
    question_target_delimiter: Any = _KEEP,
) -> tuple[Turn, ...]:
    """The turns of a prompt as lm-eval 0.4.13's ``fewshot_context`` builds them.

    Parameters
    ----------
    question : str
        The question text (``doc_to_text`` of the document).
    fewshot : sequence of (question_text, answer_text)
        The few-shot examples in order, rendered as the task renders them (for
        multiple choice the answer is the gold choice's text).
    system_prompt : str or None
        ``--system-prompt``.
    description : str
        The task description (rendered for this document).
    target_delimiter, fewshot_delimiter : str
        The task's delimiters (lm-eval defaults ``" "`` and ``"\\n\\n"``).
    gen_prefix : str or None
        The task's ``gen_prefix`` rendered for this document (start of the answer).
    fewshot_target_delimiter, fewshot_fewshot_delimiter, fewshot_gen_prefix
        ``fewshot_config`` overrides; default to the values above.
    question_target_delimiter
        Target delimiter of the question turn (multiple-input tasks use ``""``).

    Returns
    -------
    tuple of Turn
    """
    fs_tgt = target_delimiter if fewshot_target_delimiter is _KEEP else fewshot_target_delimiter
    fs_few = fewshot_delimiter if fewshot_fewshot_delimiter is _KEEP else fewshot_fewshot_delimiter
    fs_prefix = gen_prefix if fewshot_gen_prefix is _KEEP else fewshot_gen_prefix
    q_tgt = target_delimiter if question_target_delimiter is _KEEP else question_target_delimiter
    turns: list[Turn] = []
    system = _maybe_delimit(system_prompt, description or "", fewshot_delimiter)
    if system:
        turns.append(Turn("system", system))
    for shot in fewshot:
        q, a = shot
        turns += _qa_turns(
            q, a, gen_prefix=fs_prefix, target_delimiter=fs_tgt, fewshot_delimiter=fs_few
        )
    turns += _qa_turns(
        question, None, gen_prefix=gen_prefix, target_delimiter=q_tgt, fewshot_delimiter=""
    )
    return tuple(turns)


def plain_text(turns: Sequence[Turn]) -> str:
    """The prompt without a chat template: every turn followed by its delimiter."""
    return "".join(t.text for t in turns)


def chat_messages(turns: Sequence[Turn], *, multiturn: bool) -> tuple[ChatMessage, ...]:
    """The messages handed to the chat template (lm-eval's ``to_dict`` / ``multiturn_to_singleturn``).

    With ``multiturn`` every turn is a message. Without it the system turn stays,
    a trailing assistant turn (the gen prefix) stays, and everything in between
    becomes one user message: the turns' plain text, the last one without its delimiter.
    """
    if not turns:
        raise ValueError("no turns to render")
    if multiturn:
        return tuple((t.role, t.content) for t in turns)
    system, rest = (turns[0], list(turns[1:])) if turns[0].role == "system" else (None, list(turns))
    tail: list[ChatMessage] = []
    if rest and rest[-1].role == "assistant":
        tail = [(rest[-1].role, rest[-1].content)]
        rest = rest[:-1]
    if not rest:
        raise ValueError("a prompt needs a user turn before its gen prefix")
    user = "".join(t.text for t in rest[:-1]) + rest[-1].content
    head = [(system.role, system.content)] if system else []
    return tuple(head + [("user", user)] + tail)


# --------------------------------------------------------------------------- templates


def chat_template_string(tokenizer: Any, model: str = "this model") -> str:
    """The template lm-eval's ``TemplateLM.chat_template(True)`` selects, or a clear error.

    A tokenizer with several named templates gives its ``"default"`` one.

    Raises
    ------
    ChatTemplateError
        The tokenizer has no chat template (or several and none named ``default``).
    """
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, Mapping):
        if "default" not in template:
            raise ChatTemplateError(
                f"model {model} has several chat templates ({', '.join(sorted(template))}) and none "
                "named 'default'; sharpbench cannot choose one: drop --apply-chat-template"
            )
        template = template["default"]
    if not template:
        raise ChatTemplateError(
            f"model {model} has no chat template (its tokenizer defines none; base models usually "
            "do not): drop --apply-chat-template (and --fewshot-as-multiturn) to evaluate it on plain prompts"
        )
    if not isinstance(template, str):
        raise ChatTemplateError(
            f"model {model}: the tokenizer's chat template is a {type(template).__name__}, not text"
        )
    return template


def chat_template_hash(tokenizer: Any, model: str = "this model") -> str:
    """lm-eval's ``chat_template_sha``: SHA-256 (hex) of the chat template string.

    Raises :class:`ChatTemplateError` naming ``model`` when there is no template.
    """
    return hashlib.sha256(chat_template_string(tokenizer, model).encode("utf-8")).hexdigest()


def render_chat(
    messages: Sequence[ChatMessage],
    tokenizer: Any,
    *,
    add_generation_prompt: bool = True,
    model: str = "this model",
    template_kwargs: Mapping[str, Any] | None = None,
) -> str:
    """Render messages with the tokenizer's chat template as lm-eval's ``HFLM.apply_chat_template`` does.

    ``continue_final_message`` is ``not add_generation_prompt`` (the prompt then ends
    inside the last assistant message, the gen prefix). When the template raises a
    ``jinja2`` ``TemplateError`` the system messages are dropped and it is rendered
    again, with a :class:`ChatTemplateWarning`.

    Parameters
    ----------
    messages : sequence of (role, content)
    tokenizer : a ``transformers`` tokenizer
    add_generation_prompt : bool
        ``False`` when the prompt ends with a gen-prefix assistant message.
    model : str
        Name used in error messages.
    template_kwargs : mapping, optional
        Extra template variables (lm-eval's ``chat_template_args``, e.g. ``enable_thinking``).
    """
    import jinja2

    chat_template_string(tokenizer, model)  # a clear error instead of transformers' ValueError
    extra = dict(template_kwargs or {})

    def apply(history: list[dict[str, str]]) -> str:
        out = tokenizer.apply_chat_template(
            history,
            tokenize=False,
            add_generation_prompt=add_generation_prompt,
            continue_final_message=not add_generation_prompt,
            **extra,
        )
        if not isinstance(out, str):
            raise ChatTemplateError(f"model {model}: the chat template did not render text")
        return out

    history = [{"role": role, "content": content} for role, content in messages]
    try:
        return apply(history)
    except jinja2.exceptions.TemplateError as first:
        without = [m for m in history if m["role"] != "system"]
        if len(without) < len(history):
            warnings.warn(
                f"model {model}: the chat template rejected the prompt ({first}); the system message "
                "was removed and the prompt rendered without it (as lm-eval does)",
                ChatTemplateWarning,
                stacklevel=2,
            )
        try:
            return apply(without)
        except jinja2.exceptions.TemplateError as err:
            raise ChatTemplateError(
                f"model {model}: its chat template cannot render this prompt ({err}); "
                "drop --apply-chat-template"
            ) from None


# --------------------------------------------------------------------------- prompts


@dataclass(frozen=True)
class Prompt:
    """A rendered prompt.

    Attributes
    ----------
    text : str
        The string the model sees (lm-eval's ``fewshot_context`` result).
    messages : tuple of (role, content) or None
        The chat messages ``text`` was rendered from; ``None`` without a chat template.
    add_generation_prompt : bool
        Whether the template's assistant header ends the text (``False``: the text
        ends inside the gen-prefix assistant message).
    """

    text: str
    messages: tuple[ChatMessage, ...] | None = None
    add_generation_prompt: bool = True


def _render(
    turns: Sequence[Turn],
    setup: ChatSetup,
    tokenizer: Any,
    gen_prefix: str | None,
    model: str,
    template_kwargs: Mapping[str, Any] | None,
) -> Prompt:
    if not setup.apply_chat_template:
        return Prompt(plain_text(turns))
    if tokenizer is None:
        raise ValueError("a chat-template prompt needs the model's tokenizer")
    messages = chat_messages(turns, multiturn=setup.fewshot_as_multiturn)
    add_gen = not gen_prefix
    text = render_chat(
        messages, tokenizer, add_generation_prompt=add_gen, model=model, template_kwargs=template_kwargs
    )
    return Prompt(text, messages, add_gen)


def build_prompt(
    question: str,
    fewshot: Sequence[Shot] = (),
    *,
    setup: ChatSetup,
    tokenizer: Any = None,
    model: str = "this model",
    description: str = "",
    target_delimiter: str = " ",
    fewshot_delimiter: str = "\n\n",
    gen_prefix: str | None = None,
    template_kwargs: Mapping[str, Any] | None = None,
    **fewshot_overrides: Any,
) -> Prompt:
    """The prompt of one document, as lm-eval 0.4.13's ``fewshot_context`` returns it.

    The same for ``generate_until`` (the prompt is the context) and
    ``multiple_choice`` (the context of every choice; see
    :func:`multiple_choice_requests` for the continuations).

    Parameters
    ----------
    question, fewshot, description, target_delimiter, fewshot_delimiter, gen_prefix
        As in :func:`prompt_turns`; ``fewshot_overrides`` are its
        ``fewshot_target_delimiter``/``fewshot_fewshot_delimiter``/``fewshot_gen_prefix``.
    setup : ChatSetup
    tokenizer : a ``transformers`` tokenizer
        Needed when ``setup.apply_chat_template``.
    model : str
        Model name for error messages.
    template_kwargs : mapping, optional
        Extra chat-template variables.
    """
    turns = prompt_turns(
        question,
        fewshot,
        system_prompt=setup.system_prompt,
        description=description,
        target_delimiter=target_delimiter,
        fewshot_delimiter=fewshot_delimiter,
        gen_prefix=gen_prefix,
        **fewshot_overrides,
    )
    return _render(turns, setup, tokenizer, gen_prefix, model, template_kwargs)


def mc_target_delimiter(target_delimiter: str, gen_prefix: str | None, setup: ChatSetup) -> str:
    """What starts each multiple-choice continuation (lm-eval's ``construct_requests``).

    Without a chat template: the task's target delimiter. With one: the target
    delimiter only after a ``gen_prefix`` that does not end in whitespace, else
    nothing (the choice follows the assistant header directly).

    ``gen_prefix`` is the task's configured value (lm-eval tests ``config.gen_prefix``,
    before rendering it for the document).
    """
    if not setup.apply_chat_template:
        return target_delimiter
    if gen_prefix and not gen_prefix[-1].isspace():
        return target_delimiter
    return ""


def multiple_choice_requests(
    question: str,
    choices: Sequence[str],
    fewshot: Sequence[Shot] = (),
    *,
    setup: ChatSetup,
    tokenizer: Any = None,
    model: str = "this model",
    description: str = "",
    target_delimiter: str = " ",
    fewshot_delimiter: str = "\n\n",
    gen_prefix: str | None = None,
    template_kwargs: Mapping[str, Any] | None = None,
    **fewshot_overrides: Any,
) -> list[tuple[str, str]]:
    """``(context, continuation)`` per choice, in choice order, as lm-eval's ``construct_requests``.

    Parameters are those of :func:`build_prompt`; ``choices`` are the choice strings
    (``doc_to_choice``). Few-shot answers are the gold choices' texts.
    """
    ctx = build_prompt(
        question,
        fewshot,
        setup=setup,
        tokenizer=tokenizer,
        model=model,
        description=description,
        target_delimiter=target_delimiter,
        fewshot_delimiter=fewshot_delimiter,
        gen_prefix=gen_prefix,
        template_kwargs=template_kwargs,
        **fewshot_overrides,
    ).text
    delim = mc_target_delimiter(target_delimiter, gen_prefix, setup)
    return [(ctx, f"{delim}{c}") for c in choices]


def multiple_input_requests(
    contexts: Sequence[str],
    continuation: str,
    fewshot: Sequence[Shot] = (),
    *,
    setup: ChatSetup,
    tokenizer: Any = None,
    model: str = "this model",
    description: str = "",
    target_delimiter: str = " ",
    fewshot_delimiter: str = "\n\n",
    gen_prefix: str | None = None,
    template_kwargs: Mapping[str, Any] | None = None,
    **fewshot_overrides: Any,
) -> list[tuple[str, str]]:
    """``(context, continuation)`` per option of a multiple-input task (Winogrande), as lm-eval builds them.

    Each option text in ``contexts`` ends its own prompt (with an empty target
    delimiter on that turn); all share one ``continuation`` (``doc_to_target``).
    Few-shot examples are ``(gold option text, continuation)``.
    """
    delim = mc_target_delimiter(target_delimiter, gen_prefix, setup)
    out = []
    for option in contexts:
        turns = prompt_turns(
            option,
            fewshot,
            system_prompt=setup.system_prompt,
            description=description,
            target_delimiter=target_delimiter,
            fewshot_delimiter=fewshot_delimiter,
            gen_prefix=gen_prefix,
            question_target_delimiter="",
            **fewshot_overrides,
        )
        ctx = _render(turns, setup, tokenizer, gen_prefix, model, template_kwargs).text
        out.append((ctx, f"{delim}{continuation}"))
    return out


@dataclass(frozen=True)
class PromptStyle:
    """How prompts are addressed to one model: a :class:`~sharpbench.data.chat.ChatSetup` and the tokenizer rendering it.

    Attributes
    ----------
    setup : ChatSetup
    tokenizer : transformers tokenizer, optional
        Needed when ``setup.apply_chat_template``.
    model : str
        The model's name, for error messages.
    """

    setup: ChatSetup = field(default_factory=ChatSetup)
    tokenizer: Any = None
    model: str = "this model"

    def __post_init__(self) -> None:
        if self.setup.apply_chat_template:
            chat_template_hash(self.tokenizer, self.model)  # no template: fail now, naming the model

    @property
    def key(self) -> dict[str, Any]:
        """What the style adds to the run key (empty for plain prompts)."""
        sha = chat_template_hash(self.tokenizer, self.model) if self.setup.apply_chat_template else None
        return self.setup.key_fields(sha)

    @property
    def is_plain(self) -> bool:
        return self.setup.is_plain

    def build(self, question: str, shots: Sequence[Shot], **kw: Any) -> Prompt:
        """The prompt of one document (:func:`build_prompt`)."""
        return build_prompt(question, shots, setup=self.setup, tokenizer=self.tokenizer, model=self.model, **kw)

    def choice_requests(self, question: str, choices: Sequence[str], shots: Sequence[Shot],
                        **kw: Any) -> list[tuple[str, str]]:
        """``(context, continuation)`` per choice (:func:`multiple_choice_requests`)."""
        return multiple_choice_requests(question, choices, shots, setup=self.setup, tokenizer=self.tokenizer,
                                        model=self.model, **kw)

    def input_requests(self, options: Sequence[str], continuation: str, shots: Sequence[Shot],
                       **kw: Any) -> list[tuple[str, str]]:
        """``(context, continuation)`` per option of a multiple-input task (:func:`multiple_input_requests`)."""
        return multiple_input_requests(options, continuation, shots, setup=self.setup, tokenizer=self.tokenizer,
                                       model=self.model, **kw)
