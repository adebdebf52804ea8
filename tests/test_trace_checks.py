"""Structural checks on real captures of the three strategies, for both MLPs."""

import pytest

from bench import breakdown, trace_checks
from bench.breakdown import BACKWARD, OPTIMIZER
from bench.profiler import capture_trace
from models.datasets import device_batch, synthetic_dataset
from models.registry import build_model
from models.strategies import DEFAULT_FINE_TUNE_AT, apply_strategy, parse_strategy
from models.train_step import make_optimizer, make_train_step

MODELS = ("mlp-sequential", "mlp-subclassed")
STRATEGIES = ("full", "frozen-prefix", "dense2-only")


@pytest.fixture(scope="session")
def traces(tmp_path_factory):
    """Return {(model, strategy): (summary, variable writes, frozen layer names)}, captured once."""
    images, labels = device_batch(synthetic_dataset(8), 8, "/CPU:0")
    traces = {}
    for model_name in MODELS:
        for strategy in STRATEGIES:
            model = build_model(model_name)
            plan = apply_strategy(model, parse_strategy(strategy))
            train_step = make_train_step(model, plan.variables, make_optimizer("sgd"))
            train_step(images, labels)

            logdir = tmp_path_factory.mktemp("structure") / f"{model_name}-{strategy}"
            result = capture_trace(train_step, images, labels, logdir, steps=3)
            assert result.ok, result.error

            frozen = [layer.name for layer in model.layers if not layer.trainable]
            writes = trace_checks.variable_writes(train_step, model, images, labels)
            traces[model_name, strategy] = (breakdown.summarize_trace(result.xplane_path), writes, frozen)
    return traces


@pytest.mark.parametrize("model_name", MODELS)
def test_frozen_prefix_freezes_flatten_dense1(traces, model_name):
    _, _, frozen = traces[model_name, "frozen-prefix"]

    assert DEFAULT_FINE_TUNE_AT == 2
    assert frozen == ["flatten", "dense1"]


@pytest.mark.parametrize("model_name", MODELS)
def test_frozen_prefix_has_no_frozen_gradients(traces, model_name):
    summary, _, frozen = traces[model_name, "frozen-prefix"]

    ok, message = trace_checks.check_no_frozen_gradients(summary, frozen)

    assert ok, message


@pytest.mark.parametrize("model_name", MODELS)
def test_full_has_dense1_gradients(traces, model_name):
    summary, _, _ = traces[model_name, "full"]

    ok, message = trace_checks.check_no_frozen_gradients(summary, ["flatten", "dense1"])

    assert not ok
    assert "dense1_1/MatMul" in message


@pytest.mark.parametrize("model_name", MODELS)
def test_dense2_only_updates_only_dense2(traces, model_name):
    summary, writes, _ = traces[model_name, "dense2-only"]

    ok, message = trace_checks.check_optimizer_updates_only(summary, writes, ["dense2"])

    assert ok, message
    assert "dense2/kernel" in message
    assert "dense2/bias" in message


@pytest.mark.parametrize("model_name", MODELS)
def test_full_updates_fail_dense2_only_check(traces, model_name):
    summary, writes, _ = traces[model_name, "full"]

    ok, message = trace_checks.check_optimizer_updates_only(summary, writes, ["dense2"])

    assert not ok
    assert "dense1/kernel" in message


@pytest.mark.parametrize("model_name", MODELS)
def test_backward_matmuls_fall_strictly(traces, model_name):
    summaries = [(strategy, traces[model_name, strategy][0]) for strategy in STRATEGIES]

    ok, message = trace_checks.check_backward_matmuls_decrease(summaries)

    assert ok, message


def test_backward_matmuls_reversed_fail(traces):
    summaries = [(strategy, traces["mlp-sequential", strategy][0]) for strategy in reversed(STRATEGIES)]

    ok, message = trace_checks.check_backward_matmuls_decrease(summaries)

    assert not ok
    assert "do not fall strictly" in message


def summary_of(*ops):
    """Return a minimal summary with the given (name, type, phase) ops, once per step."""
    return {
        "ops": {
            name: {"name": name, "type": op_type, "phase": phase, "occurrences_per_step": 1.0}
            for name, op_type, phase in ops
        }
    }


def test_equal_counts_fail_strict_check():
    same = summary_of(("gradient_tape/m/dense2_1/MatMul/MatMul", "MatMul", BACKWARD))

    ok, _ = trace_checks.check_backward_matmuls_decrease([("full", same), ("dense2-only", same)])

    assert not ok


def test_trace_without_gradients_fails():
    summary = summary_of(("m/dense1_1/Relu", "_FusedMatMul", "forward"))

    ok, message = trace_checks.check_no_frozen_gradients(summary, ["dense1"])

    assert not ok
    assert "no gradient ops" in message


def test_unknown_write_op_fails():
    summary = summary_of(("sgd/AssignSubVariableOp_9", "AssignSubVariableOp", OPTIMIZER))
    writes = {"sgd/AssignSubVariableOp": "m/dense2/kernel"}

    ok, message = trace_checks.check_optimizer_updates_only(summary, writes, ["dense2"])

    assert not ok
    assert "sgd/AssignSubVariableOp_9" in message


def test_no_model_variable_writes_fail():
    summary = summary_of(("sgd/AssignAddVariableOp", "AssignAddVariableOp", OPTIMIZER))
    writes = {"sgd/AssignAddVariableOp": None}

    ok, message = trace_checks.check_optimizer_updates_only(summary, writes, ["dense2"])

    assert not ok
    assert "no optimizer op" in message


@pytest.mark.parametrize(
    "scope, matches",
    [("dense1", True), ("dense1_1", True), ("dense1_12", True), ("dense10", False), ("dense1_x", False)],
)
def test_layer_scope_pattern(scope, matches):
    assert bool(trace_checks.layer_scope_pattern("dense1").fullmatch(scope)) == matches
