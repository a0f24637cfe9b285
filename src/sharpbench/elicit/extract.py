"""Reading the option letter a generated answer states when it misses the task's answer format.

The step-by-step tasks ask the model to end with "the answer is (X)", and
their own filter (lm-eval's MMLU-Pro regex) reads only that phrase, case
sensitive; lm-eval's generative MMLU counts only an answer that is the bare
letter. Instruct models often answer otherwise ("Answer is (B)", "the correct
answer is:\\nC. It helps ...", "\\boxed{C}", "C. paralysis of ..."). Counting
those as wrong would measure format compliance, not what the model can do, so
the study reads the letter such an answer states, with one rule fixed in
advance for every model. The task's own score is unchanged; the study reports
how many answers each way read.
"""

from __future__ import annotations

import re

__all__ = ["stated_letter", "stated_number"]

# "answer" (any case), optionally "is" / "would be" / "should be", an optional colon, markdown bold or a
# LaTeX box, then a capital option letter, optionally in parentheses. The letter must not start a
# lower-case word ("The answer is A bit ..."), so an article is never read as an option.
_STATED = re.compile(
    r"(?i:answer)(?:\s+(?i:is|would\s+be|should\s+be))?\s*[:\uff1a]?\s*(?:\*\*)?\s*(?:\$?\\boxed\{)?\s*"
    r"\(?([A-J])\)?(?![A-Za-z0-9])(?!\s+[a-z])"
)
_BOXED = re.compile(r"\\boxed\{\s*\(?([A-J])\)?\s*\}")
# A letter that opens the answer ("C. paralysis of ...", "(B) because", "D"), as a direct answer gives it.
_LEADING = re.compile(r"^\s*(?:\*\*)?\(?([A-J])\)?(?![A-Za-z0-9'\u2019])(?!\s+[a-z])")


def stated_letter(text: str, n_options: int = 10) -> str | None:
    """The option letter the answer states last, or ``None`` where it states none.

    Read are: "answer" followed by a letter ("Answer is (B)", "the correct answer is:\\nC. ..."), a boxed
    letter, and a letter that opens the text ("C. paralysis of ..."); the last of them in the text wins.

    Parameters
    ----------
    text : str
        The generated answer.
    n_options : int
        Letters beyond the item's options (``A`` + ``n_options - 1``) are not
        read, so a stray "E" on a four-option question stays unread.

    Returns
    -------
    str or None
        An upper-case letter.

    Examples
    --------
    >>> stated_letter("Based on this analysis, the correct answer is:\\nC. It helps explain how things work.")
    'C'
    >>> stated_letter("so the answer is A bit harder to see") is None
    True
    """
    if not 1 <= n_options <= 10:
        raise ValueError(f"n_options must be 1..10, got {n_options}")
    return _last_stated(text, (_LEADING, _STATED, _BOXED), keep=lambda letter: ord(letter) - ord("A") < n_options)


_NUMBER = r"\\?\$?\s*(-?\d[\d,]*(?:\.\d+)?)"
# "answer" (any case), optionally "is", an optional colon, then a number; a boxed number; "#### number".
_STATED_NUMBER = (
    re.compile(r"(?i:answer)(?:\s+(?i:is))?\s*[:\uff1a]?\s*(?:\*\*)?\s*" + _NUMBER),
    re.compile(r"\\boxed\{\s*" + _NUMBER),
    re.compile(r"####\s*" + _NUMBER),
)


def stated_number(text: str) -> str | None:
    r"""The final numeric answer the text states last ("answer is 18", ``\boxed{18}``, "#### 18"), or ``None``.

    A bare number is not read (lm-eval's flexible-extract takes the last number of the text, which a model
    that goes on writing after its answer turns into a wrong one).

    Examples
    --------
    >>> stated_number("So the total is \\boxed{3}.")
    '3'
    >>> stated_number("13 - 4 = 9 eggs remain") is None
    True
    """
    return _last_stated(text, _STATED_NUMBER)


def _last_stated(text: str, patterns, keep=lambda _: True) -> str | None:
    """Group 1 of the match that starts last in ``text`` among ``patterns`` (only values ``keep`` accepts)."""
    last: tuple[int, str] | None = None
    for pattern in patterns:
        for m in pattern.finditer(text):
            if keep(m.group(1)) and (last is None or m.start() > last[0]):
                last = (m.start(), m.group(1))
    return None if last is None else last[1]
