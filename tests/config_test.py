# Copyright (c) 2026 nbsentry contributors. Licensed under the MIT License.
"""Tests of run settings: traces sampling, YAML files and validation."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from nbsentry.config import (
    NotebookOrder,
    RunConfig,
    build_config,
    load_config_file,
    parse_traces_sample,
)
from nbsentry.exceptions import ConfigError
from tests.support.cli import invoke_cli
from tests.support.runs import write_notebook


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0", 0.0),
        ("1", 1.0),
        ("0.25", 0.25),
        (0, 0.0),
        (1, 1.0),
        (0.5, 0.5),
        ("errors", "errors"),
        (" Errors ", "errors"),
    ],
)
def test_traces_sample_valid(value: object, expected: object) -> None:
    assert parse_traces_sample(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "abc",
        1.5,
        -0.1,
        "",
        "1.5",
        "-0.1",
        "nan",
        math.nan,
        math.inf,
        True,
        None,
    ],
)
def test_traces_sample_invalid(value: object) -> None:
    with pytest.raises(ValueError, match="invalid traces sample") as raised:
        parse_traces_sample(value)
    assert repr(value) in str(raised.value)
    assert "'errors'" in str(raised.value)


def test_defaults() -> None:
    config = RunConfig()

    assert config.iterations == 1
    assert config.max_executions is None
    assert config.idle_time == 60.0
    assert config.error_idle_time == 60.0
    assert config.execution_idle_time == 0.0
    assert config.notebook_idle_time == 0.0
    assert config.order is NotebookOrder.sorted
    assert config.flock == "nbsentry"
    assert config.traces_sample == 1.0
    assert config.spool == Path(".nbsentry/spool")
    assert config.dsn is None


def test_load_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "paths: [notebooks]\n"
        "cell-timeout: 5\n"
        "max-executions: 2\n"
        "traces-sample: errors\n"
        "order: shuffled\n"
        "flock: nightly\n",
        encoding="utf-8",
    )

    config = build_config(load_config_file(path), {}, source=str(path))

    assert config.paths == [tmp_path / "notebooks"]
    assert config.cell_timeout == 5.0
    assert config.max_executions == 2
    assert config.traces_sample == "errors"
    assert config.order is NotebookOrder.shuffled
    assert config.flock == "nightly"


def test_options_override_file() -> None:
    file_values = {"flock": "from-file", "iterations": 3}
    overrides = {"flock": "from-option", "iterations": None}

    config = build_config(file_values, overrides, source="run.yaml")

    assert config.flock == "from-option"
    assert config.iterations == 3


def test_unknown_key() -> None:
    with pytest.raises(ConfigError) as raised:
        build_config({"cell-timout": 5}, {}, source="run.yaml")
    assert str(raised.value) == (
        "Invalid configuration in run.yaml:\n"
        "  cell-timout: unknown option; see 'nbsentry run --help'"
    )


def test_empty_spool_in_file(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text('paths: [notebooks]\nspool: ""\n', encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        build_config(load_config_file(path), {}, source=str(path))
    assert "spool: Spool folder is empty: name a folder" in str(raised.value)


def test_bad_values_named() -> None:
    file_values = {"iterations": -1, "traces-sample": "abc"}

    with pytest.raises(ConfigError) as raised:
        build_config(file_values, {}, source="run.yaml")
    lines = str(raised.value).splitlines()
    assert lines[0] == "Invalid configuration in run.yaml:"
    assert lines[1].startswith("  iterations: ")
    assert lines[1].endswith("(got -1)")
    assert lines[2].startswith("  traces-sample: invalid traces sample 'abc'")


def test_bad_value_from_command_line() -> None:
    with pytest.raises(ConfigError) as raised:
        build_config({"iterations": 3}, {"iterations": -1}, source="run.yaml")
    lines = str(raised.value).splitlines()
    assert lines[0] == "Invalid configuration:"
    assert lines[1].startswith("  iterations: ")
    assert lines[1].endswith("(got -1, from the command line)")
    assert "run.yaml" not in str(raised.value)


def test_bad_values_from_both_sources() -> None:
    file_values = {"flock": "", "iterations": 2}
    overrides = {"cell_timeout": -5.0, "iterations": None}

    with pytest.raises(ConfigError) as raised:
        build_config(file_values, overrides, source="run.yaml")
    lines = str(raised.value).splitlines()
    assert lines[0] == "Invalid configuration:"
    assert len(lines) == 3
    assert "  flock: " in str(raised.value)
    assert "(got '', from run.yaml)" in str(raised.value)
    assert "  cell-timeout: " in str(raised.value)
    assert "(got -5.0, from the command line)" in str(raised.value)


@pytest.mark.parametrize(
    "key",
    [
        "iterations",
        "max-executions",
        "idle-time",
        "execution-idle-time",
        "notebook-idle-time",
        "error-idle-time",
        "cell-timeout",
        "startup-timeout",
    ],
)
@pytest.mark.parametrize("text", ["true", "false"])
def test_yaml_boolean_number_rejected(
    tmp_path: Path, key: str, text: str
) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(f"{key}: {text}\n", encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        build_config(load_config_file(path), {}, source=str(path))
    (line,) = str(raised.value).splitlines()[1:]
    assert line.startswith(f"  {key}: ")
    assert "not a boolean" in line
    assert line.endswith(f"(got {text.title()})")
    assert str(raised.value).startswith(f"Invalid configuration in {path}:")


def test_yaml_integers_for_floats(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "idle-time: 5\ncell-timeout: 2\nstartup-timeout: 30\n",
        encoding="utf-8",
    )

    config = build_config(load_config_file(path), {}, source=str(path))

    assert config.idle_time == 5.0
    assert config.cell_timeout == 2.0
    assert config.startup_timeout == 30.0


def test_yaml_single_path_and_exclude(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("paths: p.ipynb\nexclude: helper*\n", encoding="utf-8")

    config = build_config(load_config_file(path), {}, source=str(path))

    assert config.paths == [tmp_path / "p.ipynb"]
    assert config.exclude == ["helper*"]


def test_working_directory_exists(tmp_path: Path) -> None:
    config = build_config(
        {}, {"working_directory": tmp_path}, source="run.yaml"
    )

    assert config.working_directory == tmp_path


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("absent", "Working directory not found"),
        ("file.txt", "Working directory is not a directory"),
    ],
)
def test_working_directory_invalid(
    tmp_path: Path, name: str, reason: str
) -> None:
    (tmp_path / "file.txt").write_text("x", encoding="utf-8")
    path = tmp_path / name

    with pytest.raises(ConfigError) as raised:
        build_config({}, {"working_directory": path}, source="run.yaml")
    (line,) = str(raised.value).splitlines()[1:]
    assert line == (
        f"  working-directory: {reason}: {path}"
        f" (got {str(path)!r}, from the command line)"
    )


def test_dsn_hidden_in_errors() -> None:
    with pytest.raises(ConfigError) as raised:
        build_config(
            {"dsn": ["https://secretkey@example.invalid/1"]}, {}, source="x"
        )
    assert "secretkey" not in str(raised.value)
    assert "  dsn: " in str(raised.value)
    assert "(got '<hidden>')" in str(raised.value)


@pytest.mark.parametrize(
    "values",
    [
        {"cell_timeout": "https://secretkey@example.invalid/1"},
        {"order": "sorted https://secretkey:other@example.invalid/1"},
        {"https://secretkey@example.invalid/1": 1},
    ],
)
def test_dsn_in_other_option_hidden(values: dict[str, Any]) -> None:
    with pytest.raises(ConfigError) as raised:
        build_config(values, {}, source="x")

    message = str(raised.value)
    assert "secretkey" not in message
    assert "other@" not in message
    assert "https://<hidden>@example.invalid/1" in message


def test_load_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"

    with pytest.raises(ConfigError) as raised:
        load_config_file(path)
    assert str(raised.value) == (
        f"Cannot read config file {path}: No such file or directory"
    )


def test_load_not_yaml(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("paths: [unclosed\n", encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        load_config_file(path)
    assert str(raised.value).startswith(
        f"Config file {path} is not valid YAML"
    )


def test_load_not_mapping(tmp_path: Path) -> None:
    path = tmp_path / "list.yaml"
    path.write_text("- notebooks\n", encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        load_config_file(path)
    assert str(raised.value) == (
        f"Config file {path} must hold a mapping of option names to values,"
        " not list"
    )


def test_load_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("", encoding="utf-8")

    assert load_config_file(path) == {}


def test_cli_missing_working_directory(tmp_path: Path) -> None:
    missing = tmp_path / "absent"
    notebook = write_notebook(tmp_path / "nb.ipynb", ["x = 1"])

    result = invoke_cli([str(notebook), "--working-directory", str(missing)])

    assert result.exit_code == 2
    assert f"Working directory not found: {missing}" in result.stderr
    assert "from the command line" in result.stderr


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("environment", "a/b"),
        ("environment", "x" * 65),
        ("environment", "line\nbreak"),
        ("environment", ".."),
        ("release", "."),
        ("release", "a/b"),
        ("release", "x" * 201),
    ],
)
def test_sentry_names_rejected(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        build_config({}, {key: value, "paths": ["."]}, source="test")

    assert f"  {key}: must " in str(caught.value)
    assert repr(value) in str(caught.value)


def test_sentry_names_accepted() -> None:
    config = build_config(
        {},
        {"environment": "production", "release": "app@1.2.3"},
        source="test",
    )

    assert config.environment == "production"
    assert config.release == "app@1.2.3"


def test_config_file_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"\xff\xfe")

    with pytest.raises(ConfigError, match="is not UTF-8 text"):
        load_config_file(path)


def test_file_paths_relative_to_file(tmp_path: Path) -> None:
    path = tmp_path / "conf" / "run.yaml"
    path.parent.mkdir()
    path.write_text(
        "paths: [nb, /abs/nb]\nworking-directory: work\nspool: out\n",
        encoding="utf-8",
    )

    values = load_config_file(path)

    assert values["paths"] == [str(path.parent / "nb"), "/abs/nb"]
    assert values["working-directory"] == str(path.parent / "work")
    assert values["spool"] == str(path.parent / "out")


_KEY = "feedfacecafebeefdeadc0dedecafbad"


@pytest.mark.parametrize(
    ("dsn_line", "position"),
    [
        (f"dsn: http://{_KEY}@127.0.0.1:9/1: x", "line 2, column 59"),
        (f'dsn: "http://{_KEY}@127.0.0.1:9/1', "line 3, column 1"),
    ],
    ids=["mapping-value", "unclosed-quote"],
)
def test_yaml_error_hides_dsn(
    tmp_path: Path, dsn_line: str, position: str
) -> None:
    notebook = write_notebook(tmp_path / "nb.ipynb", ["x = 1"])
    path = tmp_path / "run.yaml"
    path.write_text(f"paths: [{notebook}]\n{dsn_line}\n", encoding="utf-8")

    result = invoke_cli(["--config", str(path)])

    assert result.exit_code == 2
    # Rich may wrap the message, so whitespace is removed before the key
    # is looked for in pieces of four characters.
    output = "".join(result.output.split())
    pieces = {_KEY[i : i + 4] for i in range(len(_KEY) - 3)}
    assert [piece for piece in pieces if piece in output] == []
    message = " ".join(result.stderr.split())
    assert f"Config file {path} is not valid YAML: " in message
    assert f" at {position}" in message
    assert "Fix the YAML syntax there." in message


def test_yaml_error_hides_quoted_text(tmp_path: Path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(f"dsn: !{_KEY} x\nflock: *{_KEY}\n", encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        load_config_file(path)
    assert _KEY not in str(raised.value)
    assert "<hidden>" in str(raised.value)
    assert raised.value.__cause__ is None


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (f"dsn: {_KEY}\nflock: a\ndsn: {_KEY}\n", "dsn"),
        (
            (
                "https://secretkey@example.invalid/1: 1\n"
                "https://secretkey@example.invalid/1: 2\n"
            ),
            "https://<hidden>@example.invalid/1",
        ),
    ],
)
def test_load_duplicate_key(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError) as raised:
        load_config_file(path)
    lines = "1 and 3" if key == "dsn" else "1 and 2"
    assert str(raised.value) == (
        f"Config file {path} gives option {key!r} twice, on lines {lines}."
        " Keep one of them"
    )
