"""Training data: Fashion-MNIST from local files, and synthetic data.

The real loader is `keras.datasets.fashion_mnist.load_data()`. It downloads on a
cache miss, which hangs or fails on a machine without internet, so it is called
only after the four files are found in Keras' cache. A `data_dir` holding the
same four IDX files is read directly. Otherwise the data is synthetic, with the
real shape, dtype and value range: uint8 images of 28x28 in [0, 255] and uint8
labels in [0, 9]. Every Dataset records which source it came from.

The MobileNetV2 model gets synthetic color images only (`synthetic_image_dataset`):
float32 in [-1, 1], the range of `keras.applications.mobilenet_v2.preprocess_input`,
with float32 binary labels.
"""

import dataclasses
import gzip
import os
import struct

import numpy as np

from models.errors import ConfigError
from models.mlp import IMAGE_SHAPE, NUM_CLASSES

FASHION_MNIST = "fashion-mnist"
SYNTHETIC = "synthetic"

TRAIN_IMAGES = "train-images-idx3-ubyte.gz"
TRAIN_LABELS = "train-labels-idx1-ubyte.gz"
TEST_IMAGES = "t10k-images-idx3-ubyte.gz"
TEST_LABELS = "t10k-labels-idx1-ubyte.gz"
IDX_FILES = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)

# IDX magic numbers: two zero bytes, the type code 0x08 (unsigned byte), then
# the number of dimensions.
_IDX_UBYTE_TYPE = 0x08


@dataclasses.dataclass
class Dataset:
    """Training images and labels, with their source.

    Fashion-MNIST data consists of uint8 images (N x 28 x 28) and uint8 class indices (N).
    Synthetic image data consists of float32 images (N x S x S x 3) in [-1, 1] and
    float32 labels 0 or 1. `source` is "fashion-mnist" or "synthetic"; `detail`
    gives the directory read or the reason for synthetic data.
    """

    images: np.ndarray
    labels: np.ndarray
    source: str
    detail: str


def keras_home():
    """Return Keras' cache root: `$KERAS_HOME`, else `~/.keras`, as `keras.utils.get_file` uses.

    Like `get_file` in Keras 3.15, it falls back to `/tmp/.keras` when the root
    exists but is not writable.
    NOTE: Keras reads `$KERAS_HOME` once, when it is imported; this function
    reads it on every call.
    """
    home = os.environ.get("KERAS_HOME") or os.path.join(os.path.expanduser("~"), ".keras")
    if os.path.isdir(home) and not os.access(home, os.W_OK):
        return os.path.join("/tmp", ".keras")
    return home


def keras_cache_dir():
    """Return the folder where Keras caches Fashion-MNIST: `datasets/fashion-mnist` under keras_home()."""
    return os.path.join(keras_home(), "datasets", "fashion-mnist")


def missing_files(directory):
    """Return the names of the four IDX files that are not in `directory`."""
    return [name for name in IDX_FILES if not os.path.isfile(os.path.join(directory, name))]


def load_training_data(data_dir=None, min_samples=1, seed=0):
    """Return Fashion-MNIST training data from local files, or synthetic data.

    Args:
        data_dir: a folder with the four IDX `.gz` files. When given, it must hold
            all four; a missing or corrupt file raises ConfigError, because a
            silent fallback would benchmark other data than requested.
        min_samples: the number of samples needed; synthetic data is this size.
        seed: seed of the synthetic data.
    """
    if data_dir is not None:
        return _load_data_dir(data_dir)

    cache_dir = keras_cache_dir()
    if not missing_files(cache_dir):
        return _load_keras_cache(cache_dir)

    reason = f"Fashion-MNIST files not found in {cache_dir}"
    return synthetic_dataset(max(min_samples, 1), seed, reason)


def _load_data_dir(data_dir):
    if not os.path.isdir(data_dir):
        raise ConfigError(
            f"--data-dir {str(data_dir)!r} not found or not a folder; give the folder that "
            f"contains the four Fashion-MNIST IDX files ({', '.join(IDX_FILES)})"
        )
    missing = missing_files(data_dir)
    if missing:
        raise ConfigError(
            f"--data-dir {data_dir!r} lacks {', '.join(missing)}; it must hold the four "
            f"Fashion-MNIST IDX files ({', '.join(IDX_FILES)})"
        )
    images = read_idx(os.path.join(data_dir, TRAIN_IMAGES))
    labels = read_idx(os.path.join(data_dir, TRAIN_LABELS))
    return _checked_dataset(images, labels, data_dir)


def _load_keras_cache(cache_dir):
    import keras

    (images, labels), _ = keras.datasets.fashion_mnist.load_data()
    return _checked_dataset(images, labels, cache_dir)


def _checked_dataset(images, labels, directory):
    if images.shape[1:] != IMAGE_SHAPE or labels.ndim != 1 or len(images) != len(labels) or len(images) == 0:
        raise ConfigError(
            f"Fashion-MNIST files in {directory!r} hold images of shape {images.shape} and "
            f"labels of shape {labels.shape}; expected N x 28 x 28 images and N labels, N > 0"
        )
    if labels.max() >= NUM_CLASSES:
        raise ConfigError(
            f"Fashion-MNIST labels in {directory!r} go up to {labels.max()}; "
            f"valid labels are 0 to {NUM_CLASSES - 1}"
        )
    return Dataset(images, labels, FASHION_MNIST, directory)


def read_idx(path):
    """Read a gzip-compressed IDX file of unsigned bytes into a numpy array.

    Raises ConfigError if the file is not gzip, has another magic number, or holds
    fewer bytes than its header declares.
    """
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as error:
        raise ConfigError(f"cannot read IDX file {path!r}: {error}") from None

    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _IDX_UBYTE_TYPE:
        raise ConfigError(
            f"{path!r} is not an IDX file of unsigned bytes "
            f"(its first bytes are {data[:4].hex() or 'missing'}, expected 000008xx)"
        )

    ndim = data[3]
    header_size = 4 + 4 * ndim
    if len(data) < header_size:
        raise ConfigError(f"IDX file {path!r} is truncated inside its header")
    shape = struct.unpack(f">{ndim}I", data[4:header_size])

    expected = int(np.prod(shape))
    if len(data) - header_size != expected:
        raise ConfigError(
            f"IDX file {path!r} declares shape {shape} ({expected} bytes) "
            f"but holds {len(data) - header_size} bytes of data"
        )
    return np.frombuffer(data, np.uint8, offset=header_size).reshape(shape)


def write_idx(path, array):
    """Write a uint8 array as a gzip-compressed IDX file (for fixtures and tests)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, _IDX_UBYTE_TYPE, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def synthetic_dataset(num_samples, seed=0, reason="synthetic data requested"):
    """Return uniformly random uint8 images and labels of Fashion-MNIST's shape."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(num_samples, *IMAGE_SHAPE), dtype=np.uint8)
    labels = rng.integers(0, NUM_CLASSES, size=num_samples, dtype=np.uint8)
    return Dataset(images, labels, SYNTHETIC, reason)


def synthetic_image_dataset(num_samples, image_size, seed=0, reason="synthetic data requested"):
    """Return seeded random color images and binary labels for the MobileNetV2 model.

    Images are float32 of shape (num_samples, image_size, image_size, 3), uniform
    in [-1, 1], the range MobileNetV2's `preprocess_input` produces. Labels are
    float32 0.0 or 1.0, the targets of binary cross-entropy.
    """
    rng = np.random.default_rng(seed)
    shape = (num_samples, image_size, image_size, 3)
    images = rng.uniform(-1.0, 1.0, size=shape).astype(np.float32)
    labels = rng.integers(0, 2, size=num_samples).astype(np.float32)
    return Dataset(images, labels, SYNTHETIC, reason)


def device_batch(dataset, batch_size, device):
    """Return the first `batch_size` samples as tensors placed on `device`.

    uint8 images (Fashion-MNIST pixels) become float32 in [0, 1]; float images
    are already scaled and only cast to float32. Integer labels (class indices)
    become int32, float labels (binary targets) float32. When the dataset is
    smaller than the batch, samples are repeated (np.resize) to fill it.
    Placing the batch before timing keeps input-pipeline cost out of the step.
    """
    import tensorflow as tf

    if batch_size <= 0:
        raise ConfigError(f"batch size {batch_size} is invalid; it must be a positive integer")

    images = np.resize(dataset.images, (batch_size, *dataset.images.shape[1:]))
    if images.dtype == np.uint8:
        images = images.astype(np.float32) / 255.0
    else:
        images = images.astype(np.float32)

    label_dtype = np.int32 if np.issubdtype(dataset.labels.dtype, np.integer) else np.float32
    labels = np.resize(dataset.labels, (batch_size,)).astype(label_dtype)
    with tf.device(device):
        # tf.identity under tf.device copies the constant onto the device.
        return tf.identity(tf.constant(images)), tf.identity(tf.constant(labels))
