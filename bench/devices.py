"""Device selection for benchmark cases: names, TensorFlow device strings, skip reasons.

The GPU paths here are exercised on CPU-only machines through the
`physical_devices` argument, which tests fill with fakes.
"""

from models.errors import ConfigError

DEVICES = ("cpu", "gpu")
_TF_DEVICE = {"cpu": "/CPU:0", "gpu": "/GPU:0"}


def parse_device(name):
    """Return `name` if it is a known device kind; raise ConfigError otherwise."""
    if name not in DEVICES:
        raise ConfigError(f"unknown device {name!r}; valid devices: {', '.join(DEVICES)}")
    return name


def tf_device(name):
    """Return the TensorFlow device string for a device kind, for example "/GPU:0"."""
    return _TF_DEVICE[parse_device(name)]


def list_gpus():
    """Return TensorFlow's physical GPU devices."""
    import tensorflow as tf

    return tf.config.list_physical_devices("GPU")


def skip_reason(name, physical_devices=None):
    """Return why a case on device `name` cannot run here, or None if it can.

    `physical_devices` defaults to TensorFlow's list of physical GPUs.
    """
    if parse_device(name) == "cpu":
        return None

    gpus = list_gpus() if physical_devices is None else physical_devices
    if gpus:
        return None
    return (
        "TensorFlow sees no GPU (tf.config.list_physical_devices('GPU') is empty); "
        "install the gpu extra on a machine with a CUDA GPU, or use --device=cpu"
    )


def check_explicit_request(names, physical_devices=None):
    """Raise ConfigError when every requested device is unavailable.

    A run that asked only for GPU cases on a machine without one would skip them
    all and look like a success, so it is rejected up front instead.
    """
    reasons = [skip_reason(name, physical_devices) for name in names]
    if reasons and all(reasons):
        raise ConfigError(f"--device={','.join(names)} cannot run here: {reasons[0]}")
