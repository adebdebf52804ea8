"""Timing logic, tested with a fake clock and fake training steps instead of TensorFlow."""

import math

import pytest

import bench.timing as timing
from bench.timing import (
    WARMUP_MIN_SECONDS,
    WARMUP_MIN_STEPS,
    RoundRunner,
    calibrate_iterations,
    plan_rounds,
    warm_up,
)


class FakeClock:
    """A timer that moves only when a fake step advances it."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now

    def advance(self, seconds):
        self.now += seconds


class FakeLoss:
    """A loss tensor stand-in that counts host reads through `.numpy()`."""

    def __init__(self, value, reads):
        self._value = value
        self._reads = reads

    def numpy(self):
        self._reads.append(self._value)
        return self._value


class FakeStep:
    """A training step that returns `losses` in turn and advances `clock` per call."""

    def __init__(self, clock=None, seconds_per_call=(0.0,), losses=(1.0,)):
        self.clock = clock
        self.seconds_per_call = list(seconds_per_call)
        self.losses = list(losses)
        self.calls = 0
        self.reads = []

    def __call__(self, images, labels):
        index = self.calls
        self.calls += 1
        if self.clock is not None:
            self.clock.advance(self.seconds_per_call[min(index, len(self.seconds_per_call) - 1)])
        return FakeLoss(self.losses[index % len(self.losses)], self.reads)


def steps_on(clock, seconds_per_step, calls):
    """Return a `run_steps(n)` that records n and advances `clock` by n steps."""

    def run_steps(n):
        calls.append(n)
        clock.advance(n * seconds_per_step)

    return run_steps


def test_calibrate_exact_round():
    # Powers of two keep the fake clock's arithmetic exact.
    clock, calls = FakeClock(), []
    iterations, per_step = calibrate_iterations(steps_on(clock, 2**-10, calls), 2**-5, timer=clock)
    assert iterations == 32
    assert per_step == 2**-10
    assert calls == [1, 2, 4, 8, 16, 32]


@pytest.mark.parametrize("step_seconds", [0.001, 0.0003, 0.0137, 0.05])
@pytest.mark.parametrize("round_target", [0.02, 0.005])
def test_calibrated_round_meets_target(step_seconds, round_target):
    clock = FakeClock()
    iterations, per_step = calibrate_iterations(steps_on(clock, step_seconds, []), round_target, timer=clock)
    assert iterations * step_seconds >= round_target * (1 - 1e-9)
    assert per_step == pytest.approx(step_seconds)


@pytest.mark.parametrize("step_seconds", [0.001, 0.0003, 0.0137])
def test_calibrated_round_not_oversized(step_seconds):
    clock = FakeClock()
    iterations, _ = calibrate_iterations(steps_on(clock, step_seconds, []), 0.02, timer=clock)
    assert (iterations - 1) * step_seconds < 0.02


def test_calibrate_slow_step_gives_one():
    clock, calls = FakeClock(), []
    iterations, per_step = calibrate_iterations(steps_on(clock, 0.05, calls), 0.02, timer=clock)
    assert iterations == 1
    assert per_step == 0.05
    assert calls == [1]


def test_calibrate_stops_at_cap():
    """A clock that never moves ends the doubling at 2**20 steps instead of looping forever."""
    clock, calls = FakeClock(), []
    iterations, per_step = calibrate_iterations(steps_on(clock, 0.0, calls), 0.02, timer=clock)
    assert calls[-1] == 2**20
    assert iterations == 2**20
    assert per_step == 0.0


def test_plan_rounds_fills_max_time():
    assert plan_rounds(0.001, 20, max_time=1.0, min_rounds=5) == 50


def test_plan_rounds_rounds_down():
    assert plan_rounds(0.003, 10, max_time=1.0, min_rounds=1) == 33


def test_plan_rounds_min_rounds_floor():
    assert plan_rounds(0.001, 20, max_time=0.01, min_rounds=5) == 5


def test_plan_rounds_zero_step_time():
    assert plan_rounds(0.0, 20, max_time=1.0, min_rounds=7) == 7


def test_warm_up_slow_first_call():
    clock = FakeClock()
    step = FakeStep(clock, seconds_per_call=[1.0, 0.01], losses=[3.0, 2.0, 1.5])

    result = warm_up(step, None, None, timer=clock)

    assert result.steps == WARMUP_MIN_STEPS
    assert step.calls == WARMUP_MIN_STEPS
    assert result.first_call_seconds == 1.0
    assert result.seconds == pytest.approx(1.02)
    assert result.loss == 1.5


def test_warm_up_runs_min_seconds():
    clock = FakeClock()
    step_seconds = 2**-6  # 13 steps are the first to reach 0.2 s
    step = FakeStep(clock, seconds_per_call=[step_seconds])

    result = warm_up(step, None, None, timer=clock)

    assert result.steps == math.ceil(WARMUP_MIN_SECONDS / step_seconds)
    assert result.steps == 13
    assert result.seconds >= WARMUP_MIN_SECONDS
    assert result.first_call_seconds == step_seconds


def test_warm_up_reads_every_loss():
    clock = FakeClock()
    step = FakeStep(clock, seconds_per_call=[0.1])

    result = warm_up(step, None, None, timer=clock)

    assert len(step.reads) == result.steps


def test_runner_reads_once_per_round():
    step = FakeStep(losses=[float(i) for i in range(1, 13)])
    runner = RoundRunner(step, None, None, iterations=4)

    for _ in range(12):
        runner()

    assert step.calls == 12
    assert step.reads == [4.0, 8.0, 12.0]
    assert runner.losses == [4.0, 8.0, 12.0]


def test_runner_partial_round_no_read():
    step = FakeStep()
    runner = RoundRunner(step, None, None, iterations=5)

    for _ in range(4):
        runner()

    assert step.reads == []


def test_runner_finite_losses():
    runner = RoundRunner(FakeStep(losses=[2.0, 1.0]), None, None, iterations=2)
    for _ in range(4):
        runner()
    assert runner.all_losses_finite


@pytest.mark.parametrize("bad_loss", [math.nan, math.inf])
def test_runner_non_finite_loss(bad_loss):
    runner = RoundRunner(FakeStep(losses=[2.0, bad_loss, 1.0, 0.5]), None, None, iterations=2)
    for _ in range(4):
        runner()
    assert not math.isfinite(runner.losses[0])
    assert not runner.all_losses_finite


def test_runner_run_reads_last_loss():
    step = FakeStep(losses=[3.0, 2.0, 1.0])
    runner = RoundRunner(step, None, None, iterations=1)

    assert runner.run(3) == 1.0
    assert step.calls == 3
    assert step.reads == [1.0]
    assert runner.losses == []


class FakeBenchmark:
    """pytest-benchmark's fixture reduced to `pedantic`, calling the target as 5.3.1 does.

    Each round calls the target `iterations` times, then `teardown` outside the
    timer. With iterations > 1, one more untimed call follows the last round,
    because pytest-benchmark needs the target's return value.
    """

    def __init__(self):
        self.kwargs = None

    def pedantic(self, target, args=(), kwargs=None, setup=None, teardown=None,
                 rounds=1, warmup_rounds=0, iterations=1):
        self.kwargs = {"rounds": rounds, "iterations": iterations, "warmup_rounds": warmup_rounds}
        for _ in range(rounds):
            for _ in range(iterations):
                target()
            if teardown is not None:
                teardown()

        if iterations > 1:
            target()
            if teardown is not None:
                teardown()


@pytest.fixture
def fixed_calibration(monkeypatch):
    """Make time_train_step calibrate to 25 steps of 4 ms, and return the round targets it requests."""
    calibrated_with = []

    def fake_calibrate(run_steps, round_target):
        calibrated_with.append(round_target)
        run_steps(2)
        return 25, 0.004

    monkeypatch.setattr(timing, "timer_overhead", lambda: 1e-4)
    monkeypatch.setattr(timing, "calibrate_iterations", fake_calibrate)
    return calibrated_with


def test_time_train_step_wiring(fixed_calibration):
    benchmark = FakeBenchmark()
    step = FakeStep()

    runner, iterations, rounds = timing.time_train_step(
        benchmark, step, None, None, round_target=0.02, max_time=1.0, min_rounds=3
    )

    # The round target is raised to 1000 timer overheads (0.1 s) when that is longer.
    assert fixed_calibration == [pytest.approx(0.1)]
    assert iterations == 25
    assert rounds == plan_rounds(0.004, 25, 1.0, 3)
    assert benchmark.kwargs == {"rounds": rounds, "iterations": 25, "warmup_rounds": 0}
    assert len(runner.losses) == rounds
    assert step.calls == 2 + rounds * iterations + 1


def test_time_train_step_teardown(fixed_calibration):
    teardowns = []
    step = FakeStep()

    _, iterations, rounds = timing.time_train_step(
        FakeBenchmark(), step, None, None, round_target=0.02, max_time=1.0, min_rounds=3,
        teardown=lambda: teardowns.append(step.calls),
    )

    assert len(teardowns) == rounds + 1
    assert teardowns[0] == 2 + iterations


def test_plain_loop_times_round_steps():
    from bench.timing import PlainLoop

    clock = iter([0.0, 0.030, 1.0, 1.012])
    calls = []

    class Loss:
        def numpy(self):
            return 1.0

    def step(images, labels):
        calls.append(1)
        return Loss()

    plain = PlainLoop(step, None, None, timer=lambda: next(clock))
    plain.iterations = 3
    plain()
    plain()
    assert len(calls) == 6
    assert plain.seconds == [0.010, pytest.approx(0.004)]


def test_chain_skips_none():
    from bench.timing import chain

    seen = []
    teardown = chain(None, lambda: seen.append("a"), lambda: seen.append("b"))
    teardown()
    assert seen == ["a", "b"]
    assert chain(None, None) is None
