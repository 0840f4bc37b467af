"""Tests of the transport-independent parts of an execute request."""

from __future__ import annotations

import pytest

from nbsentry.execution import DeferredWork


def test_deferred_work_runs_once() -> None:
    calls: list[str] = []
    work = DeferredWork(lambda: calls.append("ran"))

    work.run()
    work.run()
    work.finish()

    assert calls == ["ran"]


def test_deferred_work_run_by_finish() -> None:
    calls: list[str] = []
    work = DeferredWork(lambda: calls.append("ran"))

    work.finish()

    assert calls == ["ran"]


def test_deferred_work_error_kept_for_finish() -> None:
    def fail() -> None:
        msg = "placing spans failed"
        raise ValueError(msg)

    work = DeferredWork(fail)
    work.run()

    with pytest.raises(ValueError, match="placing spans failed"):
        work.finish()
    # Raised once: a second finish has nothing left to report.
    work.finish()


def test_deferred_work_none() -> None:
    DeferredWork(None).finish()
