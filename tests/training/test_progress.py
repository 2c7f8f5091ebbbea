"""Progress: plain periodic log lines when stderr is not a terminal."""

from __future__ import annotations

import logging

import pytest

from samlora.training import progress as progress_mod


def test_batch_jobs_get_periodic_log_lines(monkeypatch: pytest.MonkeyPatch,
                                           caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(progress_mod, "is_interactive", lambda: False)
    with caplog.at_level(logging.INFO, logger=progress_mod.__name__):
        items = list(progress_mod.progress(range(25), total=25, desc="epoch 1/3", every=10))
    assert items == list(range(25))
    lines = [r.getMessage() for r in caplog.records]
    assert [line.split(" (")[0] for line in lines] == ["epoch 1/3: 10/25", "epoch 1/3: 20/25",
                                                       "epoch 1/3: 25/25"]


def test_terminal_gets_a_bar(monkeypatch: pytest.MonkeyPatch,
                             caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(progress_mod, "is_interactive", lambda: True)
    with caplog.at_level(logging.INFO, logger=progress_mod.__name__):
        assert list(progress_mod.progress(range(5), total=5, desc="x", every=1)) == list(range(5))
    assert not caplog.records
