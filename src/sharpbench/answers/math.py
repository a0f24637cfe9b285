"""MATH answer checking as lm-evaluation-harness 0.4.13's ``minerva_math`` tasks do it.

lm-eval's ``minerva_math*`` ``process_results`` gives two metrics per item:

``exact_match``
    The generation's text after "Final Answer: The final answer is" (up to "I hope it is
    correct.") is normalised (:func:`normalize_final_answer`, Lewkowycz et al. 2022, appendix D)
    and compared with the normalised boxed answer of the reference solution by
    :func:`is_equiv`: equal strings, else ``sympy.simplify(a - b) == 0`` of the two LaTeX
    expressions parsed by sympy's ANTLR LaTeX parser.
``math_verify``
    HuggingFace's Math-Verify: ``verify(parse(solution), parse(generation))``.

Both need the ``math`` extra (``sympy``, ``antlr4-python3-runtime==4.11``, ``math-verify``);
they are imported on first use, so this module itself imports only the standard library.
lm-eval bounds each check with ``signal.alarm`` (5 s); that only works in the main thread, so
elsewhere the checks run without a time limit (lm-eval would score such an item 0 there).
"""

from __future__ import annotations

import contextlib
import re
import signal
import threading
from collections.abc import Iterator

__all__ = [
    "INVALID_ANSWER",
    "last_boxed_only_string",
    "remove_boxed",
    "get_unnormalized_answer",
    "normalize_final_answer",
    "gold_answer",
    "is_equiv",
    "math_verify_equal",
    "minerva_scores",
]

#: lm-eval's answer of a generation without "Final Answer: The final answer is ...".
INVALID_ANSWER = "[invalidanswer]"
_TIMEOUT_S = 5
_MATH_EXTRA = "MATH answer checking needs the 'math' extra: pip install 'sharpbench[math]'"


def last_boxed_only_string(string: str) -> str | None:
    r"""The last ``\boxed{...}`` (or ``\fbox{...}``, or ``\boxed x`` up to a ``$``) of ``string``, or None."""
    idx = string.rfind("\\boxed")
    if "\\boxed " in string:
        return "\\boxed " + string.split("\\boxed ")[-1].split("$")[0]
    if idx < 0:
        idx = string.rfind("\\fbox")
        if idx < 0:
            return None
    depth = 0
    for i in range(idx, len(string)):
        if string[i] == "{":
            depth += 1
        elif string[i] == "}":
            depth -= 1
            if depth == 0:
                return string[idx : i + 1]
    return None


def remove_boxed(s: str) -> str:
    r"""The content of ``\boxed{...}`` or ``\boxed ...``; ``ValueError`` for anything else (lm-eval asserts)."""
    if "\\boxed " in s:
        if not s.startswith("\\boxed "):
            raise ValueError(f"not a boxed answer: {s!r}")
        return s[len("\\boxed ") :]
    if not (s.startswith("\\boxed{") and s.endswith("}")):
        raise ValueError(f"not a boxed answer: {s!r}")
    return s[len("\\boxed{") : -1]


def get_unnormalized_answer(text: str) -> str:
    """The text after "Final Answer: The final answer is" up to "I hope it is correct.", stripped.

    A generation that stops before "I hope it is correct." still counts (lm-eval appends it);
    without the "Final Answer" sentence the answer is :data:`INVALID_ANSWER`.
    """
    match = re.search(r"Final Answer: The final answer is(.*?). I hope it is correct.", text + "I hope it is correct.")
    return match.group(1).strip() if match else INVALID_ANSWER


_SUBSTITUTIONS = [
    ("an ", ""),
    ("a ", ""),
    (".$", "$"),
    ("\\$", ""),
    (r"\ ", ""),
    (" ", ""),
    ("mbox", "text"),
    (",\\text{and}", ","),
    ("\\text{and}", ","),
    ("\\text{m}", "\\text{}"),
]
# fmt: off
_REMOVED_EXPRESSIONS = [
    "square", "ways", "integers", "dollars", "mph", "inches", "ft", "hours", "km", "units", "\\ldots",
    "sue", "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm", "pounds", "meters",
    "meals", "edges", "students", "childrentickets", "multiples", "\\text{s}", "\\text{.}", "\\text{\ns}",
    "\\text{}^2", "\\text{}^3", "\\text{\n}", "\\text{}", r"\mathrm{th}", r"^\circ", r"^{\circ}", r"\;",
    r",\!", "{,}", '"', "\\dots",
]
# fmt: on


def normalize_final_answer(final_answer: str) -> str:
    """lm-eval 0.4.13's normalisation of a final answer (units, ``$``, ``\\text``, shorthand TeX, 1,000s)."""
    final_answer = final_answer.split("=")[-1]
    # unit words while whitespace still delimits them (never inside a LaTeX command name)
    for expr in _REMOVED_EXPRESSIONS:
        if expr.isalpha():
            final_answer = re.sub(rf"(?<!\\)\b{expr}\b", "", final_answer)
    for before, after in _SUBSTITUTIONS:
        final_answer = final_answer.replace(before, after)
    for expr in _REMOVED_EXPRESSIONS:
        if expr.isalpha():
            # units glued to their neighbours, outside LaTeX command names ("ft" must not break "\left")
            segments = re.split(r"(\\[a-zA-Z]+)", final_answer)
            segments[::2] = [segment.replace(expr, "") for segment in segments[::2]]
            final_answer = "".join(segments)
        else:
            final_answer = final_answer.replace(expr, "")
    # the answer inside $...$, \text{}, \textbf{}, \overline{}, \boxed{}
    final_answer = re.sub(r"(.*?)(\$)(.*?)(\$)(.*)", "$\\3$", final_answer)
    final_answer = re.sub(r"(\\text\{)(.*?)(\})", "\\2", final_answer)
    final_answer = re.sub(r"(\\textbf\{)(.*?)(\})", "\\2", final_answer)
    final_answer = re.sub(r"(\\overline\{)(.*?)(\})", "\\2", final_answer)
    final_answer = re.sub(r"(\\boxed\{)(.*)(\})", "\\2", final_answer)
    # shorthand TeX: \fracab -> \frac{a}{b}, \sqrt[3]a -> \sqrt[3]{a}, \sqrta -> \sqrt{a}
    final_answer = re.sub(r"(frac)([^{])(.)", "frac{\\2}{\\3}", final_answer)
    final_answer = re.sub(r"(sqrt)(\[[^\]]*\])(\w)", "\\1\\2{\\3}", final_answer)
    final_answer = re.sub(r"(sqrt)(?!\[)([^{])", "sqrt{\\2}", final_answer)
    final_answer = final_answer.replace("$", "")
    # 100,000 -> 100000, only for true thousands separators (a tuple "0,1" stays)
    if re.fullmatch(r"-?\d{1,3}(,\d{3})+", final_answer):
        final_answer = final_answer.replace(",", "")
    return final_answer


def gold_answer(solution: str) -> str:
    r"""The normalised reference answer: the last ``\boxed{}`` of ``solution``, as lm-eval's ``process_docs``.

    A reference without a box is taken to be the answer itself and only normalised (a sharpbench
    extension: lm-eval needs a boxed solution).
    """
    boxed = last_boxed_only_string(solution)
    return normalize_final_answer(solution if boxed is None else remove_boxed(boxed))


@contextlib.contextmanager
def _time_limit(seconds: int) -> Iterator[None]:
    """``signal.alarm`` as lm-eval's ``timeout``; no limit outside the main thread (signals need it)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise TimeoutError("MATH equivalence check timed out")

    previous = signal.signal(signal.SIGALRM, _raise)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def is_equiv(x1: str, x2: str) -> bool:
    """lm-eval's ``is_equiv`` of two normalised answers: equal strings, else sympy says ``x1 - x2 == 0``.

    Any failure to parse, subtract or simplify, or a 5 s timeout, is "not equivalent".

    Raises
    ------
    ImportError
        When sympy's LaTeX parser (``antlr4-python3-runtime==4.11``) is not installed.
    """
    if isinstance(x1, str) and x1 and x1 == x2:
        return True
    try:
        import sympy
        from sympy.parsing.latex import parse_latex
    except ImportError as err:  # pragma: no cover - the math extra is installed in CI
        raise ImportError(_MATH_EXTRA) from err
    try:
        with _time_limit(_TIMEOUT_S):
            diff = parse_latex(x1) - parse_latex(x2)
            return bool(sympy.simplify(diff) == 0)
    except ImportError as err:
        raise ImportError(f"{_MATH_EXTRA} ({err})") from err
    except Exception:  # noqa: BLE001 - lm-eval scores every failure (parse, subtract, simplify, timeout) as 0
        return False


def math_verify_equal(generation: str, solution: str) -> bool:
    """lm-eval's ``math_verify`` metric: Math-Verify's ``verify(parse(solution), parse(generation))``."""
    try:
        from math_verify import parse, verify
    except ImportError as err:  # pragma: no cover - the math extra is installed in CI
        raise ImportError(_MATH_EXTRA) from err
    limit = _TIMEOUT_S if threading.current_thread() is threading.main_thread() else None
    return bool(
        verify(
            gold=parse(solution, parsing_timeout=limit),
            target=parse(generation, parsing_timeout=limit),
            timeout_seconds=limit,
        )
    )


def minerva_scores(generation: str, solution: str) -> dict[str, float]:
    r"""lm-eval's minerva ``process_results`` of one item: ``{"exact_match": 0/1, "math_verify": 0/1}``.

    Parameters
    ----------
    generation : str
        The model's generation (the ``none`` filter's answer: the first sample).
    solution : str
        The reference solution with its ``\boxed{}`` answer (MATH's ``solution`` field).
    """
    answer = normalize_final_answer(get_unnormalized_answer(generation))
    return {
        "exact_match": 1.0 if is_equiv(answer, gold_answer(solution)) else 0.0,
        "math_verify": 1.0 if math_verify_equal(generation, solution) else 0.0,
    }
