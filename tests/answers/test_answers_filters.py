"""Filter steps and pipelines against lm-eval 0.4.13's own filter objects."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sharpbench.answers import DEFAULT_PIPELINE, AnswerSpecError, FilterPipeline
from sharpbench.answers.filters import MajorityVote, Regex, TakeFirst

pytestmark = pytest.mark.lmeval

STRICT = r"The answer is (\-?[0-9\.\,]+)."
FLEXIBLE = r"(-?[$0-9.,]{2,})|(-?[0-9]+)"
MMLU_PRO = r"answer is \(?([ABCDEFGHIJ])\)?"
SELF_CONSISTENCY = r"The answer is (\-?[0-9\.\,]*[0-9]+)"

# realistic chain-of-thought endings and the awkward cases around them
TEXTS = [
    "Natalia sold 48/2 = 24 clips in May. 48 + 24 = 72. The answer is 72.",
    "She makes 9 * 2 = $18 every day. The answer is $18.",
    "The answer is 1,234.",
    "The answer is 1,234,567.89.",
    "The temperature dropped to -5 degrees. The answer is -5.",
    "So the answer is 18.",  # lower-case "the": no strict match
    "The answer is 18",  # no character after the number: the strict pattern needs one
    "The answer is .5.",
    "The answer is 3. The answer is 4.",
    "I am not sure.",
    "",
    "   ",
    "#### 42",
    "It costs $3.50, so 2 of them cost $7.00.",
    "x = 7",
    "5",
    "-",
    "The answer is (B).",
    "the answer is C",
    "Therefore the answer is (J) because ...",
    "  The answer is 12.  \n",
    "Answer: 12\n\nQuestion: what is 3+4?\nAnswer: 7",
    "1.2.3.4",
    "The answer is ,,,.",
    "Ünïcödé 12 — the answer is 3.",
]


def _lmeval_pipeline(config: dict, responses: list[list[str]], docs: list[dict] | None = None) -> list:
    """lm-eval's own FilterEnsemble on real Instances: ``filtered_resps[name]`` per item."""
    from lm_eval.api.instance import Instance
    from lm_eval.filters import build_filter_ensemble

    components = [[f["function"], {k: v for k, v in f.items() if k != "function"}] for f in config["filter"]]
    ensemble = build_filter_ensemble(config["name"], components)
    docs = docs or [{} for _ in responses]
    instances = [
        Instance("generate_until", doc, ("", {}), 0, resps=list(r)) for doc, r in zip(docs, responses, strict=True)
    ]
    ensemble.apply(instances)
    return [inst.filtered_resps[config["name"]] for inst in instances]


def _config(name: str, *steps: dict) -> dict:
    return {"name": name, "filter": list(steps)}


@pytest.mark.parametrize("pattern", [STRICT, FLEXIBLE, MMLU_PRO, SELF_CONSISTENCY, r"(\d+)|(x)|()", r"(a)?(b)?"])
@pytest.mark.parametrize("group_select", [0, -1])
def test_regex_take_first_matches_lmeval(pattern, group_select):
    config = _config(
        "f", {"function": "regex", "regex_pattern": pattern, "group_select": group_select}, {"function": "take_first"}
    )
    ours = FilterPipeline.from_config(config)
    theirs = _lmeval_pipeline(config, [[t] for t in TEXTS])
    assert [ours.apply([t]) for t in TEXTS] == theirs
    # one sample alone: the same answer, and "matched" is exactly "not the fallback"
    for text, expected in zip(TEXTS, theirs, strict=True):
        answer, matched = ours.extract(text)
        assert answer == expected
        if not matched:
            assert answer == "[invalid]"


def test_flexible_extract_takes_the_last_number():
    pipe = FilterPipeline.from_config(
        _config(
            "flexible-extract",
            {"function": "regex", "regex_pattern": FLEXIBLE, "group_select": -1},
            {"function": "take_first"},
        )
    )
    assert pipe.apply(["She pays $1,200 then 3 more, so -7"]) == "-7"
    assert pipe.apply(["The answer is $18.00."]) == "$18.00."
    assert pipe.extract("no digits here") == ("[invalid]", False)


@settings(max_examples=300, derandomize=True, deadline=None)
@given(st.lists(st.text(alphabet="The answrs0123456789$,.-()ABJ \n", max_size=40), min_size=1, max_size=4))
def test_regex_on_random_text_matches_lmeval(texts):
    for pattern, group_select in [(STRICT, 0), (FLEXIBLE, -1), (MMLU_PRO, 0), (r"(\d)|([A-J])|( )", 0)]:
        config = _config("f", {"function": "regex", "regex_pattern": pattern, "group_select": group_select})
        assert FilterPipeline.from_config(config).apply(texts) == tuple(_lmeval_pipeline(config, [texts])[0])


def test_fallback_strip_follows_lmeval_for_empty_tuple_matches():
    # a match whose groups are all empty gives the *stripped* fallback; no match gives it as is
    config = _config(
        "f", {"function": "regex", "regex_pattern": r"(a)?(b)?", "fallback": " none "}, {"function": "take_first"}
    )
    ours = FilterPipeline.from_config(config)
    for text in ["xyz", "ab", ""]:
        assert ours.apply([text]) == _lmeval_pipeline(config, [[text]])[0]
    assert ours.apply(["xyz"]) == "none"
    config = _config(
        "g", {"function": "regex", "regex_pattern": r"(\d+)", "fallback": " none "}, {"function": "take_first"}
    )
    assert FilterPipeline.from_config(config).apply(["xyz"]) == " none " == _lmeval_pipeline(config, [["xyz"]])[0]


REPEATS = [
    ["The answer is 3.", "The answer is 4.", "The answer is 4.", "no idea"],
    ["no idea", "no idea", "The answer is 5.", "The answer is 5."],  # tie between "[invalid]" and "5": first seen wins
    ["The answer is 1.", "The answer is 2.", "The answer is 3.", "The answer is 2."],
    ["x", "y", "z", "w"],
]


@pytest.mark.parametrize(
    "steps",
    [
        [{"function": "take_first"}],
        [
            {"function": "regex", "regex_pattern": SELF_CONSISTENCY},
            {"function": "majority_vote"},
            {"function": "take_first"},
        ],
        [
            {"function": "take_first_k", "k": 3},
            {"function": "regex", "regex_pattern": SELF_CONSISTENCY},
            {"function": "majority_vote"},
            {"function": "take_first"},
        ],
        [{"function": "majority_vote"}, {"function": "take_first"}],
        [{"function": "lowercase"}, {"function": "remove_whitespace"}, {"function": "take_first"}],
        [{"function": "uppercase"}, {"function": "majority_vote"}],
        [{"function": "regex", "regex_pattern": STRICT}],
        [{"function": "take_first_k", "k": 2}],
    ],
)
def test_pipelines_over_repeats_match_lmeval(steps):
    config = _config("p", *steps)
    ours = FilterPipeline.from_config(config)
    theirs = _lmeval_pipeline(config, REPEATS)
    got = [ours.apply(r) for r in REPEATS]
    assert [list(g) if isinstance(g, tuple) else g for g in got] == [
        list(t) if not isinstance(t, str) else t for t in theirs
    ]


def test_case_and_whitespace_filters_match_lmeval():
    texts = ["  Hello World \n", "İstanbul ß ΣΑΣ", "\tA\t", ""]
    for function in ["lowercase", "uppercase", "remove_whitespace"]:
        config = _config(function, {"function": function}, {"function": "take_first"})
        assert [FilterPipeline.from_config(config).apply([t]) for t in texts] == _lmeval_pipeline(
            config, [[t] for t in texts]
        )


def test_multi_choice_regex_matches_lmeval():
    choices = ["Guilty", "Guilty of Romance", "Not guilty", "None of the above"]
    texts = [
        "The answer is (C).",
        "I think it is guilty of romance, clearly.",
        "Answer: B",
        "It is NOT GUILTY!",
        "nothing useful",
        "the answer: D",
        "Guilty",
    ]
    for options in [
        {},
        {"ignore_case": True},
        {"ignore_case": True, "ignore_punctuation": True},
        {"regexes_to_ignore": ["!"]},
    ]:
        config = _config(
            "mc",
            {"function": "multi_choice_regex", "regex_pattern": r"answer is \(?([A-D])\)?", **options},
            {"function": "take_first"},
        )
        ours = FilterPipeline.from_config(config)
        theirs = _lmeval_pipeline(config, [[t] for t in texts], docs=[{"choices": choices} for _ in texts])
        assert [ours.apply([t], choices=choices) for t in texts] == theirs
    with pytest.raises(AnswerSpecError, match="choices"):
        ours.apply(["x"])


def test_config_round_trip_equality_and_hash():
    config = _config("strict-match", {"function": "regex", "regex_pattern": STRICT}, {"function": "take_first"})
    pipe = FilterPipeline.from_config(config)
    assert pipe == FilterPipeline("strict-match", (Regex(STRICT), TakeFirst()))
    assert hash(pipe) == hash(FilterPipeline.from_config(pipe.to_config()))
    assert FilterPipeline.from_config(pipe.to_config()) == pipe
    assert pipe != FilterPipeline("strict-match", (Regex(STRICT, group_select=-1), TakeFirst()))
    assert MajorityVote() != TakeFirst()
    assert DEFAULT_PIPELINE.name == "none" and DEFAULT_PIPELINE.apply(["a", "b"]) == "a"
    assert pipe.single_answer and pipe.has_regex and not DEFAULT_PIPELINE.has_regex


def test_unknown_function_is_a_value_error_naming_it():
    with pytest.raises(ValueError, match="unknown filter function 'regexp'"):
        FilterPipeline.from_config(_config("x", {"function": "regexp"}))
    with pytest.raises(AnswerSpecError, match="unknown filter function"):
        FilterPipeline.from_config(_config("x", {"function": object}))


def test_bad_regex_fails_at_construction():
    with pytest.raises(ValueError, match=r"bad regex_pattern '\(\\d\+'"):
        FilterPipeline.from_config(_config("x", {"function": "regex", "regex_pattern": r"(\d+"}))
    with pytest.raises(AnswerSpecError, match="bad regex"):
        Regex("[a-")


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"filter": []}, "'name' and 'filter'"),
        ({"name": "x", "filter": "regex"}, "list of steps"),
        ({"name": "x", "filter": [{"regex_pattern": "a"}]}, "'function' key"),
        ({"name": "x", "filter": [{"function": "regex", "pattern": "a"}]}, "unknown option.*pattern"),
        ({"name": "x", "filter": [{"function": "take_first"}, {"function": "lowercase"}]}, "follows 'take_first'"),
        ({"name": "x", "filter": [{"function": "take_first_k", "k": 0}]}, "positive integer"),
        ({"name": "", "filter": []}, "non-empty name"),
    ],
)
def test_bad_configs(config, message):
    with pytest.raises(AnswerSpecError, match=message):
        FilterPipeline.from_config(config)


def test_take_first_k_needs_k_samples_and_out_of_range_group_is_unextracted():
    pipe = FilterPipeline.from_config(_config("x", {"function": "take_first_k", "k": 3}, {"function": "take_first"}))
    with pytest.raises(ValueError, match="at least k=3"):
        pipe.apply(["a", "b"])
    assert pipe.extract("a") == ("a", True)  # one sample alone: take_first_k leaves it as it is
    # lm-eval raises IndexError for a group_select beyond the matches; sharpbench counts it unextracted
    pipe = FilterPipeline.from_config(
        _config("y", {"function": "regex", "regex_pattern": r"\d", "group_select": 2}, {"function": "take_first"})
    )
    assert pipe.extract("1 2") == ("[invalid]", False)
    assert pipe.extract("1 2 3") == ("3", True)
