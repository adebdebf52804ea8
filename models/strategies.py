"""Freezing strategies: which of a model's variables a training step updates.

A strategy is named on the command line as one of:

- ``full``: every trainable variable is updated.
- ``frozen-prefix``: ``layer.trainable = False`` for ``model.layers[:fine_tune_at]``,
  as in TensorFlow's transfer-learning tutorial.
- ``<layer>[+<layer>...]-only``, for example ``dense2-only``: every layer stays
  trainable, but the `tf.GradientTape` gradient is taken only with respect to the
  named layers' ``trainable_variables``, and only they are updated.
"""

import dataclasses

from models.errors import ConfigError

FULL = "full"
FROZEN_PREFIX = "frozen-prefix"
LAYERS_ONLY_SUFFIX = "-only"
DEFAULT_STRATEGIES = (FULL, FROZEN_PREFIX, "dense2-only")
DEFAULT_FINE_TUNE_AT = 2


@dataclasses.dataclass(frozen=True)
class StrategySpec:
    """A parsed strategy name; `layers` is set only for the layers-only kind."""

    name: str
    layers: tuple = ()

    @property
    def is_layers_only(self):
        return bool(self.layers)


@dataclasses.dataclass(frozen=True)
class LayerState:
    """One layer as a strategy left it: its `trainable` flag and whether the step updates it."""

    name: str
    trainable: bool
    params: int
    updated: bool


@dataclasses.dataclass
class TrainPlan:
    """The variables a strategy trains, and the per-layer state it recorded.

    `variables` is the list given to `GradientTape.gradient` and to the optimizer,
    and `trainable_params` counts them. `keras_trainable_params` counts
    `model.trainable_variables` instead, which differs for a layers-only strategy
    because it leaves every `trainable` flag on. `fine_tune_at` is None unless the
    strategy is frozen-prefix.
    """

    strategy: str
    fine_tune_at: object
    variables: list
    layers: list
    keras_trainable_params: int

    @property
    def trainable_params(self):
        return sum(count_params(v) for v in self.variables)

    @property
    def total_params(self):
        return sum(layer.params for layer in self.layers)

    @property
    def non_trainable_params(self):
        return self.total_params - self.trainable_params


def count_params(variable):
    """Return the number of scalars in `variable`."""
    count = 1
    for dim in variable.shape:
        count *= int(dim)
    return count


def parse_strategy(name):
    """Parse a strategy name; raise ConfigError naming the valid forms."""
    if name in (FULL, FROZEN_PREFIX):
        return StrategySpec(name)

    if name.endswith(LAYERS_ONLY_SUFFIX):
        layers = tuple(name[: -len(LAYERS_ONLY_SUFFIX)].split("+"))
        if all(layers):
            return StrategySpec(name, layers)

    raise ConfigError(
        f"unknown strategy {name!r}; valid strategies: {FULL}, {FROZEN_PREFIX}, "
        "or <layer>[+<layer>...]-only such as dense2-only"
    )


def check_fine_tune_at(fine_tune_at, model):
    """Raise ConfigError unless 0 <= fine_tune_at <= len(model.layers)."""
    num_layers = len(model.layers)
    if not 0 <= fine_tune_at <= num_layers:
        raise ConfigError(
            f"fine_tune_at={fine_tune_at} is out of range for model {model.name!r}, "
            f"which has {num_layers} layers; valid values are 0 to {num_layers}"
        )


def check_layer_names(names, model):
    """Raise ConfigError if a name is not one of the model's layers."""
    valid = [layer.name for layer in model.layers]
    for name in names:
        if name not in valid:
            raise ConfigError(
                f"layer {name!r} not found in model {model.name!r}; "
                f"its layers are: {', '.join(valid)}"
            )


def apply_strategy(model, spec, fine_tune_at=DEFAULT_FINE_TUNE_AT):
    """Set the layers' `trainable` flags for `spec` and return the TrainPlan.

    The model must be freshly built: every layer is first made trainable again,
    so flags left by an earlier strategy do not carry over.
    """
    for layer in model.layers:
        layer.trainable = True

    if spec.name == FROZEN_PREFIX:
        check_fine_tune_at(fine_tune_at, model)
        for layer in model.layers[:fine_tune_at]:
            layer.trainable = False
    else:
        fine_tune_at = None

    if spec.is_layers_only:
        check_layer_names(spec.layers, model)
        variables = [v for name in spec.layers for v in model.get_layer(name).trainable_variables]
    else:
        # Keras 3 reads the live `trainable` flags here, so this must come after
        # the flags are set.
        variables = list(model.trainable_variables)

    keras_trainable_params = sum(count_params(v) for v in model.trainable_variables)
    return TrainPlan(
        spec.name, fine_tune_at, variables, describe_layers(model, variables), keras_trainable_params
    )


def describe_layers(model, variables):
    """Return a LayerState for each layer of `model`, given the variables a step updates."""
    updated_ids = {id(v) for v in variables}
    states = []
    for layer in model.layers:
        layer_variables = layer.weights
        states.append(
            LayerState(
                name=layer.name,
                trainable=layer.trainable,
                params=sum(count_params(v) for v in layer_variables),
                updated=any(id(v) in updated_ids for v in layer_variables),
            )
        )
    return states


def format_plan(model_name, plan):
    """Return a text table of the plan's layers and parameter counts."""
    lines = [
        f"{model_name} / {plan.strategy}"
        + (f" (fine_tune_at={plan.fine_tune_at})" if plan.fine_tune_at is not None else ""),
        f"  {'layer':<12} {'trainable':<10} {'updated':<8} {'params':>10}",
    ]
    for layer in plan.layers:
        lines.append(
            f"  {layer.name:<12} {str(layer.trainable):<10} {str(layer.updated):<8} {layer.params:>10,}"
        )
    lines.append(
        f"  trainable params: {plan.trainable_params:,}, "
        f"non-trainable params: {plan.non_trainable_params:,}"
    )
    return "\n".join(lines)
