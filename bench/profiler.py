"""Capture of a profiler trace of a few training steps.

`capture_trace` runs steps under TensorFlow's profiler and returns where the
trace was written. The profiler allows one session per process. A capture
that cannot start, because another profiler is running, logs the error and
returns a failed CaptureResult instead of raising, and it never stops a
session it did not start. TensorFlow writes the trace, an XSpace protobuf, to
`<logdir>/plugins/profile/<timestamp>/<host>.xplane.pb`, the layout that
TensorBoard's profile plugin reads (`tensorboard --logdir <logdir>`).
"""

import dataclasses
import glob
import logging
import os

from bench.breakdown import GPU_PLANE_PREFIX, STEP_ANNOTATION, load_xspace

logger = logging.getLogger(__name__)

DEFAULT_STEPS = 5
_XPLANE_PATTERN = os.path.join("plugins", "profile", "*", "*.xplane.pb")


@dataclasses.dataclass
class CaptureResult:
    """The outcome of one capture: the written trace, or the error that stopped it.

    `xplane_path` is None when the capture failed. `warnings` lists problems
    with a written trace, such as a missing GPU plane, and the errors and
    warnings that the profiler recorded in the XSpace.
    """

    logdir: str
    xplane_path: str = None
    error: str = None
    steps: int = 0
    warnings: list = dataclasses.field(default_factory=list)

    @property
    def ok(self):
        return self.xplane_path is not None


def profiler_options():
    """Return the ProfilerOptions of a capture: host and device tracers on, Python tracer off.

    host_tracer_level 2 records op execution (level 1 records only user
    annotations); device_tracer_level 1 turns on CUPTI on a GPU.
    """
    import tensorflow as tf

    # NOTE: TensorFlow 2.21 ignores these values: it logs "host_tracer_level
    # expects an i value" and records its defaults (host 2, device 1, Python 0)
    # in the trace's profile_options. They are passed anyway, for versions
    # that read them, and match those defaults.
    return tf.profiler.experimental.ProfilerOptions(
        host_tracer_level=2, device_tracer_level=1, python_tracer_level=0
    )


def capture_trace(train_step, images, labels, logdir, steps=DEFAULT_STEPS, device=None):
    """Profile `steps` calls of `train_step(images, labels)` into `logdir` and return a CaptureResult.

    `train_step` must be warmed up, because a first call would trace the
    `tf.function` inside the profile. Each step runs inside a
    `tf.profiler.experimental.Trace` annotation named "train" with its
    `step_num`, and reads the loss to the host there, so the annotation ends
    after the device has finished the step. `logdir` is created only once the
    profiler has started. `device` is the TensorFlow device the steps run on,
    by default the device of `images`. A GPU device without a GPU plane in the
    trace gives a warning.

    Returns a failed result if the profiler cannot start or cannot write the
    trace. An exception from a step, or from creating `logdir`, propagates
    after the profiler is stopped.
    """
    import tensorflow as tf

    if steps < 1:
        raise ValueError(f"steps={steps} is invalid; a capture needs at least 1 step")

    result = CaptureResult(logdir=str(logdir))
    start_error = _start_profiler(str(logdir))
    if start_error is not None:
        result.error = start_error
        return result

    before = set(_xplane_files(logdir))
    completed = False
    try:
        os.makedirs(logdir, exist_ok=True)
        for step_num in range(steps):
            with tf.profiler.experimental.Trace(STEP_ANNOTATION, step_num=step_num, _r=1):
                train_step(images, labels).numpy()
        completed = True
    finally:
        # A failed capture's partial trace is not saved, so an export error
        # cannot replace the step's exception.
        stop_error = _stop_profiler(str(logdir), save=completed)

    if stop_error is not None:
        result.error = stop_error
        return result
    return _written_trace(result, before, steps, device or images.device)


def _start_profiler(logdir):
    """Start a profiler session and return None, or the error message if it did not start."""
    import tensorflow as tf

    try:
        tf.profiler.experimental.start(logdir, options=profiler_options())
    except tf.errors.OpError as error:
        # AlreadyExistsError: another session is running in this process, for
        # example a Keras TensorBoard callback with profile_batch set.
        message = f"profiler failed to start for {logdir}: {type(error).__name__}: {error.message}"
        logger.error("%s; continuing without a trace", message)
        return message
    return None


def _stop_profiler(logdir, save):
    """Stop the session this module started and return None, or the error message."""
    import tensorflow as tf

    try:
        tf.profiler.experimental.stop(save=save)
    except tf.errors.OpError as error:
        message = f"profiler failed to stop and write the trace to {logdir}: {type(error).__name__}: {error.message}"
        logger.error(message)
        return message
    return None


def _xplane_files(logdir):
    return glob.glob(os.path.join(str(logdir), _XPLANE_PATTERN))


def _written_trace(result, before, steps, device):
    """Fill `result` with the trace file that the stopped session wrote."""
    written = sorted(set(_xplane_files(result.logdir)) - before, key=os.path.getmtime)
    if not written:
        result.error = f"profiler stopped but wrote no .xplane.pb under {result.logdir}"
        logger.error(result.error)
        return result

    result.xplane_path = written[-1]
    result.steps = steps
    result.warnings.extend(trace_warnings(result.xplane_path, device))
    for warning in result.warnings:
        logger.warning("trace %s: %s", result.xplane_path, warning)
    return result


def trace_warnings(xplane_path, device):
    """Return the problems recorded in a trace file, plus a missing GPU plane."""
    xspace = load_xspace(xplane_path)
    warnings = [f"profiler error: {e}" for e in xspace.errors]
    warnings += [f"profiler warning: {w}" for w in xspace.warnings]

    gpu_warning = missing_gpu_plane_warning(device, [plane.name for plane in xspace.planes])
    if gpu_warning:
        warnings.append(gpu_warning)
    return warnings


def missing_gpu_plane_warning(device, plane_names):
    """Return a warning if `device` is a GPU but no `/device:GPU:<n>` plane was traced, else None.

    Without CUPTI the profiler records only the host, so the trace shows kernel
    launches but no kernel or copy times.
    """
    # NOTE: unverified on GPU hardware. The plane name follows TensorFlow's
    # GPU tracer and is tested only on synthetic plane lists.
    if "GPU" not in str(device).upper():
        return None
    if any(name.startswith(GPU_PLANE_PREFIX) for name in plane_names):
        return None
    return (
        f"device requested is GPU ({device}) but the xspace has no {GPU_PLANE_PREFIX}<n> plane; "
        "the host trace was written, but kernel and copy times are missing. Put CUPTI "
        "(libcupti.so, in the CUDA toolkit's extras/CUPTI/lib64) on LD_LIBRARY_PATH"
    )
