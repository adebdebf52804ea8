"""Timing of compiled training steps with pytest-benchmark.

Vocabulary, used the same way in code, results and the report:

- warm-up steps: steps run before any round. The first call traces the
  `tf.function` and lets Grappler optimize the graph; it takes far longer than a
  step. Warm-up time is recorded apart (`warmup_seconds`) and is never in a round.
- round: one start and stop of the timer around `iterations` consecutive steps.
  The last step of every round reads the loss back to the host, so work that a
  device still has queued (GPU kernels run asynchronously) finishes inside it.
- iterations: steps per round, calibrated so that one round lasts at least the
  round target, which keeps timer overhead below 0.1% of a round.
- rounds: the samples that pytest-benchmark's statistics are computed over. It
  divides each round's time by `iterations`, so every stored figure (min, median,
  IQR, ...) is the time of one training step, in seconds.
- samples/s: batch size / median step time; steps/s: 1 / median step time.
"""

import dataclasses
import logging
import math
import time

import numpy as np

logger = logging.getLogger(__name__)

# A round lasts at least this many times the timer's own overhead, so the
# overhead is under 0.1% of the round.
TIMER_OVERHEAD_FACTOR = 1000
# Warm-up runs at least this many steps, and goes on until this much time has
# passed, so the first rounds do not see one-off costs (allocator growth, lazy
# kernel selection) that follow tracing.
WARMUP_MIN_STEPS = 3
WARMUP_MIN_SECONDS = 0.2


@dataclasses.dataclass
class WarmUp:
    """Warm-up cost: the first call (tracing included) and all warm-up steps."""

    steps: int
    seconds: float
    first_call_seconds: float
    loss: float


def warm_up(train_step, images, labels, timer=time.perf_counter):
    """Run untimed steps until both warm-up minimums are met; return the WarmUp."""
    start = timer()
    loss = float(train_step(images, labels).numpy())
    first_call_seconds = timer() - start

    steps = 1
    while steps < WARMUP_MIN_STEPS or timer() - start < WARMUP_MIN_SECONDS:
        loss = float(train_step(images, labels).numpy())
        steps += 1
    return WarmUp(steps, timer() - start, first_call_seconds, loss)


def timer_overhead(timer=time.perf_counter, samples=200):
    """Return the smallest measured cost of one timer call, in seconds."""
    best = math.inf
    for _ in range(samples):
        start = timer()
        best = min(best, timer() - start)
    return best


def calibrate_iterations(run_steps, round_target, timer=time.perf_counter):
    """Return the number of steps per round so a round lasts at least `round_target` seconds.

    `run_steps(n)` runs n steps and reads the loss. The count doubles from 1 until
    a round is long enough, then is scaled to the target from that measurement.
    """
    iterations = 1
    while True:
        start = timer()
        run_steps(iterations)
        elapsed = timer() - start
        if elapsed >= round_target or iterations >= 2**20:
            break
        iterations *= 2

    per_step = elapsed / iterations
    calibrated = max(1, math.ceil(round_target / per_step)) if per_step > 0 else iterations
    logger.debug(
        "calibrated %d iterations per round (%.1f us/step, round target %.1f ms)",
        calibrated, per_step * 1e6, round_target * 1e3,
    )
    return calibrated, per_step


def plan_rounds(step_seconds, iterations, max_time, min_rounds):
    """Return how many rounds fit in `max_time` seconds, but at least `min_rounds`."""
    round_seconds = step_seconds * iterations
    if round_seconds <= 0:
        return min_rounds
    return max(min_rounds, int(max_time / round_seconds))


class RoundRunner:
    """The callable that pytest-benchmark times: one training step per call.

    pytest-benchmark calls it `iterations` times per round between two timer
    reads. Every `iterations`-th call reads the loss to the host, which blocks
    until the device has finished the round's steps.
    """

    def __init__(self, train_step, images, labels, iterations):
        self._train_step = train_step
        self._images = images
        self._labels = labels
        self._iterations = iterations
        self._calls = 0
        self.losses = []

    def __call__(self):
        loss = self._train_step(self._images, self._labels)
        self._calls += 1
        if self._calls % self._iterations == 0:
            self.losses.append(float(loss.numpy()))

    def run(self, steps):
        """Run `steps` steps outside pytest-benchmark and read the last loss."""
        loss = None
        for _ in range(steps):
            loss = self._train_step(self._images, self._labels)
        return float(loss.numpy())

    @property
    def all_losses_finite(self):
        return bool(np.all(np.isfinite(self.losses)))


class PlainLoop:
    """A plain `time.perf_counter` loop of a round's steps, run between pytest-benchmark's rounds.

    Used as (part of) pedantic's teardown, it times the same number of steps as
    a round, ending with a host read, right after each round. Its per-step times
    therefore see the same machine load as the rounds beside them, and any gap
    between the two medians is the harness's own doing.
    """

    def __init__(self, train_step, images, labels, timer=time.perf_counter):
        self._train_step = train_step
        self._images = images
        self._labels = labels
        self._timer = timer
        self.iterations = 1
        self.seconds = []

    def __call__(self, *args, **kwargs):
        start = self._timer()
        for _ in range(self.iterations):
            loss = self._train_step(self._images, self._labels)
        loss.numpy()
        self.seconds.append((self._timer() - start) / self.iterations)


def chain(*teardowns):
    """Return one teardown that calls each of `teardowns` that is not None, in order."""
    active = [teardown for teardown in teardowns if teardown is not None]
    if not active:
        return None

    def teardown(*args, **kwargs):
        for function in active:
            function(*args, **kwargs)

    return teardown


def time_train_step(benchmark, train_step, images, labels, round_target, max_time, min_rounds,
                    teardown=None, plain_loop=None):
    """Time `train_step` with `benchmark.pedantic` and return the RoundRunner and its settings.

    Warm-up must already have run. `teardown`, if given, runs after every round,
    outside the timed region, and so does `plain_loop`, a PlainLoop given the
    calibrated iterations. Returns (runner, iterations, rounds).
    """
    overhead = timer_overhead()
    round_target = max(round_target, TIMER_OVERHEAD_FACTOR * overhead)

    runner = RoundRunner(train_step, images, labels, iterations=1)
    iterations, per_step = calibrate_iterations(runner.run, round_target)
    rounds = plan_rounds(per_step, iterations, max_time, min_rounds)

    runner = RoundRunner(train_step, images, labels, iterations)
    if plain_loop is not None:
        plain_loop.iterations = iterations
    benchmark.pedantic(runner, rounds=rounds, iterations=iterations, warmup_rounds=0,
                       teardown=chain(teardown, plain_loop))
    return runner, iterations, rounds
