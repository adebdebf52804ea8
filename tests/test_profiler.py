"""Tests of trace capture: the written file, steps, and a profiler that cannot start."""

import logging
import os
import subprocess
import sys

import pytest
import tensorflow as tf

from bench import breakdown
from bench.profiler import capture_trace, missing_gpu_plane_warning
from models.datasets import device_batch, synthetic_dataset
from models.registry import build_model
from models.strategies import apply_strategy, parse_strategy
from models.train_step import make_optimizer, make_train_step

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEPS = 3


@pytest.fixture(scope="module")
def warm_case():
    """Return a warmed-up full-strategy step of the sequential MLP and a batch of 8."""
    model = build_model("mlp-sequential")
    plan = apply_strategy(model, parse_strategy("full"))
    train_step = make_train_step(model, plan.variables, make_optimizer("sgd"))
    images, labels = device_batch(synthetic_dataset(8), 8, "/CPU:0")
    train_step(images, labels)
    return train_step, images, labels


@pytest.fixture(scope="module")
def capture(warm_case, tmp_path_factory):
    logdir = tmp_path_factory.mktemp("profile") / "case"
    return capture_trace(*warm_case, logdir, steps=STEPS)


def test_capture_writes_xplane_file(capture):
    assert capture.ok, capture.error
    assert os.path.isfile(capture.xplane_path)


def test_capture_uses_tensorboard_layout(capture):
    relative = os.path.relpath(capture.xplane_path, capture.logdir)
    parts = relative.split(os.sep)

    assert parts[:2] == ["plugins", "profile"]
    assert len(parts) == 4
    assert parts[3].endswith(".xplane.pb")


def test_capture_reports_no_warnings_on_cpu(capture):
    assert capture.warnings == []


def test_capture_annotates_each_step(capture):
    host = breakdown.find_plane(breakdown.load_xspace(capture.xplane_path), breakdown.HOST_PLANE)

    assert capture.steps == STEPS
    assert len(breakdown.step_windows(host)) == STEPS


def test_start_failure_returns_failed_result(warm_case, tmp_path, caplog):
    own_logdir = str(tmp_path / "own")
    capture_logdir = tmp_path / "capture"
    tf.profiler.experimental.start(own_logdir)
    try:
        with caplog.at_level(logging.ERROR, logger="bench.profiler"):
            result = capture_trace(*warm_case, capture_logdir, steps=1)
    finally:
        # stop() raises UnavailableError if the capture had stopped this session.
        own_still_running = _stop_if_running()

    assert not result.ok
    assert "AlreadyExistsError" in result.error
    assert own_still_running
    assert not capture_logdir.exists()
    assert any(record.levelno == logging.ERROR for record in caplog.records)


def _stop_if_running():
    """Stop the running profiler session; return False if none was running."""
    try:
        tf.profiler.experimental.stop(save=False)
    except tf.errors.UnavailableError:
        return False
    return True


def test_step_error_stops_profiler(warm_case, tmp_path):
    _, images, labels = warm_case

    def failing_step(images, labels):
        raise ValueError("step failed")

    with pytest.raises(ValueError, match="step failed"):
        capture_trace(failing_step, images, labels, tmp_path / "failed", steps=2)

    assert not _stop_if_running()


def test_capture_rejects_zero_steps(warm_case, tmp_path):
    with pytest.raises(ValueError, match="steps=0"):
        capture_trace(*warm_case, tmp_path / "zero", steps=0)


def test_import_creates_no_directory(tmp_path):
    # A fresh interpreter, so the check covers the modules' import-time code.
    code = "import bench.profiler, bench.breakdown, bench.trace_checks"
    env = dict(os.environ, PYTHONPATH=REPO_ROOT)
    subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True)

    assert os.listdir(tmp_path) == []


def test_gpu_without_gpu_plane_warns():
    warning = missing_gpu_plane_warning("/job:localhost/replica:0/task:0/device:GPU:0", ["/host:CPU"])

    assert "no /device:GPU:<n> plane" in warning


def test_gpu_with_gpu_plane_passes():
    planes = ["/host:CPU", "/device:GPU:0"]

    assert missing_gpu_plane_warning("/GPU:0", planes) is None


def test_cpu_device_never_warns():
    assert missing_gpu_plane_warning("/job:localhost/replica:0/task:0/device:CPU:0", ["/host:CPU"]) is None
