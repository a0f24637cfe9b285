"""``exact_match`` as lm-evaluation-harness 0.4.13 computes it (``exact_match_hf_evaluate``).

The order of operations is lm-eval's: each of ``regexes_to_ignore`` is removed (``re.sub``) from
both strings, then case is folded, then ASCII punctuation (``string.punctuation``) and digits are
deleted. The strings go through numpy's fixed-width unicode arrays as in lm-eval, which matters at
the edges (trailing NUL characters are dropped; a lower-cased character that grows, such as
``"İ"``, is cut to the array's width), so numpy does the work here too.
"""

from __future__ import annotations

import re
import string
from collections.abc import Sequence

import numpy as np

__all__ = ["exact_match"]

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_DIGITS = str.maketrans("", "", string.digits)


def exact_match(
    prediction: str | Sequence[str],
    reference: str,
    *,
    ignore_case: bool = False,
    ignore_punctuation: bool = False,
    regexes_to_ignore: Sequence[str] | None = None,
    ignore_numbers: bool = False,
) -> float:
    """1.0 when ``prediction`` equals ``reference`` after lm-eval's normalisation, else 0.0.

    Parameters
    ----------
    prediction : str or sequence of str
        The filtered answer. A sequence (a filter pipeline that does not end in ``take_first``)
        is scored as lm-eval scores a list answer: the share of its elements equal to the
        reference (``regexes_to_ignore`` cannot be used then: lm-eval fails on it).
    reference : str
        The gold answer (``doc_to_target``).
    ignore_case, ignore_punctuation, regexes_to_ignore, ignore_numbers
        lm-eval's metric options (``metric_list`` keys of a task's YAML).

    Returns
    -------
    float
        ``np.mean`` of the element-wise comparison, as lm-eval returns it: 1.0 or 0.0 for one string.
    """
    predictions = [prediction] if isinstance(prediction, str) else [list(prediction)]
    references = [reference]
    if regexes_to_ignore is not None:
        if not isinstance(prediction, str):
            raise ValueError("exact_match: regexes_to_ignore needs one string answer (end the filter in take_first)")
        for pattern in regexes_to_ignore:
            predictions = np.array([re.sub(pattern, "", x) for x in predictions])
            references = np.array([re.sub(pattern, "", x) for x in references])
    else:
        predictions = np.asarray(predictions)
        references = np.asarray(references)
    if ignore_case:
        predictions = np.char.lower(predictions)
        references = np.char.lower(references)
    if ignore_punctuation:
        predictions = np.char.translate(predictions, table=_PUNCTUATION)
        references = np.char.translate(references, table=_PUNCTUATION)
    if ignore_numbers:
        predictions = np.char.translate(predictions, table=_DIGITS)
        references = np.char.translate(references, table=_DIGITS)
    return float(np.mean(predictions == references))
