"""Memory figures of a training step: allocator peak, process RSS and a byte account.

TensorFlow's CPU allocator keeps no statistics unless TF_CPU_ALLOCATOR_USE_BFC=true
is in the environment when TensorFlow loads its runtime; after that,
`tf.config.experimental.get_memory_info("CPU:0")` returns real `current` and
`peak` bytes and `reset_memory_stats` moves the peak down to `current`. Without
the variable both calls return zeros, which must never be reported as a
measurement. GPU allocators keep statistics always.

This module does not import TensorFlow at load time, so that the benchmark
suite can call `enable_cpu_allocator_stats()` before anything else does.
"""

import dataclasses
import os
import resource
import sys

ALLOCATOR_ENV = "TF_CPU_ALLOCATOR_USE_BFC"

# Optimizer variables that are not per-parameter slots.
_NON_SLOT_NAMES = ("iteration", "learning_rate")


@dataclasses.dataclass(frozen=True)
class AllocatorStatus:
    """Whether allocator statistics are real on the CPU, and why not if they are not."""

    available: bool
    reason: str


def enable_cpu_allocator_stats(environ=os.environ, modules=sys.modules):
    """Set TF_CPU_ALLOCATOR_USE_BFC=true unless TensorFlow is already imported; return the status.

    The variable only takes effect if it is set before TensorFlow is first
    imported in the process. A value already in the environment is assumed to
    have been there before that import.
    """
    if environ.get(ALLOCATOR_ENV, "").lower() == "true":
        return AllocatorStatus(True, f"{ALLOCATOR_ENV}=true is set in the environment")

    if "tensorflow" in modules:
        return AllocatorStatus(
            False,
            f"TensorFlow was imported before {ALLOCATOR_ENV}=true could be set, so CPU "
            "allocator statistics are off; export the variable before starting pytest",
        )

    environ[ALLOCATOR_ENV] = "true"
    return AllocatorStatus(True, f"{ALLOCATOR_ENV}=true was set before TensorFlow loaded")


class AllocatorProbe:
    """Reads and resets TensorFlow's allocator statistics on one device, such as "CPU:0".

    `current()` and `peak()` return bytes, or None when the device's allocator
    keeps no statistics: TensorFlow 2.21 raises ValueError then, and some older
    versions return zeros. Tests replace this class with a fake of the same methods.
    """

    def __init__(self, device):
        self.device = device

    def _info(self):
        import tensorflow as tf

        try:
            info = tf.config.experimental.get_memory_info(self.device)
        except ValueError:
            return None
        return info if info["current"] or info["peak"] else None

    def reset(self):
        import tensorflow as tf

        if self._info() is not None:
            tf.config.experimental.reset_memory_stats(self.device)

    def current(self):
        info = self._info()
        return None if info is None else info["current"]

    def peak(self):
        info = self._info()
        return None if info is None else info["peak"]


def allocator_device(tf_device):
    """Return the allocator device name ("CPU:0", "GPU:0") of a device string such as "/GPU:0"."""
    return tf_device.lstrip("/").upper()


def peak_rss_bytes():
    """Return the process's peak resident set size so far, in bytes.

    On Linux ru_maxrss is in KiB, on macOS in bytes.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024


def variable_bytes(variables):
    """Return the bytes that `variables` occupy, from their shapes and dtypes."""
    import tensorflow as tf

    from models.strategies import count_params

    return sum(count_params(variable) * tf.as_dtype(variable.dtype).size for variable in variables)


def slot_variables(optimizer):
    """Return the optimizer's per-parameter slot variables (momentum, velocity, ...).

    The step counter and the learning rate are optimizer variables too, but they do
    not grow with the model, so they are left out.
    """
    return [v for v in optimizer.variables if v.name not in _NON_SLOT_NAMES]


@dataclasses.dataclass
class ByteAccount:
    """Bytes of a case's variables, counted from their shapes and dtypes.

    Gradients are one tensor per trainable variable, of the same size, so
    `gradient_bytes` equals `trainable_param_bytes` by construction.
    """

    param_bytes: int
    trainable_param_bytes: int
    gradient_bytes: int
    optimizer_slot_bytes: int
    optimizer_slot_count: int


def byte_account(model, plan, optimizer):
    """Return the ByteAccount of `model` trained by `plan` with `optimizer`."""
    trainable = variable_bytes(plan.variables)
    slots = slot_variables(optimizer)
    return ByteAccount(
        param_bytes=variable_bytes(model.variables),
        trainable_param_bytes=trainable,
        gradient_bytes=trainable,
        optimizer_slot_bytes=variable_bytes(slots),
        optimizer_slot_count=len(slots),
    )


def memory_figures(account, allocator_peak, allocator_resident, batch_size, rss_before, rss_after):
    """Return the memory fields of a result.

    `allocator_peak` and `allocator_resident` are None when statistics are not
    available; every derived figure is then None too, never 0. Parameters,
    optimizer slots and the input batch are resident before the timed steps, so
    what the peak adds above resident is gradients plus activations and other
    temporaries. The activation estimate is that figure minus the gradient bytes.
    """
    figures = dataclasses.asdict(account)
    figures.update(
        allocator_peak_bytes=allocator_peak,
        allocator_resident_bytes=allocator_resident,
        allocator_peak_above_resident_bytes=None,
        activation_bytes_estimate=None,
        bytes_per_sample=None,
        rss_peak_before_bytes=rss_before,
        rss_peak_after_bytes=rss_after,
    )
    if allocator_peak is None or allocator_resident is None:
        return figures

    above = allocator_peak - allocator_resident
    figures.update(
        allocator_peak_above_resident_bytes=above,
        activation_bytes_estimate=max(0, above - account.gradient_bytes),
        bytes_per_sample=above / batch_size,
    )
    return figures
