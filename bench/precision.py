"""Compile modes and mixed-precision policies of a benchmark case.

Compile modes: `eager` calls the Python training step directly, `graph` wraps
it in `tf.function` (the default), and `xla` in `tf.function(jit_compile=True)`.
Precisions are Keras dtype policies: `float32`, `mixed_bfloat16`, and
`mixed_float16`, which needs a GPU and trains with loss scaling
(`keras.optimizers.LossScaleOptimizer`).
"""

import contextlib

from models.errors import ConfigError

COMPILE_MODES = ("eager", "graph", "xla")
DEFAULT_COMPILE_MODE = "graph"
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
DEFAULT_PRECISION = "float32"
FLOAT16 = "mixed_float16"


def parse_compile_mode(name):
    """Return `name` if it is a compile mode; raise ConfigError otherwise."""
    if name not in COMPILE_MODES:
        raise ConfigError(f"unknown compile mode {name!r}; valid compile modes: {', '.join(COMPILE_MODES)}")
    return name


def parse_precision(name):
    """Return `name` if it is a supported dtype policy; raise ConfigError otherwise."""
    if name not in PRECISIONS:
        raise ConfigError(f"unknown precision {name!r}; valid precisions: {', '.join(PRECISIONS)}")
    return name


def precision_skip_reason(precision, device):
    """Return why `precision` cannot run on device kind `device`, or None if it can."""
    if precision == FLOAT16 and device != "gpu":
        return (
            "mixed_float16 runs on GPU only: CPUs have no fast float16 matmul, so the "
            "figure would mislead; use mixed_bfloat16 on CPU"
        )
    return None


@contextlib.contextmanager
def dtype_policy(precision):
    """Set the Keras global dtype policy to `precision`, and restore the previous one on exit.

    Layers read the global policy when they are created, so building the model
    inside this block is enough, and no later case inherits the policy.
    """
    import keras

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy(previous)


def wrap_optimizer(optimizer, precision):
    """Return `optimizer` wrapped for loss scaling under mixed_float16, else unchanged."""
    if precision != FLOAT16:
        return optimizer
    import keras

    # NOTE: loss scaling has not been run on GPU hardware here.
    return keras.optimizers.LossScaleOptimizer(optimizer)


class EagerStep:
    """A training step run eagerly: the Python function of a `tf.function`, called directly.

    It is never traced while timed, so `experimental_get_tracing_count()` returns
    None. `get_concrete_function` still traces the same computation, for the
    graph checks that read the step's ops.
    """

    def __init__(self, function):
        self._function = function

    def __call__(self, images, labels):
        return self._function.python_function(images, labels)

    def experimental_get_tracing_count(self):
        return None

    def get_concrete_function(self, *args):
        return self._function.get_concrete_function(*args)


def compile_train_step(make_step, compile_mode):
    """Return the step that `make_step(jit_compile)` builds, run in `compile_mode`."""
    step = make_step(compile_mode == "xla")
    if compile_mode == "eager":
        return EagerStep(step)
    return step
