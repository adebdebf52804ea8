"""Training data: IDX files in a data dir, Keras' cache, the synthetic fallback, device batches."""

import gzip
import os
import struct

import keras
import numpy as np
import pytest

from models.datasets import (
    IDX_FILES,
    TEST_IMAGES,
    TEST_LABELS,
    TRAIN_IMAGES,
    TRAIN_LABELS,
    Dataset,
    device_batch,
    keras_cache_dir,
    load_training_data,
    write_idx,
)
from models.errors import ConfigError

KERAS_CACHE_SUBDIR = os.path.join("datasets", "fashion-mnist")
# Module of keras.utils.get_file, which downloads with its `urlretrieve` on a cache miss.
KERAS_FILE_UTILS = "keras.src.utils.file_utils"
KERAS_CONFIG = "keras.src.backend.config"


def write_fixture(directory, num_train=7, num_test=3, seed=0):
    """Write the four IDX files into `directory` and return (train images, train labels)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(num_train, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, size=num_train, dtype=np.uint8)
    os.makedirs(directory, exist_ok=True)
    write_idx(os.path.join(directory, TRAIN_IMAGES), images)
    write_idx(os.path.join(directory, TRAIN_LABELS), labels)
    write_idx(os.path.join(directory, TEST_IMAGES), images[:num_test])
    write_idx(os.path.join(directory, TEST_LABELS), labels[:num_test])
    return images, labels


@pytest.fixture
def no_download(monkeypatch):
    """Make any Keras download fail the test instead of reaching the network."""

    def fail_download(url, *args, **kwargs):
        pytest.fail(f"Keras tried to download {url}")

    monkeypatch.setattr(f"{KERAS_FILE_UTILS}.urlretrieve", fail_download)


def test_data_dir_returns_arrays(tmp_path):
    images, labels = write_fixture(tmp_path)

    dataset = load_training_data(data_dir=tmp_path)

    assert np.array_equal(dataset.images, images)
    assert np.array_equal(dataset.labels, labels)
    assert dataset.images.dtype == np.uint8
    assert dataset.labels.dtype == np.uint8
    assert dataset.source == "fashion-mnist"
    assert str(dataset.detail) == str(tmp_path)


def test_data_dir_accepts_str(tmp_path):
    images, _ = write_fixture(tmp_path)
    assert np.array_equal(load_training_data(data_dir=str(tmp_path)).images, images)


@pytest.mark.parametrize("missing", IDX_FILES)
def test_missing_file_named(tmp_path, missing):
    write_fixture(tmp_path)
    os.remove(tmp_path / missing)

    with pytest.raises(ConfigError) as raised:
        load_training_data(data_dir=tmp_path)
    assert missing in str(raised.value)


def test_empty_data_dir_rejected(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_training_data(data_dir=tmp_path)
    for name in IDX_FILES:
        assert name in str(raised.value)


def gzip_bytes(data):
    return gzip.compress(data)


def idx_header(type_code, shape):
    return bytes([0, 0, type_code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)


RANDOM_PIXELS = np.random.default_rng(2).bytes(7 * 784)
CORRUPT_TRAIN_IMAGES = {
    "not-gzip": b"this is not a gzip stream",
    "empty-gzip": gzip_bytes(b""),
    "wrong-magic": gzip_bytes(b"\x00\x00\x0d\x03" + struct.pack(">3I", 7, 28, 28) + bytes(7 * 784)),
    "not-idx": gzip_bytes(b"PK\x03\x04 a zip file"),
    "short-header": gzip_bytes(idx_header(0x08, (7, 28, 28))[:9]),
    "short-data": gzip_bytes(idx_header(0x08, (7, 28, 28)) + bytes(6 * 784)),
    "extra-data": gzip_bytes(idx_header(0x08, (7, 28, 28)) + bytes(8 * 784)),
    # Random pixels do not compress, so 2000 bytes cut the stream short.
    "cut-gzip-stream": gzip_bytes(idx_header(0x08, (7, 28, 28)) + RANDOM_PIXELS)[:2000],
}


@pytest.mark.parametrize("content", CORRUPT_TRAIN_IMAGES.values(), ids=CORRUPT_TRAIN_IMAGES.keys())
def test_corrupt_file_rejected(tmp_path, content):
    write_fixture(tmp_path)
    (tmp_path / TRAIN_IMAGES).write_bytes(content)

    with pytest.raises(ConfigError) as raised:
        load_training_data(data_dir=tmp_path)
    assert TRAIN_IMAGES in str(raised.value)


def test_count_mismatch_rejected(tmp_path):
    images, labels = write_fixture(tmp_path)
    write_idx(tmp_path / TRAIN_LABELS, labels[:6])

    with pytest.raises(ConfigError) as raised:
        load_training_data(data_dir=tmp_path)
    assert "labels of shape (6,)" in str(raised.value)


def test_wrong_image_shape_rejected(tmp_path):
    write_fixture(tmp_path)
    write_idx(tmp_path / TRAIN_IMAGES, np.zeros((7, 32, 32), np.uint8))

    with pytest.raises(ConfigError) as raised:
        load_training_data(data_dir=tmp_path)
    assert "(7, 32, 32)" in str(raised.value)


def test_out_of_range_label_rejected(tmp_path):
    _, labels = write_fixture(tmp_path)
    labels[3] = 10
    write_idx(tmp_path / TRAIN_LABELS, labels)

    with pytest.raises(ConfigError):
        load_training_data(data_dir=tmp_path)


def test_image_file_as_labels_rejected(tmp_path):
    images, _ = write_fixture(tmp_path)
    write_idx(tmp_path / TRAIN_LABELS, images)

    with pytest.raises(ConfigError):
        load_training_data(data_dir=tmp_path)


def test_synthetic_without_cache(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def fail_load_data():
        pytest.fail("keras.datasets.fashion_mnist.load_data was called on a cache miss")

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", fail_load_data)

    dataset = load_training_data(min_samples=50)

    assert dataset.source == "synthetic"
    assert dataset.images.shape == (50, 28, 28)
    assert dataset.images.dtype == np.uint8
    assert dataset.labels.shape == (50,)
    assert dataset.labels.dtype == np.uint8
    assert dataset.labels.min() >= 0
    assert dataset.labels.max() <= 9
    assert str(tmp_path) in dataset.detail


def test_synthetic_with_partial_cache(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cache_dir = tmp_path / KERAS_CACHE_SUBDIR
    write_fixture(cache_dir)
    os.remove(cache_dir / TEST_LABELS)

    assert load_training_data(min_samples=5).source == "synthetic"


def test_synthetic_is_seeded(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    first = load_training_data(min_samples=20, seed=3)
    second = load_training_data(min_samples=20, seed=3)

    assert np.array_equal(first.images, second.images)
    assert np.array_equal(first.labels, second.labels)


@pytest.fixture
def keras_home(tmp_path, monkeypatch):
    """Point KERAS_HOME at tmp_path, for models.datasets and for Keras.

    Keras reads KERAS_HOME once, when it is imported, into `keras_home()`, so
    that value is set too, as if the variable had been exported before start.
    """
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    monkeypatch.setattr(f"{KERAS_CONFIG}._KERAS_DIR", str(tmp_path))
    return tmp_path


def test_keras_cache_uses_load_data(keras_home, monkeypatch, no_download):
    images, labels = write_fixture(keras_home / KERAS_CACHE_SUBDIR)
    calls = []
    real_load_data = keras.datasets.fashion_mnist.load_data

    def counting_load_data():
        calls.append(1)
        return real_load_data()

    monkeypatch.setattr(keras.datasets.fashion_mnist, "load_data", counting_load_data)

    dataset = load_training_data()

    assert calls == [1]
    assert np.array_equal(dataset.images, images)
    assert np.array_equal(dataset.labels, labels)
    assert dataset.source == "fashion-mnist"
    assert dataset.detail == str(keras_home / KERAS_CACHE_SUBDIR)


def resolve_with_get_file(name):
    """Return the path where keras.utils.get_file finds `name` of Fashion-MNIST.

    The origin is an unused loopback port and `no_download` fails any download,
    so this returns only when the file is already where Keras looks.
    """
    return keras.utils.get_file(
        name, origin="http://127.0.0.1:9/unused", cache_subdir=KERAS_CACHE_SUBDIR
    )


def test_cache_dir_matches_keras_home(keras_home, no_download):
    assert keras_cache_dir() == str(keras_home / KERAS_CACHE_SUBDIR)
    write_fixture(keras_cache_dir())
    assert resolve_with_get_file(TRAIN_IMAGES) == os.path.join(keras_cache_dir(), TRAIN_IMAGES)


def test_cache_dir_defaults_to_home(tmp_path, monkeypatch, no_download):
    monkeypatch.delenv("KERAS_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    # What Keras computes at import when KERAS_HOME is unset and HOME is writable.
    monkeypatch.setattr(f"{KERAS_CONFIG}._KERAS_DIR", str(tmp_path / ".keras"))

    assert keras_cache_dir() == str(tmp_path / ".keras" / KERAS_CACHE_SUBDIR)
    write_fixture(keras_cache_dir())
    assert resolve_with_get_file(TRAIN_LABELS) == os.path.join(keras_cache_dir(), TRAIN_LABELS)


def small_dataset():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, size=(7, 28, 28), dtype=np.uint8)
    images[0, 0, 0] = 0
    images[0, 0, 1] = 255
    labels = np.arange(7, dtype=np.uint8)
    return Dataset(images, labels, "synthetic", "test fixture")


def test_device_batch_types_and_range():
    dataset = small_dataset()

    images, labels = device_batch(dataset, 5, "/CPU:0")

    assert images.dtype.name == "float32"
    assert labels.dtype.name == "int32"
    assert images.shape == (5, 28, 28)
    assert labels.shape == (5,)
    assert float(images.numpy().min()) == 0.0
    assert float(images.numpy().max()) == 1.0
    assert np.allclose(images.numpy(), dataset.images[:5] / 255.0)
    assert np.array_equal(labels.numpy(), dataset.labels[:5])


def test_device_batch_repeats_samples():
    dataset = small_dataset()

    images, labels = device_batch(dataset, 16, "/CPU:0")

    assert images.shape == (16, 28, 28)
    assert np.array_equal(labels.numpy(), [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 0, 1])
    assert np.array_equal(images.numpy()[7], images.numpy()[0])
    assert np.array_equal(images.numpy()[15], images.numpy()[1])


def test_device_batch_on_cpu():
    images, labels = device_batch(small_dataset(), 4, "/CPU:0")
    assert images.device.endswith("CPU:0")
    assert labels.device.endswith("CPU:0")


@pytest.mark.parametrize("batch_size", [0, -3])
def test_device_batch_rejects_size(batch_size):
    with pytest.raises(ConfigError) as raised:
        device_batch(small_dataset(), batch_size, "/CPU:0")
    assert f"batch size {batch_size}" in str(raised.value)
    assert "positive integer" in str(raised.value)


def test_missing_data_dir_named(tmp_path):
    with pytest.raises(ConfigError) as raised:
        load_training_data(data_dir=str(tmp_path / "nope"))
    assert "not found or not a folder" in str(raised.value)
