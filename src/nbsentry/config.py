"""Configuration of a notebook run, from the CLI, a YAML file or code."""

from __future__ import annotations

import math
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
)

from .exceptions import ConfigError

__all__ = [
    "EMPTY_SPOOL_MESSAGE",
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


def _reject_bool(value: object) -> object:
    """Reject booleans, which pydantic would accept as 1 and 0."""
    if isinstance(value, bool):
        msg = "Input should be a number, not a boolean"
        raise ValueError(msg)  # noqa: TRY004 - pydantic reports ValueError
    return value


def _as_list(value: object) -> object:
    """Wrap a single string or path in a list."""
    if isinstance(value, str | Path):
        return [value]
    return value


def _check_directory(path: Path | None) -> Path | None:
    """Check that a working directory exists, relative to the current one."""
    if path is None:
        return None
    if not path.exists():
        msg = f"Working directory not found: {path}"
        raise ValueError(msg)
    if not path.is_dir():
        msg = f"Working directory is not a directory: {path}"
        raise ValueError(msg)
    return path


EMPTY_SPOOL_MESSAGE = (
    "Spool folder is empty: name a folder, such as .nbsentry/spool"
)
"""Error for an empty spool path, which would mean the current folder."""


def _check_spool_text(value: object) -> object:
    """Reject an empty spool path."""
    if isinstance(value, str) and not value.strip():
        raise ValueError(EMPTY_SPOOL_MESSAGE)
    return value


def _check_sentry_name(value: str, limit: int) -> str:
    # Sentry drops an environment or release that breaks these rules from
    # every event.
    if len(value) > limit or not value.strip():
        msg = f"must be 1 to {limit} characters"
        raise ValueError(msg)
    if "/" in value or value in {".", ".."} or not value.isprintable():
        msg = "must not contain '/' or control characters, or be '.' or '..'"
        raise ValueError(msg)
    return value


def _check_environment(value: str) -> str:
    return _check_sentry_name(value, _MAX_ENVIRONMENT)


def _check_release(value: str) -> str:
    return _check_sentry_name(value, _MAX_RELEASE)


_MAX_ENVIRONMENT = 64
"""Characters Sentry accepts in an environment name."""

_MAX_RELEASE = 200
"""Characters Sentry accepts in a release name."""

_Count = Annotated[int, BeforeValidator(_reject_bool)]
"""An integer that rejects booleans."""

_Seconds = Annotated[float, BeforeValidator(_reject_bool)]
"""A float that rejects booleans but accepts integers."""


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

    paths: Annotated[list[Path], BeforeValidator(_as_list)] = Field(
        default_factory=list,
        description="Notebook files or folders searched recursively.",
    )
    exclude: Annotated[list[str], BeforeValidator(_as_list)] = Field(
        default_factory=list,
        description="Glob patterns of notebook paths to leave out.",
    )
    iterations: _Count = Field(
        default=1,
        ge=0,
        description="Passes of the business; 0 runs until stopped.",
    )
    max_executions: _Count | None = Field(
        default=None,
        ge=1,
        description="Notebooks per iteration; default all of them.",
    )
    idle_time: _Seconds = Field(
        default=60.0,
        ge=0,
        description="Seconds to wait between iterations.",
    )
    execution_idle_time: _Seconds = Field(
        default=0.0, ge=0, description="Seconds to wait between cells."
    )
    notebook_idle_time: _Seconds = Field(
        default=0.0, ge=0, description="Seconds to wait between notebooks."
    )
    error_idle_time: _Seconds = Field(
        default=60.0,
        ge=0,
        description="Seconds to wait after a failed iteration.",
    )
    working_directory: Annotated[
        Path | None, AfterValidator(_check_directory)
    ] = Field(
        default=None,
        description="Kernel working directory; default the notebook's.",
    )
    order: NotebookOrder = NotebookOrder.sorted
    flock: str = Field(default="nbsentry", min_length=1)
    kernel: str | None = Field(
        default=None,
        description="Kernel name; default the notebook's kernelspec.",
    )
    cell_timeout: _Seconds | None = Field(default=None, gt=0)
    startup_timeout: _Seconds = Field(default=60.0, gt=0)
    traces_sample: Annotated[
        TracesSample, BeforeValidator(parse_traces_sample)
    ] = 1.0
    dsn: SecretStr | None = None
    environment: Annotated[str, AfterValidator(_check_environment)] | None = (
        None
    )
    release: Annotated[str, AfterValidator(_check_release)] | None = None
    spool: Annotated[Path, BeforeValidator(_check_spool_text)] = Path(
        ".nbsentry/spool"
    )
    kernel_integrations: bool = False


def load_config_file(path: Path) -> dict[str, Any]:
    """Read a YAML config file into a mapping of option names.

    Relative paths in ``paths``, ``working-directory`` and ``spool`` are
    taken relative to the file's folder, so a config file works from any
    working directory.

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
    except UnicodeDecodeError:
        msg = f"Cannot read config file {path}: it is not UTF-8 text"
        raise ConfigError(msg) from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except _DuplicateKeyError as exc:
        key = _URL_CREDENTIALS.sub(r"\1<hidden>@", exc.key)
        msg = (
            f"Config file {path} gives option {key!r} twice, on lines"
            f" {exc.first} and {exc.second}. Keep one of them"
        )
        raise ConfigError(msg) from None
    except yaml.YAMLError as exc:
        # PyYAML's own message quotes the text around the error, which can
        # contain the DSN, so the message is rebuilt without it.
        problem = _describe_yaml_error(exc, text)
        msg = (
            f"Config file {path} is not valid YAML: {problem}. Fix the YAML"
            " syntax there. The file's text is not shown because it can"
            " contain the DSN"
        )
        raise ConfigError(msg) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        msg = (
            f"Config file {path} must hold a mapping of option names to"
            f" values, not {type(data).__name__}"
        )
        raise ConfigError(msg)
    return {
        key: _relative_to(path.parent, value) if key in _PATH_KEYS else value
        for key, value in data.items()
    }


class _DuplicateKeyError(yaml.YAMLError):
    """A mapping in a config file has the same key twice."""

    def __init__(self, key: str, first: int, second: int) -> None:
        super().__init__(key)
        self.key = key
        self.first = first
        self.second = second


class _UniqueKeyLoader(yaml.SafeLoader):
    """A safe YAML loader that rejects a key given twice in a mapping.

    PyYAML keeps the last value of a repeated key, so a second ``dsn``
    further down a file would silently win over the first.
    """

    def construct_mapping(
        self,
        node: yaml.MappingNode,
        deep: bool = False,  # noqa: FBT001, FBT002
    ) -> dict[Any, Any]:
        lines: dict[object, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if isinstance(key, str) and key in lines:
                raise _DuplicateKeyError(key, lines[key], line)
            if isinstance(key, str):
                lines[key] = line
        return super().construct_mapping(node, deep=deep)


_URL_CREDENTIALS = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://)[^\s/@'\"]*@")
"""The user part of a URL, such as a DSN's key, up to its ``@``."""

_YAML_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
"""A value that PyYAML quotes with ``%r`` in an error message."""

_YAML_SHOWN = re.compile(
    r"<[a-z ]+>|[^\w\s]|\\(?:[tnr]|x[0-9a-f]{2}|u[0-9a-f]{4}|U[0-9a-f]{8})"
)
"""Quoted values safe to show: a token name such as ``<block end>``, or
one character that is not a letter or digit, as Python's repr writes it."""


def _describe_yaml_error(exc: yaml.YAMLError, text: str) -> str:
    """Describe a YAML error by its problem and position, without file text.

    PyYAML's problem and context are fixed phrases, but some of them quote
    text from the file, such as a tag or an anchor. Those quoted values
    are replaced by ``<hidden>``.
    """
    if isinstance(exc, yaml.MarkedYAMLError):
        problem = _hide_quoted(exc.problem or "syntax error")
        described = problem
        if exc.problem_mark is not None:
            described += f" at {_yaml_position(exc.problem_mark)}"
        if exc.context:
            context = _hide_quoted(exc.context)
            described += f", {context}"
            if exc.context_mark is not None:
                described += f" ({_yaml_position(exc.context_mark)})"
        return described
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(
        exc.character, int
    ):
        # For text input, the position is an index into the whole text.
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - text.rfind("\n", 0, exc.position)
        return (
            f"unacceptable character U+{exc.character:04X} at line {line},"
            f" column {column}: {exc.reason}"
        )
    return "the file cannot be parsed"


def _yaml_position(mark: yaml.Mark) -> str:
    # PyYAML counts lines and columns from 0, and editors from 1.
    return f"line {mark.line + 1}, column {mark.column + 1}"


def _hide_quoted(phrase: str) -> str:
    def hide(match: re.Match[str]) -> str:
        if _YAML_SHOWN.fullmatch(match.group()[1:-1]):
            return match.group()
        return "<hidden>"

    return _YAML_QUOTED.sub(hide, phrase)


_PATH_KEYS = frozenset(
    {"paths", "working-directory", "working_directory", "spool"}
)
"""Config file keys whose relative paths start at the file's folder."""


def _relative_to(folder: Path, value: object) -> object:
    if isinstance(value, str) and value:
        return str(folder / value)
    if isinstance(value, list):
        return [_relative_to(folder, item) for item in value]
    return value


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
        Raised if a value is invalid, naming its key, the value and
        whether it came from ``source`` or the command line.
    """
    merged: dict[str, Any] = {}
    for key, value in file_values.items():
        merged[str(key).replace("-", "_")] = value
    given = {k: v for k, v in overrides.items() if v is not None}
    merged.update(given)
    try:
        return RunConfig.model_validate(merged)
    except ValidationError as exc:
        message = _describe_errors(exc, source, set(given))
        raise ConfigError(message) from None


def _describe_errors(
    exc: ValidationError, source: str, command_line_keys: set[str]
) -> str:
    """Describe each invalid value with its key and where it came from.

    When every error comes from ``source``, the header names it once.
    Otherwise each line names its own source.
    """
    errors = exc.errors()
    origins = [
        "the command line"
        if error["loc"] and error["loc"][0] in command_line_keys
        else source
        for error in errors
    ]
    all_from_source = set(origins) == {source}
    if all_from_source:
        lines = [f"Invalid configuration in {source}:"]
    else:
        lines = ["Invalid configuration:"]
    for error, origin in zip(errors, origins, strict=True):
        key = ".".join(_to_option_name(str(p)) for p in error["loc"])
        details = [] if all_from_source else [f"from {origin}"]
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown option; see 'nbsentry run --help'"
        else:
            shown = error.get("input")
            if isinstance(shown, Path):
                shown = str(shown)
            if key == "dsn":
                shown = "<hidden>"
            details.insert(0, f"got {shown!r}")
        suffix = f" ({', '.join(details)})" if details else ""
        # A DSN can end up in another option, such as a YAML line joined
        # to the one before it, so no URL's credentials are shown.
        line = f"  {key}: {message}{suffix}"
        lines.append(_URL_CREDENTIALS.sub(r"\1<hidden>@", line))
    return "\n".join(lines)
