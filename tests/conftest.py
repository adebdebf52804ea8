"""Shared fixtures of the correctness tests.

pyproject.toml puts the repository root on sys.path (`pythonpath = ["."]`), so
`models` and `bench` import without anything here.
"""

import numpy as np
import pytest

BATCH_SIZE = 64


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "slow: starts `pytest bench/` in a subprocess (about 15 s each); "
        "deselect with -m 'not slow'",
    )


@pytest.fixture(scope="session")
def fixed_batch():
    """Return 64 seeded samples: float32 images in [0, 1] of 28x28 and int32 labels in 0..9."""
    import tensorflow as tf

    rng = np.random.default_rng(0)
    images = rng.random((BATCH_SIZE, 28, 28), dtype=np.float32)
    labels = rng.integers(0, 10, size=BATCH_SIZE).astype(np.int32)
    return tf.constant(images), tf.constant(labels)
