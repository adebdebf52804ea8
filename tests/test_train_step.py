"""Compiled training steps: tracing, and the graph check of which variables they write."""

import numpy as np
import pytest

from models.errors import ConfigError
from models.registry import build_model
from models.strategies import apply_strategy, parse_strategy
from models.train_step import (
    check_updated_variables,
    make_optimizer,
    make_train_step,
    updated_model_variables,
)


def build_step(model_name, strategy, optimizer="sgd", fine_tune_at=2):
    """Return (model, plan, train_step) for a fresh model."""
    model = build_model(model_name)
    plan = apply_strategy(model, parse_strategy(strategy), fine_tune_at)
    train_step = make_train_step(model, plan.variables, make_optimizer(optimizer))
    return model, plan, train_step


def variable_ids(variables):
    return {id(v) for v in variables}


@pytest.mark.parametrize("model_name", ["mlp-sequential", "mlp-subclassed"])
def test_step_traced_once(model_name, fixed_batch):
    images, labels = fixed_batch
    _, _, train_step = build_step(model_name, "full")

    for _ in range(10):
        train_step(images, labels)

    assert train_step.experimental_get_tracing_count() == 1


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_dense2_only_writes_dense2(optimizer, fixed_batch):
    images, labels = fixed_batch
    model, _, train_step = build_step("mlp-subclassed", "dense2-only", optimizer)

    updated = updated_model_variables(train_step, model, images, labels)

    dense2 = model.get_layer("dense2")
    assert variable_ids(updated) == variable_ids([dense2.kernel, dense2.bias])


@pytest.mark.parametrize("strategy", ["full", "frozen-prefix", "dense2-only"])
def test_updated_variables_match_plan(strategy, fixed_batch):
    images, labels = fixed_batch
    model, plan, train_step = build_step("mlp-sequential", strategy, "adam")

    updated = updated_model_variables(train_step, model, images, labels)

    assert variable_ids(updated) == variable_ids(plan.variables)


def test_check_passes_for_plan_step(fixed_batch):
    images, labels = fixed_batch
    model, plan, train_step = build_step("mlp-sequential", "frozen-prefix")

    check_updated_variables(train_step, model, plan, images, labels)


def test_nothing_trained_writes_nothing(fixed_batch):
    images, labels = fixed_batch
    model, plan, train_step = build_step("mlp-sequential", "frozen-prefix", fine_tune_at=4)

    assert updated_model_variables(train_step, model, images, labels) == []
    check_updated_variables(train_step, model, plan, images, labels)


def test_check_rejects_step_from_live_flags(fixed_batch):
    """A step built from `model.trainable_variables` after a flag flip trains dense1 too."""
    images, labels = fixed_batch
    model = build_model("mlp-sequential")
    plan = apply_strategy(model, parse_strategy("frozen-prefix"), fine_tune_at=2)
    model.layers[1].trainable = True  # dense1, frozen by the plan
    train_step = make_train_step(model, model.trainable_variables, make_optimizer("sgd"))

    with pytest.raises(RuntimeError) as raised:
        check_updated_variables(train_step, model, plan, images, labels)
    assert "mlp_sequential/dense1/kernel" in str(raised.value)
    assert "'frozen-prefix'" in str(raised.value)


# NOTE: make_train_step differentiates with respect to the list it is given, so
# a `trainable` flag flipped after the plan does not reach the traced step.
@pytest.mark.parametrize(("strategy", "layer_index", "trainable"), [
    ("frozen-prefix", 1, True),
    ("full", 1, False),
])
def test_flag_flip_after_plan_ignored(strategy, layer_index, trainable, fixed_batch):
    images, labels = fixed_batch
    model = build_model("mlp-subclassed")
    plan = apply_strategy(model, parse_strategy(strategy), fine_tune_at=2)
    model.layers[layer_index].trainable = trainable
    train_step = make_train_step(model, plan.variables, make_optimizer("sgd"))

    updated = updated_model_variables(train_step, model, images, labels)

    assert variable_ids(updated) == variable_ids(plan.variables)
    check_updated_variables(train_step, model, plan, images, labels)


def test_step_returns_scalar_loss(fixed_batch):
    images, labels = fixed_batch
    _, _, train_step = build_step("mlp-sequential", "dense2-only", "adam")

    loss = train_step(images, labels).numpy()

    assert loss.shape == ()
    assert np.isfinite(loss)


@pytest.mark.parametrize("name", ["sgd", "adam"])
def test_make_optimizer_known(name):
    assert make_optimizer(name).__class__.__name__.lower() == name


def test_make_optimizer_rejects_unknown():
    with pytest.raises(ConfigError) as raised:
        make_optimizer("rmsprop")
    assert "'rmsprop'" in str(raised.value)
    assert "sgd, adam" in str(raised.value)
