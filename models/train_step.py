"""Compiled training steps and the check of which variables they update."""

import keras
import tensorflow as tf

from models.errors import ConfigError
from models.variable_ops import is_variable_write_type

OPTIMIZERS = {
    "sgd": keras.optimizers.SGD,
    "adam": keras.optimizers.Adam,
}
DEFAULT_OPTIMIZER = "sgd"


def make_optimizer(name):
    """Return a new Keras optimizer with default hyperparameters."""
    try:
        return OPTIMIZERS[name]()
    except KeyError:
        valid = ", ".join(OPTIMIZERS)
        raise ConfigError(f"unknown optimizer {name!r}; valid optimizers: {valid}") from None


def make_train_step(model, variables, optimizer, jit_compile=False, loss=None):
    """Return a `tf.function` training step that updates only `variables`.

    The step runs the forward pass under `tf.GradientTape` with `training=True`
    and computes `loss`, a Keras loss. It then takes the gradient with respect to
    `variables` only, applies it, and returns the loss. The default loss is the
    MLPs' sparse categorical cross-entropy on a softmax output.

    The optimizer is built here, before tracing, because a `tf.function` may
    create variables only on its first trace. Built eagerly, no variable is
    created during tracing at all.
    """
    loss_fn = keras.losses.SparseCategoricalCrossentropy() if loss is None else loss
    variables = list(variables)
    if variables:
        optimizer.build(variables)

    @tf.function(jit_compile=jit_compile)
    def train_step(images, labels):
        with tf.GradientTape() as tape:
            predictions = model(images, training=True)
            loss = loss_fn(labels, predictions)
            # Unchanged unless the optimizer scales the loss (LossScaleOptimizer,
            # for mixed_float16); apply_gradients then unscales the gradients.
            scaled_loss = optimizer.scale_loss(loss)

        # With every layer frozen there is nothing to update, and Keras
        # optimizers reject an empty gradient list.
        if variables:
            gradients = tape.gradient(scaled_loss, variables)
            optimizer.apply_gradients(zip(gradients, variables))
        return loss

    return train_step


def is_variable_write(op):
    """Return True if graph op `op` writes a resource variable."""
    return is_variable_write_type(op.type)


def updated_model_variables(train_step, model, images, labels):
    """Return the variables of `model` that the traced step writes.

    This reads the step's concrete graph, not its effect: a variable counts as
    updated when a captured handle of it is the resource input of a write op.
    Optimizer variables (iterations, slots) are not model variables and are left out.
    """
    graph = train_step.get_concrete_function(images, labels).graph
    captured = {id(internal): external for external, internal in graph.captures}

    written_handles = set()
    for op in graph.get_operations():
        if is_variable_write(op):
            external = captured.get(id(op.inputs[0]))
            if external is not None:
                written_handles.add(id(external))

    return [v for v in model.variables if id(_resource_handle(v)) in written_handles]


def _resource_handle(variable):
    # A Keras 3 variable on the TensorFlow backend wraps a tf.Variable in `.value`.
    return getattr(variable, "value", variable).handle


def check_updated_variables(train_step, model, plan, images, labels):
    """Raise RuntimeError if the traced step updates other variables than `plan.variables`.

    This compares what the strategy reports (its plan, per-layer table and
    parameter counts) with what the compiled graph actually writes. A step built
    from another variable list, such as `model.trainable_variables` read after a
    `trainable` flag changed, therefore cannot pass as the planned strategy.

    `plan.state_variables` (BatchNormalization moving statistics, Dropout seed
    states) are left out of the comparison, because the forward pass writes
    them and no optimizer trains them. Returns the state variables the step
    writes.
    """
    written = updated_model_variables(train_step, model, images, labels)
    state = {id(v) for v in plan.state_variables}
    updated = {id(v) for v in written if id(v) not in state}
    planned = {id(v) for v in plan.variables}
    if updated != planned:
        names = {id(v): v.path for v in model.variables}
        raise RuntimeError(
            f"strategy {plan.strategy!r} plans to update "
            f"{sorted(names[i] for i in planned)} but the traced step updates "
            f"{sorted(names[i] for i in updated)}"
        )
    return [v for v in written if id(v) in state]
