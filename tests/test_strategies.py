"""Freezing strategies: parsing, parameter counts, and what real training steps change."""

import dataclasses

import numpy as np
import pytest

from models.errors import ConfigError
from models.registry import MODEL_BUILDERS, build_model
from models.strategies import apply_strategy, format_plan, parse_strategy
from models.train_step import make_optimizer, make_train_step

MODELS = sorted(MODEL_BUILDERS)
ALL_VARIABLES = (
    "dense1/kernel", "dense1/bias",
    "dense2/kernel", "dense2/bias",
    "dense3/kernel", "dense3/bias",
)
TOTAL_PARAMS = 266_610
TRAINING_STEPS = 20


def variable_key(variable):
    """Return the variable's path without the model name, for example "dense2/kernel"."""
    return variable.path.split("/", 1)[1]


@dataclasses.dataclass(frozen=True)
class StrategyCase:
    model: str
    strategy: str
    optimizer: str
    trained: tuple  # variable keys the strategy must change

    @property
    def id(self):
        return f"{self.model}-{self.strategy}-{self.optimizer}"


TRAINED_BY_STRATEGY = {
    "full": ALL_VARIABLES,
    "frozen-prefix": ALL_VARIABLES[2:],
    "dense2-only": ("dense2/kernel", "dense2/bias"),
}
CASES = [
    StrategyCase(model, strategy, optimizer, trained)
    for model in MODELS
    for strategy, trained in TRAINED_BY_STRATEGY.items()
    for optimizer in ("sgd", "adam")
]


@dataclasses.dataclass
class TrainingRun:
    case: StrategyCase
    initial: dict
    final: dict
    losses: list


@pytest.fixture(scope="module", params=CASES, ids=lambda case: case.id)
def training_run(request, fixed_batch):
    """Train one case for TRAINING_STEPS steps on the fixed batch, once per module."""
    case = request.param
    images, labels = fixed_batch

    model = build_model(case.model)
    plan = apply_strategy(model, parse_strategy(case.strategy), fine_tune_at=2)
    train_step = make_train_step(model, plan.variables, make_optimizer(case.optimizer))

    initial = {variable_key(v): v.numpy().copy() for v in model.variables}
    losses = [float(train_step(images, labels).numpy()) for _ in range(TRAINING_STEPS)]
    final = {variable_key(v): v.numpy().copy() for v in model.variables}
    return TrainingRun(case, initial, final, losses)


def test_run_has_all_variables(training_run):
    assert sorted(training_run.initial) == sorted(ALL_VARIABLES)


def test_frozen_variables_unchanged(training_run):
    frozen = [key for key in ALL_VARIABLES if key not in training_run.case.trained]
    for key in frozen:
        assert np.array_equal(training_run.initial[key], training_run.final[key]), (
            f"{key} changed although {training_run.case.strategy} freezes it"
        )


def test_trained_variables_change(training_run):
    for key in training_run.case.trained:
        assert not np.array_equal(training_run.initial[key], training_run.final[key]), (
            f"{key} did not change although {training_run.case.strategy} trains it"
        )


def test_losses_are_finite(training_run):
    assert np.all(np.isfinite(training_run.losses)), training_run.losses


def test_loss_falls_on_fixed_batch(training_run):
    assert training_run.losses[-1] < training_run.losses[0], training_run.losses


# Parameter counts: Flatten has none, Dense 784x300+300, 300x100+100, 100x10+10.
@pytest.mark.parametrize("model_name", MODELS)
def test_full_trains_every_param(model_name):
    plan = apply_strategy(build_model(model_name), parse_strategy("full"))
    assert plan.trainable_params == TOTAL_PARAMS
    assert plan.total_params == TOTAL_PARAMS
    assert plan.non_trainable_params == 0


@pytest.mark.parametrize("model_name", MODELS)
def test_frozen_prefix_param_counts(model_name):
    plan = apply_strategy(build_model(model_name), parse_strategy("frozen-prefix"), fine_tune_at=2)
    assert plan.trainable_params == 31_110
    assert plan.keras_trainable_params == 31_110
    assert plan.non_trainable_params == TOTAL_PARAMS - 31_110
    assert plan.fine_tune_at == 2


@pytest.mark.parametrize("model_name", MODELS)
def test_dense2_only_param_counts(model_name):
    plan = apply_strategy(build_model(model_name), parse_strategy("dense2-only"))
    assert plan.trainable_params == 30_100
    assert plan.keras_trainable_params == TOTAL_PARAMS
    assert plan.fine_tune_at is None


@pytest.mark.parametrize("model_name", MODELS)
@pytest.mark.parametrize(
    ("fine_tune_at", "trainable_params"),
    [(0, TOTAL_PARAMS), (1, TOTAL_PARAMS), (2, 31_110), (3, 1_010), (4, 0)],
)
def test_frozen_prefix_accepts_zero_to_four(model_name, fine_tune_at, trainable_params):
    plan = apply_strategy(
        build_model(model_name), parse_strategy("frozen-prefix"), fine_tune_at=fine_tune_at
    )
    assert plan.trainable_params == trainable_params
    assert plan.keras_trainable_params == trainable_params


@pytest.mark.parametrize("model_name", MODELS)
def test_frozen_prefix_four_runs_step(model_name, fixed_batch):
    images, labels = fixed_batch
    model = build_model(model_name)
    plan = apply_strategy(model, parse_strategy("frozen-prefix"), fine_tune_at=4)
    train_step = make_train_step(model, plan.variables, make_optimizer("sgd"))
    initial = [v.numpy().copy() for v in model.variables]

    loss = float(train_step(images, labels).numpy())

    assert plan.variables == []
    assert np.isfinite(loss)
    for before, variable in zip(initial, model.variables):
        assert np.array_equal(before, variable.numpy()), variable.path


@pytest.mark.parametrize("fine_tune_at", [-1, 5])
def test_frozen_prefix_rejects_out_of_range(fine_tune_at):
    model = build_model("mlp-sequential")
    with pytest.raises(ConfigError) as raised:
        apply_strategy(model, parse_strategy("frozen-prefix"), fine_tune_at=fine_tune_at)
    assert f"fine_tune_at={fine_tune_at}" in str(raised.value)
    assert "0 to 4" in str(raised.value)


def test_dense2_only_layer_states():
    plan = apply_strategy(build_model("mlp-subclassed"), parse_strategy("dense2-only"))
    states = {layer.name: layer for layer in plan.layers}
    assert [layer.name for layer in plan.layers] == ["flatten", "dense1", "dense2", "dense3"]
    assert all(layer.trainable for layer in plan.layers)
    assert [name for name, layer in states.items() if layer.updated] == ["dense2"]
    assert states["dense2"].params == 30_100


def test_frozen_prefix_layer_states():
    plan = apply_strategy(build_model("mlp-sequential"), parse_strategy("frozen-prefix"), fine_tune_at=2)
    trainable = {layer.name: layer.trainable for layer in plan.layers}
    updated = {layer.name: layer.updated for layer in plan.layers}
    assert trainable == {"flatten": False, "dense1": False, "dense2": True, "dense3": True}
    assert updated == {"flatten": False, "dense1": False, "dense2": True, "dense3": True}


def test_apply_strategy_resets_flags():
    model = build_model("mlp-sequential")
    apply_strategy(model, parse_strategy("frozen-prefix"), fine_tune_at=4)
    plan = apply_strategy(model, parse_strategy("full"))
    assert all(layer.trainable for layer in model.layers)
    assert plan.trainable_params == TOTAL_PARAMS


def test_unknown_layer_rejected():
    model = build_model("mlp-sequential")
    with pytest.raises(ConfigError) as raised:
        apply_strategy(model, parse_strategy("dense9-only"))
    assert "'dense9'" in str(raised.value)
    assert "flatten, dense1, dense2, dense3" in str(raised.value)


def test_parse_multi_layer_strategy():
    spec = parse_strategy("dense1+dense3-only")
    assert spec.layers == ("dense1", "dense3")
    assert spec.is_layers_only


@pytest.mark.parametrize("name", ["full", "frozen-prefix"])
def test_parse_named_strategy(name):
    spec = parse_strategy(name)
    assert spec.name == name
    assert not spec.is_layers_only


@pytest.mark.parametrize("name", ["bogus", "-only", "dense1+-only", "Full", ""])
def test_parse_rejects_invalid_name(name):
    with pytest.raises(ConfigError) as raised:
        parse_strategy(name)
    assert repr(name) in str(raised.value)
    assert "full, frozen-prefix" in str(raised.value)


def test_format_plan_lists_counts():
    plan = apply_strategy(build_model("mlp-sequential"), parse_strategy("frozen-prefix"), fine_tune_at=2)
    text = format_plan("mlp-sequential", plan)
    assert text.splitlines()[0] == "mlp-sequential / frozen-prefix (fine_tune_at=2)"
    assert "trainable params: 31,110, non-trainable params: 235,500" in text
