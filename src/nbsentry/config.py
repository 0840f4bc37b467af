"""Configuration of a notebook run, from the CLI, a YAML file or code."""

from __future__ import annotations

import math
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
)

from .exceptions import ConfigError

__all__ = [
    "NotebookOrder",
    "RunConfig",
    "TracesSample",
    "load_config_file",
    "parse_traces_sample",
]

TracesSample = float | Literal["errors"]
"""Traces sampling: a rate in [0, 1], or ``errors`` for failed runs only."""


class NotebookOrder(StrEnum):
    """Order in which notebooks run within a pass over them."""

    sorted = "sorted"
    shuffled = "shuffled"


def parse_traces_sample(value: object) -> TracesSample:
    """Parse a traces sampling setting.

    Parameters
    ----------
    value
        A float in [0, 1], a string holding one, or the string ``errors``.

    Returns
    -------
    float or str
        The rate as a float, or ``"errors"``.

    Raises
    ------
    ValueError
        Raised if the value is neither a rate in [0, 1] nor ``errors``.
    """
    if isinstance(value, str) and value.strip().lower() == "errors":
        return "errors"
    if isinstance(value, bool):
        rate = math.nan
    elif isinstance(value, int | float):
        rate = float(value)
    elif isinstance(value, str):
        try:
            rate = float(value)
        except ValueError:
            rate = math.nan
    else:
        rate = math.nan
    if not 0.0 <= rate <= 1.0:
        msg = (
            f"invalid traces sample {value!r}: use a rate between 0 and 1,"
            " or 'errors' to send only transactions with an error"
        )
        raise ValueError(msg)
    return rate


def _to_option_name(name: str) -> str:
    return name.replace("_", "-")


class RunConfig(BaseModel):
    """Settings of one ``nbsentry run``.

    Field names are the CLI options without dashes; a YAML config file uses
    the option names (``cell-timeout``), and code may use either.
    """

    model_config = ConfigDict(
        alias_generator=_to_option_name,
        validate_by_name=True,
        validate_by_alias=True,
        extra="forbid",
        frozen=True,
    )

    paths: list[Path] = Field(
        default_factory=list,
        description="Notebook files or folders searched recursively.",
    )
    exclude: list[str] = Field(
        default_factory=list,
        description="Glob patterns of notebook paths to leave out.",
    )
    iterations: int = Field(
        default=1,
        ge=0,
        description="Passes of the business; 0 runs until stopped.",
    )
    max_executions: int | None = Field(
        default=None,
        ge=1,
        description="Notebooks per iteration; default all of them.",
    )
    idle_time: float = Field(
        default=60.0,
        ge=0,
        description="Seconds to wait between iterations.",
    )
    execution_idle_time: float = Field(
        default=0.0, ge=0, description="Seconds to wait between cells."
    )
    notebook_idle_time: float = Field(
        default=0.0, ge=0, description="Seconds to wait between notebooks."
    )
    error_idle_time: float = Field(
        default=60.0,
        ge=0,
        description="Seconds to wait after a failed iteration.",
    )
    working_directory: Path | None = Field(
        default=None,
        description="Kernel working directory; default the notebook's.",
    )
    order: NotebookOrder = NotebookOrder.sorted
    flock: str = Field(default="nbsentry", min_length=1)
    kernel: str | None = Field(
        default=None,
        description="Kernel name; default the notebook's kernelspec.",
    )
    cell_timeout: float | None = Field(default=None, gt=0)
    startup_timeout: float = Field(default=60.0, gt=0)
    traces_sample: Annotated[
        TracesSample, BeforeValidator(parse_traces_sample)
    ] = 1.0
    dsn: SecretStr | None = None
    environment: str | None = None
    release: str | None = None
    spool: Path = Path(".nbsentry/spool")
    kernel_integrations: bool = False


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping of option names.

    Parameters
    ----------
    path
        Path of the YAML file.

    Returns
    -------
    dict
        The mapping, not yet validated.

    Raises
    ------
    ConfigError
        Raised if the file cannot be read, is not YAML, or is not a
        mapping.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        msg = f"Cannot read config file {path}: {exc.strerror}"
        raise ConfigError(msg) from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        msg = f"Config file {path} is not valid YAML: {exc}"
        raise ConfigError(msg) from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        msg = (
            f"Config file {path} must hold a mapping of option names to"
            f" values, not {type(data).__name__}"
        )
        raise ConfigError(msg)
    return data


def build_config(
    file_values: dict[str, Any], overrides: dict[str, Any], *, source: str
) -> RunConfig:
    """Validate config file values with command-line overrides on top.

    Parameters
    ----------
    file_values
        Values read from the config file, keyed by option name.
    overrides
        Values given on the command line, keyed by field name; ``None``
        values are left out.
    source
        Where ``file_values`` came from, for error messages.

    Returns
    -------
    RunConfig
        The validated configuration.

    Raises
    ------
    ConfigError
        Raised if a value is invalid, naming its key and the value.
    """
    merged: dict[str, Any] = {}
    for key, value in file_values.items():
        merged[str(key).replace("-", "_")] = value
    merged.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return RunConfig.model_validate(merged)
    except ValidationError as exc:
        raise ConfigError(_describe_errors(exc, source)) from None


def _describe_errors(exc: ValidationError, source: str) -> str:
    lines = [f"Invalid configuration in {source}:"]
    for error in exc.errors():
        key = ".".join(_to_option_name(str(p)) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown option; see 'nbsentry run --help'"
            lines.append(f"  {key}: {message}")
            continue
        shown = error.get("input")
        if key == "dsn":
            shown = "<hidden>"
        lines.append(f"  {key}: {message} (got {shown!r})")
    return "\n".join(lines)
