"""``exact_match`` against lm-eval 0.4.13's ``exact_match_hf_evaluate``, every option combination."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharpbench.answers import exact_match

pytestmark = pytest.mark.lmeval

GSM8K_IGNORE = [",", r"\$", "(?s).*#### ", r"\.$"]
REGEX_OPTIONS = [None, [], GSM8K_IGNORE, [r"\s+", "the "], [r"^\W+|\W+$"]]

PAIRS = [
    ("72", "72"),
    ("$1,234.", "1234"),
    ("1,234", "Janet sells 16 - 3 = 13.\n#### 1,234"),
    ("18.", "18"),
    ("-5", "-5"),
    ("[invalid]", "18"),
    ("(B)", "B"),
    ("b", "B"),
    ("The Answer!", "the answer"),
    ("answer 42", "answer 17"),
    (" 42", "42"),
    ("42 ", "42"),
    ("", ""),
    ("İstanbul", "i̇stanbul"),  # lower() grows "İ": numpy cuts the string to its width
    ("STRASSE", "straße"),
    ("a\x00", "a"),  # numpy drops trailing NULs
    ("1.", "1"),
    ("$.5", ".5"),
    ("12\n", "12"),
    ("x.y.", "x.y"),
]


def _lmeval(prediction, reference, **options):
    from lm_eval.api.metrics import exact_match_hf_evaluate

    return exact_match_hf_evaluate(predictions=[prediction], references=[reference], **options)["exact_match"]


@pytest.mark.parametrize(
    ("ignore_case", "ignore_punctuation", "ignore_numbers", "regexes_to_ignore"),
    list(itertools.product([False, True], [False, True], [False, True], REGEX_OPTIONS)),
)
def test_exact_match_matches_lmeval(ignore_case, ignore_punctuation, ignore_numbers, regexes_to_ignore):
    options = dict(
        ignore_case=ignore_case,
        ignore_punctuation=ignore_punctuation,
        ignore_numbers=ignore_numbers,
        regexes_to_ignore=regexes_to_ignore,
    )
    for prediction, reference in PAIRS:
        ours = exact_match(prediction, reference, **options)
        assert ours == _lmeval(prediction, reference, **options), (prediction, reference, options)
        assert ours in (0.0, 1.0) and isinstance(ours, float)


def test_order_of_operations_regexes_before_case_and_punctuation():
    # the regex sees the original case and punctuation: "A." is not removed by "a\." before lower-casing
    assert exact_match("A.b", "b", ignore_case=True, regexes_to_ignore=[r"a\."]) == 0.0
    assert exact_match("a.b", "b", ignore_case=True, regexes_to_ignore=[r"a\."]) == 1.0
    # ... and punctuation is deleted only after the regexes ran: "$" survives to meet r"\$"
    assert exact_match("$5", "5", ignore_punctuation=False, regexes_to_ignore=[r"\$"]) == 1.0
    assert exact_match("5!", "5", ignore_punctuation=True, regexes_to_ignore=[r"5!"]) == 0.0


def test_a_list_answer_scores_the_share_of_matches_as_lmeval():
    from lm_eval.api.metrics import exact_match_hf_evaluate

    answers = ["4", "4", "5", "4"]
    expected = exact_match_hf_evaluate(predictions=[answers], references=["4"], ignore_case=True)["exact_match"]
    assert exact_match(answers, "4", ignore_case=True) == expected == 0.75
    with pytest.raises(ValueError, match="regexes_to_ignore"):
        exact_match(answers, "4", regexes_to_ignore=[","])


@settings(max_examples=300, derandomize=True, deadline=None)
@given(
    st.text(alphabet="aAbB1 2,.$#-!İß\n\x00", max_size=12),
    st.text(alphabet="aAbB1 2,.$#-!İß\n\x00", max_size=12),
    st.booleans(),
    st.booleans(),
    st.sampled_from(REGEX_OPTIONS),
)
def test_exact_match_on_random_strings_matches_lmeval(prediction, reference, ignore_case, ignore_punctuation, regexes):
    options = dict(ignore_case=ignore_case, ignore_punctuation=ignore_punctuation, regexes_to_ignore=regexes)
    assert exact_match(prediction, reference, **options) == _lmeval(prediction, reference, **options)
