"""The stated-letter reading of generated multiple-choice answers, on endings Qwen2.5-Coder-1.5B wrote."""

from __future__ import annotations

import pytest

from sharpbench.elicit.extract import stated_letter, stated_number


@pytest.mark.parametrize("text, letter", [
    ("Therefore, the answer is (C).", "C"),
    ("the correct answer is:\n\nAnswer is (B)", "B"),  # capital "Answer": the task's regex misses it
    ("Based on this analysis, the correct answer is:\nC. It helps explain how things work.", "C"),
    ("Therefore, the answer is:\nA", "A"),
    ("The correct answer is:\n\\[\n\\boxed{C}\n\\]", "C"),
    ("**Answer: D**", "D"),
    ("The answer is **B**.", "B"),
    ("The answer is (A) at first sight, but the answer is (D).", "D"),  # the last one stated
    ("The correct answer is C. paralysis of the facial muscles, loss of taste, and lacrimation.", "C"),
    ("C. paralysis of the facial muscles", "C"),  # a direct answer opening with its letter
    ("(B) because heat rises", "B"),
    ("D", "D"),
    ("A. The first option; on reflection the answer is (C).", "C"),  # a later statement wins
])
def test_reads_the_stated_letter(text, letter):
    assert stated_letter(text) == letter


@pytest.mark.parametrize("text", [
    "so the answer is A bit harder to see",  # an article, not an option
    "The answer is (None)",
    "the best option is A. repair your broken television.",  # no "answer": not read
    "the answer choice depends on the pressure",
    "A bat uses echolocation.",  # an opening article
    "To determine the truth values of the given statements, we need to analyze each statement.",
    "",
])
def test_reads_nothing_where_no_letter_is_stated(text):
    assert stated_letter(text) is None


def test_letters_beyond_the_options_are_not_read():
    assert stated_letter("The answer is (E).", n_options=4) is None
    assert stated_letter("The answer is (E).", n_options=5) == "E"
    with pytest.raises(ValueError, match="n_options"):
        stated_letter("The answer is (A).", n_options=0)


@pytest.mark.parametrize("text, number", [
    ("The answer is $1,234.", "1,234"),
    ("Answer: 18", "18"),
    ("the total is \\boxed{\\$18}", "18"),
    ("is \\boxed{18 \\text{ dollars}}", "18"),
    ("#### 72", "72"),
    ("The answer is -3.5.", "-3.5"),
    ("The answer is 5. Then again the answer is 7", "7"),  # the last one stated
])
def test_reads_the_stated_number(text, number):
    assert stated_number(text) == number


@pytest.mark.parametrize("text", ["13 - 4 = 9 eggs remain", "the answer to part 2 is 5", "The answer is seven", ""])
def test_reads_no_number_where_none_is_stated(text):
    assert stated_number(text) is None
