"""pytest plugin for tests: batches of FREEZEBENCH_TEST_OOM_BATCH samples or more fail to allocate.

Loaded with `-p tests.plugins.inject_oom`, it makes placing the batch on the
device raise tf.errors.ResourceExhaustedError, as a real allocation failure
would, without using up the machine's memory.
"""

import os


def pytest_configure(config):
    import tensorflow as tf

    import bench.harness as harness

    limit = int(os.environ["FREEZEBENCH_TEST_OOM_BATCH"])
    place_batch = harness.device_batch

    def failing_device_batch(dataset, batch_size, device):
        if batch_size >= limit:
            raise tf.errors.ResourceExhaustedError(
                None, None, f"OOM when allocating tensor with shape[{batch_size},28,28] (injected)"
            )
        return place_batch(dataset, batch_size, device)

    harness.device_batch = failing_device_batch
