"""pytest plugin for tests: starts a profiler of its own, so freezebench's capture cannot start.

Loaded with `-p tests.plugins.busy_profiler`; it writes its own trace under
FREEZEBENCH_TEST_PROFILER_DIR and stops its profiler when the session ends.
"""

import os


def pytest_configure(config):
    import tensorflow as tf

    tf.profiler.experimental.start(os.environ["FREEZEBENCH_TEST_PROFILER_DIR"])


def pytest_unconfigure(config):
    import tensorflow as tf

    tf.profiler.experimental.stop()
