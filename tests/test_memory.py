"""Memory figures: byte account, allocator statistics, RSS and out-of-memory cases."""

import os
import subprocess
import sys

import keras
import pytest

from bench.memory import (
    ALLOCATOR_ENV,
    AllocatorProbe,
    byte_account,
    enable_cpu_allocator_stats,
    memory_figures,
    peak_rss_bytes,
)
from models.registry import build_model
from models.strategies import apply_strategy, parse_strategy
from models.train_step import make_optimizer, make_train_step

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def account_for(strategy, optimizer_name="adam"):
    model = build_model("mlp-sequential")
    plan = apply_strategy(model, parse_strategy(strategy), 2)
    optimizer = make_optimizer(optimizer_name)
    make_train_step(model, plan.variables, optimizer)  # builds the optimizer's slots
    return byte_account(model, plan, optimizer)


def test_adam_slots_follow_shapes():
    # Adam keeps two float32 slots (momentum, velocity) per trained variable.
    assert account_for("full").optimizer_slot_bytes == 2 * 266_610 * 4
    assert account_for("frozen-prefix").optimizer_slot_bytes == 2 * 31_110 * 4
    assert account_for("dense2-only").optimizer_slot_bytes == 2 * 30_100 * 4


def test_frozen_strategies_hold_fewer_slots():
    full = account_for("full").optimizer_slot_bytes
    assert account_for("frozen-prefix").optimizer_slot_bytes < full
    assert account_for("dense2-only").optimizer_slot_bytes < full


def test_plain_sgd_has_no_slots():
    assert account_for("full", "sgd").optimizer_slot_bytes == 0


def test_momentum_sgd_has_one_slot_per_variable():
    model = build_model("mlp-sequential")
    plan = apply_strategy(model, parse_strategy("dense2-only"))
    optimizer = keras.optimizers.SGD(momentum=0.9)
    make_train_step(model, plan.variables, optimizer)
    account = byte_account(model, plan, optimizer)
    assert account.optimizer_slot_count == 2
    assert account.optimizer_slot_bytes == 30_100 * 4


def test_gradients_match_trained_bytes():
    account = account_for("dense2-only")
    assert account.gradient_bytes == 30_100 * 4
    assert account.param_bytes == 266_610 * 4


def test_unavailable_figures_are_none():
    figures = memory_figures(account_for("full"), None, None, 32, 1, 2)
    assert figures["allocator_peak_above_resident_bytes"] is None
    assert figures["bytes_per_sample"] is None
    assert figures["activation_bytes_estimate"] is None


def test_figures_derive_from_peak():
    account = account_for("dense2-only")
    figures = memory_figures(account, allocator_peak=1_000_000, allocator_resident=400_000,
                             batch_size=100, rss_before=1, rss_after=2)
    assert figures["allocator_peak_above_resident_bytes"] == 600_000
    assert figures["bytes_per_sample"] == 6_000
    assert figures["activation_bytes_estimate"] == 600_000 - account.gradient_bytes


def test_rss_is_positive():
    assert peak_rss_bytes() > 0


def test_enable_sets_variable_before_import():
    environ = {}
    status = enable_cpu_allocator_stats(environ, modules={})
    assert status.available
    assert environ[ALLOCATOR_ENV] == "true"


def test_enable_after_import_is_unavailable():
    environ = {}
    status = enable_cpu_allocator_stats(environ, modules={"tensorflow": object()})
    assert not status.available
    assert ALLOCATOR_ENV in status.reason
    assert ALLOCATOR_ENV not in environ


def run_python(code, env_update=None):
    env = {k: v for k, v in os.environ.items() if k != ALLOCATOR_ENV}
    env.update(env_update or {})
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_late_variable_gives_unavailable_warning():
    code = (
        "import tensorflow\n"
        "from bench.memory import enable_cpu_allocator_stats\n"
        "print(enable_cpu_allocator_stats())\n"
    )
    result = run_python(code)
    assert "available=False" in result.stdout, result.stderr[-2000:]


ALLOCATOR_PEAK_CODE = """
from bench.memory import enable_cpu_allocator_stats, AllocatorProbe
enable_cpu_allocator_stats()
import tensorflow as tf
from models.registry import build_model
from models.strategies import apply_strategy, parse_strategy
from models.train_step import make_optimizer, make_train_step
images = tf.random.stateless_uniform([2048, 28, 28], seed=[0, 1])
labels = tf.random.stateless_uniform([2048], seed=[0, 2], maxval=10, dtype=tf.int32)
probe = AllocatorProbe("CPU:0")
for name in ("full", "frozen-prefix"):
    model = build_model("mlp-sequential")
    plan = apply_strategy(model, parse_strategy(name), 2)
    step = make_train_step(model, plan.variables, make_optimizer("adam"))
    step(images, labels).numpy()
    probe.reset()
    resident = probe.current()
    for _ in range(3):
        step(images, labels).numpy()
    print(name, probe.peak() - resident)
"""


@pytest.fixture(scope="module")
def allocator_peaks():
    result = run_python(ALLOCATOR_PEAK_CODE)
    assert result.returncode == 0, result.stderr[-2000:]
    return {line.split()[0]: int(line.split()[1]) for line in result.stdout.splitlines()}


def test_allocator_peak_is_positive(allocator_peaks):
    assert allocator_peaks["full"] > 0


def test_full_peak_exceeds_frozen_prefix(allocator_peaks):
    # At batch 2048 the activations and gradients of dense1 dominate the peak,
    # so the ordering does not depend on allocator timing.
    assert allocator_peaks["full"] > allocator_peaks["frozen-prefix"]


def test_probe_without_stats_returns_none():
    # This test process imports TensorFlow without TF_CPU_ALLOCATOR_USE_BFC.
    if os.environ.get(ALLOCATOR_ENV) == "true":
        pytest.skip(f"{ALLOCATOR_ENV}=true is set, so the CPU allocator keeps statistics")
    probe = AllocatorProbe("CPU:0")
    probe.reset()
    assert probe.current() is None
    assert probe.peak() is None
