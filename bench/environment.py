"""The software environment recorded with every result."""

import os
import platform


def onednn_status():
    """Return (enabled, how it was decided) for TensorFlow's oneDNN CPU kernels.

    TensorFlow reads TF_ENABLE_ONEDNN_OPTS when it loads. Unset, oneDNN is on by
    default on x86-64 Linux builds since TensorFlow 2.9 and off elsewhere.
    """
    value = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    if value is not None:
        return value.strip().lower() in ("1", "true"), f"TF_ENABLE_ONEDNN_OPTS={value}"

    default_on = platform.system() == "Linux" and platform.machine() in ("x86_64", "AMD64")
    return default_on, "TensorFlow default for this platform"


def describe_environment():
    """Return TensorFlow and Keras versions, oneDNN status and thread settings.

    A thread count of 0 means TensorFlow chooses, which is one thread per
    logical core for intra-op parallelism.
    """
    import keras
    import tensorflow as tf

    onednn_enabled, onednn_source = onednn_status()
    return {
        "tensorflow_version": tf.__version__,
        "keras_version": keras.__version__,
        "onednn_enabled": onednn_enabled,
        "onednn_source": onednn_source,
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "cpu_count": os.cpu_count(),
    }
