"""Freezing strategies: which of a model's variables a training step updates.

A strategy is named on the command line as one of:

- ``full``: every trainable variable is updated.
- ``frozen-prefix``: ``layer.trainable = False`` for the first ``fine_tune_at``
  layers, as in TensorFlow's transfer-learning tutorial. For a model with a
  pretrained base (see `fine_tune_base`) these are the base's layers,
  ``base.layers[:fine_tune_at]``; for other models ``model.layers[:fine_tune_at]``.
- ``base-frozen``: ``base.trainable = False``, the tutorial's feature extraction;
  only models with a pretrained base accept it.
- ``<layer>[+<layer>...]-only``, for example ``dense2-only`` or ``head-only``:
  every layer stays trainable, but the `tf.GradientTape` gradient is taken only
  with respect to the named layers' ``trainable_variables``, and only they are
  updated. The names are those of ``model.layers``.

A strategy decides what the optimizer updates. The forward pass of a training
step may still write state variables, which no optimizer trains: a trainable
BatchNormalization layer in training mode updates its moving statistics, and
Dropout advances its seed state.
"""

import dataclasses

import keras

from models.errors import ConfigError

FULL = "full"
FROZEN_PREFIX = "frozen-prefix"
BASE_FROZEN = "base-frozen"
NAMED_STRATEGIES = (FULL, FROZEN_PREFIX, BASE_FROZEN)
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

    `layers` describes `model.layers`. For a model with a pretrained base, `base`
    is the base's name and `base_layers` describes the base's own layers;
    otherwise they are None and empty. `state_variables` are the model's
    variables that are non-trainable even with every layer trainable, such as
    BatchNormalization moving statistics and Dropout seed states.
    """

    strategy: str
    fine_tune_at: object
    variables: list
    layers: list
    keras_trainable_params: int
    base: object = None
    base_layers: list = dataclasses.field(default_factory=list)
    state_variables: list = dataclasses.field(default_factory=list)

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
    if name in NAMED_STRATEGIES:
        return StrategySpec(name)

    if name.endswith(LAYERS_ONLY_SUFFIX):
        layers = tuple(name[: -len(LAYERS_ONLY_SUFFIX)].split("+"))
        if all(layers):
            return StrategySpec(name, layers)

    raise ConfigError(
        f"unknown strategy {name!r}; valid strategies: {FULL}, {FROZEN_PREFIX}, "
        "or <layer>[+<layer>...]-only such as dense2-only, and for a model with a "
        f"pretrained base such as mobilenetv2 also {BASE_FROZEN}"
    )


def fine_tune_base(model):
    """Return the pretrained base whose layers fine_tune_at counts, or None.

    A transfer-learning builder stores the base's layer name in the plain model
    attribute `fine_tune_base` (models.mobilenet does). Models without it have
    no base, and fine_tune_at counts `model.layers`.
    """
    name = getattr(model, "fine_tune_base", None)
    if name is None:
        return None
    return model.get_layer(name)


def fine_tune_layers(model):
    """Return the layers that fine_tune_at counts: the base's layers if there is a base, else model.layers."""
    base = fine_tune_base(model)
    return model.layers if base is None else base.layers


def check_fine_tune_at(fine_tune_at, model):
    """Raise ConfigError unless 0 <= fine_tune_at <= len(fine_tune_layers(model))."""
    num_layers = len(fine_tune_layers(model))
    if 0 <= fine_tune_at <= num_layers:
        return

    base = fine_tune_base(model)
    counted = f"model {model.name!r}"
    if base is not None:
        counted = f"the base {base.name!r} of model {model.name!r}"
    raise ConfigError(
        f"fine_tune_at={fine_tune_at} is out of range for {counted}, "
        f"which has {num_layers} layers; valid values are 0 to {num_layers}"
    )


def check_base_frozen(model):
    """Raise ConfigError if `model` has no pretrained base for base-frozen to freeze."""
    if fine_tune_base(model) is None:
        raise ConfigError(
            f"strategy {BASE_FROZEN!r} needs a model with a pretrained base, such as "
            f"mobilenetv2, but model {model.name!r} has none; use frozen-prefix instead"
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


def all_layers(model):
    """Return the layers of `model` and, depth first, the layers of each nested model."""
    layers = []
    for layer in model.layers:
        layers.append(layer)
        if isinstance(layer, keras.Model):
            layers.extend(all_layers(layer))
    return layers


def check_strategy(spec, model, fine_tune_at=DEFAULT_FINE_TUNE_AT):
    """Raise ConfigError if `spec` cannot be applied to `model`.

    `fine_tune_at` is checked only for frozen-prefix, and layer names only for
    the layers-only kind.
    """
    if spec.name == FROZEN_PREFIX:
        check_fine_tune_at(fine_tune_at, model)
    if spec.name == BASE_FROZEN:
        check_base_frozen(model)
    check_layer_names(spec.layers, model)


def apply_strategy(model, spec, fine_tune_at=DEFAULT_FINE_TUNE_AT):
    """Set the layers' `trainable` flags for `spec` and return the TrainPlan.

    Every layer, nested ones included, is first made trainable again, so flags
    left by an earlier strategy do not carry over.
    """
    # Each layer is set on its own: on the TensorFlow backend of Keras 3.15,
    # assigning True to a flag that is already True returns early, so it does
    # not reach the layers inside a nested model.
    for layer in all_layers(model):
        layer.trainable = True

    # With every flag on, the non-trainable variables left are the ones that no
    # optimizer trains.
    state_variables = list(model.non_trainable_variables)

    check_strategy(spec, model, fine_tune_at)
    base = fine_tune_base(model)
    if spec.name == FROZEN_PREFIX:
        for layer in fine_tune_layers(model)[:fine_tune_at]:
            layer.trainable = False
    else:
        fine_tune_at = None

    if spec.name == BASE_FROZEN:
        base.trainable = False

    if spec.is_layers_only:
        variables = [v for name in spec.layers for v in model.get_layer(name).trainable_variables]
    else:
        # Keras 3 reads the live `trainable` flags here, so this must come after
        # the flags are set.
        variables = list(model.trainable_variables)

    keras_trainable_params = sum(count_params(v) for v in model.trainable_variables)
    return TrainPlan(
        spec.name, fine_tune_at, variables, describe_layers(model, variables), keras_trainable_params,
        base=None if base is None else base.name,
        base_layers=[] if base is None else describe_layers(base, variables),
        state_variables=state_variables,
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
    if plan.base is not None:
        trainable = sum(layer.trainable for layer in plan.base_layers)
        lines.append(
            f"  base {plan.base}: {trainable} of {len(plan.base_layers)} layers trainable, "
            f"{len(plan.base_layers) - trainable} frozen"
        )
    lines.append(
        f"  trainable params: {plan.trainable_params:,}, "
        f"non-trainable params: {plan.non_trainable_params:,}"
    )
    if plan.state_variables:
        lines.append(
            f"  state variables: {len(plan.state_variables)} (moving statistics, seed states), "
            "which a training step's forward pass may update"
        )
    return "\n".join(lines)
