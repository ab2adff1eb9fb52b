"""Timing helpers: interleaved rounds, warm-up and the time budget."""

from __future__ import annotations

import time

from sredge.runtime.timing import time_interleaved


def test_interleaved_rounds_warm_up_then_alternate():
    calls: list[str] = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = time_interleaved(fns, warmup=2, rounds=3)
    assert calls == ["a", "a", "b", "b"] + ["a", "b"] * 3
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    assert all(t >= 0 for v in times.values() for t in v)


def test_budget_stops_after_the_round_that_passed_it():
    fns = {"slow": lambda: time.sleep(0.03), "fast": lambda: None}
    times = time_interleaved(fns, warmup=0, rounds=50, budget_s=0.05)
    assert len(times["slow"]) == len(times["fast"]) == 2  # 0.03 s, then 0.06 s > 0.05 s: stop
    assert min(times["slow"]) >= 0.03 > max(times["fast"])
    assert len(time_interleaved(fns, warmup=0, rounds=3, budget_s=0.0)["fast"]) == 1  # at least one round
