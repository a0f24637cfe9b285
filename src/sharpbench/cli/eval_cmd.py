"""CLI command ``sharpbench eval``: run tasks on a model, store every answer, print lm-eval's table."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape

from sharpbench.cli.common import backend_help, dtype_help, exit_code, fail
from sharpbench.cli.eval_view import (
    Progress,
    groups_table,
    print_generation_notes,
    print_warnings,
    report_table,
    write_output_json,
)
from sharpbench.cli.fanout_view import run_many
from sharpbench.engine.batching import BatchSizeError, parse_batch_size
from sharpbench.errors import EXIT_INPUT, EXIT_INTERRUPTED


def register(app: typer.Typer) -> None:
    """Add ``eval`` to the main app."""
    app.command("eval")(eval_command)


def batch_size_option(value: Any) -> int | str:
    """``--batch-size``: a positive integer or ``auto``; anything else is a usage error (exit 2)."""
    try:
        return parse_batch_size(value)
    except BatchSizeError as exc:
        raise typer.BadParameter(str(exc)) from None


def eval_command(
    model: str = typer.Option("smollm2-135m", "--model", "-m", help="Packaged short name, local path or hub id."),
    tasks: str = typer.Option("piqa", "--tasks", "-t", help="Comma-separated tasks / groups / task files."),
    limit: Optional[int] = typer.Option(None, "--limit", "-l", min=1, help="Only the first N documents of each task."),
    num_fewshot: Optional[int] = typer.Option(None, "--num-fewshot", "-k", min=0, help="Few-shot examples per prompt."),
    dtype: str = typer.Option("float32", "--dtype", help=dtype_help()),
    batch_size: Optional[str] = typer.Option(
        None, "--batch-size", "-b", metavar="N|auto", parser=batch_size_option,
        help="Items per forward batch (default 16); generative tasks: sequences decoded together (default 128). "
        "auto: the largest batch that fits in free GPU memory (found once per task shape; the default on the CPU).",
    ),
    device: Optional[str] = typer.Option(None, "--device", help="cpu | cuda (default: the backend's choice)."),
    store: Path = typer.Option(Path("sharpbench.duckdb"), "--store", "-s", help="DuckDB result store."),
    backend: str = typer.Option("hf", "--backend", help=backend_help()),
    model_arg: list[str] = typer.Option(
        [], "--model-arg", "-M",
        help="Backend option KEY=VALUE, repeatable (openai: base_url=..., tokenizer=..., max_concurrency=8).",
    ),
    no_prefix_cache: bool = typer.Option(
        False, "--no-prefix-cache",
        help="hf: compute every context in full (the plain path) instead of each shared prefix once.",
    ),
    prefix_cache_mb: Optional[int] = typer.Option(
        None, "--prefix-cache-mb", min=0,
        help="hf: memory for prefix states kept between batches (default: 1/8 of free memory, at most 4096).",
    ),
    model_args: Optional[str] = typer.Option(
        None, "--model-args",
        help="lm-eval style, comma-separated: pretrained=NAME,dtype=auto,device_map=auto,peft=ADAPTER_DIR,"
        "trust_remote_code=true,max_length=N (hf backend; pretrained replaces --model, dtype --dtype).",
    ),
    models_file: Optional[Path] = typer.Option(
        None, "--models", help="File with one model per line: evaluate them all (sharded, see --ray)."
    ),
    ray: Optional[str] = typer.Option(
        None, "--ray", metavar="[ADDRESS]",
        help="With --models: one Ray task per (model, task shard); --ray alone starts/joins a local cluster.",
    ),
    shard_size: int = typer.Option(100, "--shard-size", min=1, help="Items per shard with --models."),
    retries: int = typer.Option(1, "--retries", min=0, help="Extra attempts of a failed shard with --models."),
    output_json: Optional[Path] = typer.Option(None, "--output-json", "-o", help="Also write the report as JSON."),
    gen_kwargs: Optional[str] = typer.Option(
        None, "--gen-kwargs",
        help="Generative tasks, lm-eval style: max_gen_toks=512,do_sample=true,temperature=0.7,top_p=0.95,top_k=50.",
    ),
    repeats: Optional[int] = typer.Option(
        None, "--repeats", min=1, help="Generative tasks: samples per item (majority vote where the task has one)."
    ),
    seed: Optional[int] = typer.Option(None, "--seed", help="Base seed of sampled generation (default 1234)."),
    apply_chat_template: bool = typer.Option(
        False, "--apply-chat-template", help="Render every prompt with the model's chat template (lm-eval's)."
    ),
    system_prompt: Optional[str] = typer.Option(None, "--system-prompt", help="System message of every prompt."),
    fewshot_as_multiturn: Optional[bool] = typer.Option(
        None, "--fewshot-as-multiturn/--no-fewshot-as-multiturn",
        help="Few-shot examples as user/assistant turns (default: on with --apply-chat-template, as lm-eval).",
    ),
) -> None:
    """Evaluate a model on multiple-choice and generative tasks; results are stored per item and reused."""
    from sharpbench.data.errors import DataQualityWarning
    from sharpbench.engine.generation import GreedyRepeatsWarning
    from sharpbench.engine.pipeline import (
        ChangedItemsWarning,
        ContextTooLongWarning,
        EvalInterrupted,
        run_eval,
    )

    console = Console(stderr=True, soft_wrap=True)
    try:
        model_kwargs = parse_model_args(model_arg)
        if model_args is not None:
            from sharpbench.models.model_args import parse_lmeval_model_args, resolve_model_args

            model, dtype, device, extra = resolve_model_args(
                parse_lmeval_model_args(model_args), model=model, dtype=dtype, device=device)
            model_kwargs.update(extra)
        gen = parse_gen_kwargs(gen_kwargs) if gen_kwargs else None
        from sharpbench.data.chat import ChatSetup

        chat = ChatSetup.from_options(apply_chat_template, system_prompt, fewshot_as_multiturn)
    except ValueError as exc:
        raise fail(exc, EXIT_INPUT) from None
    if no_prefix_cache or prefix_cache_mb is not None:
        if backend != "hf":
            raise fail("--no-prefix-cache / --prefix-cache-mb apply to the hf backend", EXIT_INPUT)
        if no_prefix_cache:
            model_kwargs["prefix_cache"] = False
        if prefix_cache_mb is not None:
            model_kwargs["prefix_cache_mb"] = prefix_cache_mb
    if ray is not None and models_file is None:
        raise fail("--ray fans out over --models FILE; give the models file", EXIT_INPUT)
    if models_file is not None:
        run_many(console, models_file, tasks, limit=limit, num_fewshot=num_fewshot, dtype=dtype,
                 batch_size=batch_size, device=device, backend=backend, store=store, ray=ray,
                 shard_size=shard_size, retries=retries, model_kwargs=model_kwargs, output_json=output_json,
                 exit_code=exit_code)
        return
    progress = Progress(console)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ContextTooLongWarning)
            warnings.simplefilter("always", ChangedItemsWarning)
            warnings.simplefilter("always", DataQualityWarning)
            warnings.simplefilter("always", GreedyRepeatsWarning)
            with progress:
                report = run_eval(
                    model, tasks, limit=limit, num_fewshot=num_fewshot, dtype=dtype,
                    batch_size=batch_size, device=device, backend=backend, store=store,
                    progress=progress.advance, on_plan=progress.plan, model_kwargs=model_kwargs,
                    gen_kwargs=gen, repeats=repeats, seed=seed, chat=None if chat.is_plain else chat,
                    tokens=progress.tokens,
                )
    except EvalInterrupted as exc:
        console.print(f"[yellow]{escape(str(exc))}[/yellow]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except KeyboardInterrupt:
        console.print("[yellow]interrupted before any item was scored[/yellow]")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except Exception as exc:  # translated to one clear line; no traceback for expected failures
        code = exit_code(exc)
        if code is None:
            raise
        print_warnings(console, caught, (DataQualityWarning,))
        raise fail(exc, code) from None
    print_warnings(console, caught, (ContextTooLongWarning, ChangedItemsWarning, DataQualityWarning,
                                     GreedyRepeatsWarning))
    print_generation_notes(console, report)
    out = Console()
    out.print(report_table(report))
    if report.groups:
        out.print(groups_table(report))
    rate = report.n_computed / report.elapsed_s if report.elapsed_s > 0 else 0.0
    console.print(
        f"{report.model_id} ({report.backend}, {report.dtype}, fingerprint {report.fingerprint[:16]}): "
        f"{report.n_computed} items computed, {sum(t.n_reused for t in report.tasks)} reused from "
        f"{report.store} in {report.elapsed_s:.1f} s ({rate:.1f} items/s)"
        + (f"; {report.n_changed} of the computed items had changed since they were stored"
           if report.n_changed else ""),
        markup=False,
    )
    if output_json is not None:
        write_output_json(output_json, report.to_dict(), report.store)


def parse_model_args(pairs: list[str]) -> dict[str, Any]:
    """``["base_url=http://h/v1", "max_concurrency=8"]`` -> dict; numbers and true/false are parsed."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key.isidentifier():
            raise ValueError(f"--model-arg expects KEY=VALUE, got {pair!r}")
        value: Any = raw.strip()
        if value.lower() in ("true", "false"):
            value = value.lower() == "true"
        else:
            for cast in (int, float):
                try:
                    value = cast(value)
                    break
                except ValueError:
                    pass
        out[key] = value
    return out


def parse_gen_kwargs(text: str) -> dict[str, Any]:
    """``"max_gen_toks=512,do_sample=true,until=Q:|</s>"`` -> dict (lm-eval's ``--gen_kwargs``; ``until`` split on ``|``)."""
    from sharpbench.data.gen import GEN_KWARGS

    out = parse_model_args([p for p in text.split(",") if p.strip()])
    unknown = sorted(set(out) - set(GEN_KWARGS))
    if unknown:
        raise ValueError(f"--gen-kwargs: unknown key(s) {', '.join(unknown)}; known: {', '.join(GEN_KWARGS)}")
    if "until" in out:
        out["until"] = tuple(str(out["until"]).split("|"))
    for key in ("max_gen_toks", "top_k"):
        if key in out and (not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < 0):
            raise ValueError(f"--gen-kwargs: {key} must be a non-negative integer, got {out[key]!r}")
    if out.get("max_gen_toks") == 0:
        raise ValueError("--gen-kwargs: max_gen_toks must be >= 1")
    return out
