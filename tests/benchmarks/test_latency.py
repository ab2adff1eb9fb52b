"""Timing helpers: interleaved rounds, warm-up, the time budget, and speed ratios with their spread."""

from __future__ import annotations

import time

import pytest

from sredge.runtime.timing import INCONCLUSIVE_SPREAD, Ratio, speed_ratio, time_interleaved, time_ratios


def test_interleaved_rounds_warm_up_then_alternate():
    calls: list[str] = []
    fns = {"a": lambda: calls.append("a"), "b": lambda: calls.append("b")}
    times = time_interleaved(fns, warmup=2, rounds=3)
    assert calls == ["a", "a", "b", "b"] + ["a", "a", "b", "b"] * 3  # each timed call follows its settling call
    assert {k: len(v) for k, v in times.items()} == {"a": 3, "b": 3}
    assert all(t >= 0 for v in times.values() for t in v)


def test_a_call_is_timed_after_its_own_settling_call_not_after_another():
    """The bench audit: ONNX Runtime's threads spin on after a run, so whichever model came after another was
    timed 8-10 % slow (the same file benched twice read 1.09x). Here a call pays 5 ms when the call before it
    was another one: the timed calls never do."""
    last: list[str] = []

    def call(name):
        def run():
            if last and last[-1] != name:
                time.sleep(0.005)
            last.append(name)
        return run

    times = time_interleaved({"a": call("a"), "b": call("b")}, warmup=1, rounds=5)
    assert max(max(v) for v in times.values()) < 0.004, times
    assert time_interleaved({"a": call("a")}, warmup=0, rounds=2)["a"]  # one call alone: no settling call needed


def test_budget_stops_after_the_round_that_passed_it():
    fns = {"slow": lambda: time.sleep(0.03), "fast": lambda: None}
    times = time_interleaved(fns, warmup=0, rounds=50, budget_s=0.1)
    assert len(times["slow"]) == len(times["fast"]) == 2  # 0.06 s a round with its settling call, then 0.12 s
    assert min(times["slow"]) >= 0.03 > max(times["fast"])
    assert len(time_interleaved(fns, warmup=0, rounds=3, budget_s=0.0)["fast"]) == 1  # at least one round


# -- interleaved ratios: the one way speeds are compared --------------------------------------------


def test_speed_ratio_is_the_median_of_per_round_ratios():
    # Round 3 ran on a busy machine: both calls slowed down alike, the ratio did not move.
    r = speed_ratio([0.020, 0.021, 0.080, 0.019, 0.020], [0.010, 0.0105, 0.040, 0.0095, 0.010])
    assert r.median == pytest.approx(2.0) and r.low == pytest.approx(2.0) and r.high == pytest.approx(2.0)
    assert r.rounds == 5 and r.conclusive and r.describe() == "2.00x (2.00-2.00)"
    # Separate medians would mix rounds; the per-round ratio does not.
    assert speed_ratio([1, 2, 3, 4], [1, 2, 3, 4]).median == 1.0


@pytest.mark.parametrize("ratio, conclusive", [
    (Ratio(1.56, 1.50, 1.62, 10), True),
    (Ratio(0.60, 0.55, 0.66, 10), True),                   # slower, firmly
    (Ratio(1.02, 0.95, 1.10, 10), False),                  # straddles 1.0
    (Ratio(1.56, 1.10, 1.92, 10), False),                  # wider than INCONCLUSIVE_SPREAD of the median
    (Ratio(1.56, 1.55, 1.57, 2), False),                   # too few rounds to judge
])
def test_inconclusive_when_the_spread_straddles_one_or_is_wide(ratio, conclusive):
    assert ratio.conclusive is conclusive
    assert ("inconclusive" in ratio.describe()) is not conclusive
    assert ratio.as_dict()["conclusive"] is conclusive
    assert INCONCLUSIVE_SPREAD == 0.25


def test_speed_ratio_needs_matching_rounds():
    with pytest.raises(ValueError):
        speed_ratio([1.0, 2.0], [1.0])
    with pytest.raises(ValueError):
        speed_ratio([], [])


def test_time_ratios_against_a_baseline():
    fns = {"slow": lambda: time.sleep(0.02), "fast": lambda: time.sleep(0.004)}
    times, ratios = time_ratios(fns, "slow", warmup=0, rounds=4)
    assert {k: len(v) for k, v in times.items()} == {"slow": 4, "fast": 4}
    assert ratios["slow"].median == 1.0 and not ratios["slow"].conclusive  # itself: no difference
    assert ratios["fast"].median > 1.5  # 20 ms against 4 ms of sleep
    with pytest.raises(ValueError, match="baseline"):
        time_ratios(fns, "other", 0, 1)


def test_compare_latency_times_real_models_against_each_other():
    from sredge.benchmarks.latency import compare_latency
    from sredge.runtime.bundled import default_model

    got = compare_latency({"x2": default_model(2), "x4": default_model(4)}, "x2", 32, 48, warmup=1, rounds=3)
    assert got["x2"].speedup.median == 1.0 and got["x2"].stats.runs == got["x4"].stats.runs == 3
    assert got["x4"].stats.mpix_per_s == pytest.approx(32 * 48 * 16 / 1e6 / (got["x4"].stats.median_ms / 1e3))
