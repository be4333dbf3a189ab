"""Rung gates (runtime/rung_gates.py): how a gated trial job and the AutoML engine meet in files."""
from __future__ import annotations

import itertools
import os
import select

import pytest

from skillbank.runtime import rung_gates
from skillbank.runtime.rung_gates import GatePlan, RungGateError, WakePipe


def test_a_job_reads_the_plan_the_engine_wrote(tmp_path, monkeypatch):
    monkeypatch.delenv(rung_gates.GATE_ENV, raising=False)
    assert rung_gates.gate_plan() is None  # not an AutoML trial job: never waits
    folder = rung_gates.prepare_gate(tmp_path / "gates" / "trial-3", (3, 1), tmp_path / "wake.fifo")
    monkeypatch.setenv(rung_gates.GATE_ENV, str(folder))
    plan = rung_gates.gate_plan()
    assert plan.rungs == (1, 3) and plan.wake == tmp_path / "wake.fifo"
    assert plan.orphan_after_s == rung_gates.ORPHAN_AFTER_S


def test_a_plan_that_cannot_be_read_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(rung_gates.GATE_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(RungGateError, match="SKILLBANK_RUNG_GATE=.*nowhere: cannot read its plan.json"):
        rung_gates.gate_plan()


def test_reaching_a_rung_wakes_the_engine_and_an_open_gate_lets_the_job_on(tmp_path):
    with WakePipe(tmp_path / "wake.fifo") as pipe:
        folder = rung_gates.prepare_gate(tmp_path / "gate", (1,), pipe.path)
        plan = GatePlan(folder, (1,), pipe.path)
        rung_gates.open_gate(folder, 1)  # the engine may decide before the job gets there
        rung_gates.wait_at_rung(plan, 1)
        readable, _, _ = select.select([pipe.fd], [], [], 0)
        assert readable  # the job's byte
        pipe.drain()
        assert select.select([pipe.fd], [], [], 0)[0] == []
    # a rerun finds the FIFO where the first run left it
    with WakePipe(tmp_path / "wake.fifo") as again:
        assert rung_gates.wake_engine(again.path) is True
    assert rung_gates.wake_engine(tmp_path / "wake.fifo") is False  # nobody reads it now


def test_a_rerun_new_gates_start_closed(tmp_path):
    folder = rung_gates.prepare_gate(tmp_path / "gate", (1, 3), None)
    rung_gates.open_gate(folder, 1)
    rung_gates.prepare_gate(folder, (1, 3), None)  # the next job of the same folder
    assert not (folder / "open-1").exists()


def test_a_job_whose_runner_went_away_gives_up_after_the_orphan_time(tmp_path):
    with WakePipe(tmp_path / "wake.fifo") as pipe:
        fifo = pipe.path
    plan = GatePlan(tmp_path, (1,), fifo, orphan_after_s=30.0)
    ticks = itertools.count()
    clock = lambda: next(ticks) * 0.5  # noqa: E731 - half a second per look
    with pytest.raises(RungGateError, match="waited 30 s after epoch 1 .*rerun the same `skillbank automl`"):
        rung_gates.wait_at_rung(plan, 1, clock=clock, sleep=lambda s: None)
    assert os.path.exists(fifo)


def test_a_runner_that_comes_back_is_woken_and_the_wait_goes_on(tmp_path):
    with WakePipe(tmp_path / "wake.fifo") as pipe:
        fifo = pipe.path
    plan = GatePlan(tmp_path, (1,), fifo, orphan_after_s=5.0)
    ticks = itertools.count()
    rerun: list[WakePipe] = []

    def sleep(_seconds: float) -> None:
        step = next(ticks)
        if step == 4:  # the rerun starts while the job waits
            rerun.append(WakePipe(fifo).__enter__())
        if step == 40:  # ... and promotes it, long after the orphan time had it not come
            rung_gates.open_gate(tmp_path, 1)

    clock_ticks = itertools.count()
    rung_gates.wait_at_rung(plan, 1, clock=lambda: next(clock_ticks) * 0.5, sleep=sleep)
    try:
        assert select.select([rerun[0].fd], [], [], 0)[0]  # told that this job waits
    finally:
        rerun[0].__exit__(None, None, None)
