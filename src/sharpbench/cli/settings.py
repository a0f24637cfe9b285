"""``sharpbench.toml``: defaults for the command line's options, validated with pydantic.

The CLI reads ``sharpbench.toml`` in the working directory (or the file
``$SHARPBENCH_CONFIG`` names) before any command runs::

    # sharpbench.toml
    store = "runs/sharpbench.duckdb"   # --store of every command that has one
    batch_size = 8                     # --batch-size ("auto": sharpbench eval's search on CUDA)
    dtype = "bfloat16"                 # --dtype
    device = "cuda"                    # --device
    backend = "hf"                     # --backend
    threads = 4                        # CPU threads (OMP_NUM_THREADS, unless already set)

Each key becomes the default of the option of the same name in every
command whose own default is a value (an option that is off unless given,
such as ``distill --store``, stays off). An option on the command line wins.
Unknown keys and wrong types are refused with one ``error:`` line (exit 2).
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, PositiveInt, ValidationError

from sharpbench.cli.common import CONFIG_ENV, CONFIG_FILE
from sharpbench.errors import InputError

__all__ = ["CONFIG_ENV", "CONFIG_FILE", "Settings", "SettingsError", "apply_settings", "load_settings"]



class SettingsError(InputError, ValueError):
    """``sharpbench.toml`` cannot be read, has an unknown key or a value of the wrong type."""


class Settings(BaseModel):
    """What ``sharpbench.toml`` may set; every field is optional (``None``: the command's own default)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    store: Path | None = None
    batch_size: PositiveInt | Literal["auto"] | None = None  # "auto": only where --batch-size takes it (eval)
    dtype: str | None = None
    device: str | None = None
    backend: str | None = None
    threads: PositiveInt | None = None

    def option_defaults(self) -> dict[str, Any]:
        """The option defaults this file sets, by parameter name (``threads`` is not an option)."""
        return {k: (str(v) if isinstance(v, Path) else v)
                for k, v in self.model_dump(exclude_none=True).items() if k != "threads"}


def config_path() -> Path | None:
    """``$SHARPBENCH_CONFIG`` (which must exist) or ``./sharpbench.toml`` when there is one."""
    named = os.environ.get(CONFIG_ENV, "").strip()
    if named:
        path = Path(named).expanduser()
        if not path.is_file():
            raise SettingsError(f"${CONFIG_ENV} names {path}, which does not exist")
        return path
    path = Path(CONFIG_FILE)
    return path if path.is_file() else None


def load_settings(path: Path | None = None) -> Settings:
    """Read and validate the settings file (``path``, else :func:`config_path`); no file: all defaults.

    Raises
    ------
    SettingsError
        Not TOML, an unknown key, or a value of the wrong type (the message names the key).
    """
    path = path if path is not None else config_path()
    if path is None:
        return Settings()
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise SettingsError(f"{path}: cannot read the settings ({exc})") from None
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        errors = exc.errors()
        err = errors[0]
        key = str(err["loc"][0]) if err["loc"] else "?"
        if err["type"] == "extra_forbidden":
            valid = ", ".join(Settings.model_fields)
            raise SettingsError(f"{path}: unknown setting {key!r}; valid settings: {valid}") from None
        # a setting of several accepted kinds (batch_size: a positive integer or "auto") fails once per kind
        msgs = list(dict.fromkeys(e["msg"] for e in errors if e["loc"] and str(e["loc"][0]) == key))
        raise SettingsError(f"{path}: setting {key!r}: {'; or '.join(msgs)} (got {err.get('input')!r})") from None


# Options whose ``None`` default means "the built-in default for the case" (not "off"): a settings file sets them.
# ``--batch-size``: 16 items per batch for multiple choice, 128 sequences for generation unless set.
_NONE_MEANS_DEFAULT = frozenset({"batch_size"})


def _takes_a_number(param: Any) -> bool:
    """Whether a click/typer option converts its value to a number (typer may describe its type lazily)."""
    desc = getattr(param, "type_descriptor", None)
    if desc is not None:
        return getattr(desc, "annotation", None) in (int, float)
    return getattr(getattr(param, "type", None), "name", "") in ("integer", "integer range", "float", "float range")


def default_map(command: Any, defaults: dict[str, Any]) -> dict[str, Any]:
    """click's ``default_map`` for ``command`` (a click command or group; typer may vendor click, so it
    is duck-typed) and its subcommands: ``defaults`` for every option of the same name whose own
    default is a value (not ``None``, which means "off unless given", except for ``--batch-size``)."""
    out: dict[str, Any] = {}
    for param in command.params:
        if (param.param_type_name == "option" and param.name in defaults
                and (param.default is not None or param.name in _NONE_MEANS_DEFAULT)):
            value = defaults[param.name]
            if isinstance(value, str) and _takes_a_number(param):
                continue  # batch_size = "auto": commands whose option takes a number keep their own default
            out[param.name] = value
    if hasattr(command, "commands"):
        for name, sub in command.commands.items():
            nested = default_map(sub, defaults)
            if nested:
                out[name] = nested
    return out


def apply_settings(ctx: Any, settings: Settings | None = None) -> Settings:
    """Make the settings file's values the defaults of the commands under ``ctx`` (the root group)."""
    settings = settings if settings is not None else load_settings()
    defaults = settings.option_defaults()
    if defaults:
        ctx.default_map = {**default_map(ctx.command, defaults), **(ctx.default_map or {})}
    if settings.threads is not None:
        os.environ.setdefault("OMP_NUM_THREADS", str(settings.threads))
    return settings
