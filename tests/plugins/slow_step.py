"""pytest plugin for tests: slows one strategy's training step, as a regression would.

Loaded with `-p tests.plugins.slow_step`. FREEZEBENCH_TEST_SLOW_STRATEGY names
the strategy, and FREEZEBENCH_TEST_SLOW_ELEMENTS sets the size of the extra
work: an elementwise sine over that many float32 values inside the step. It
adds no MatMul and no variable, so the gate's structure facts stay the same and
only its timing comparison can catch the change.
"""

import os


def pytest_configure(config):
    import tensorflow as tf

    import bench.harness as harness

    strategy = os.environ["FREEZEBENCH_TEST_SLOW_STRATEGY"]
    elements = int(os.environ.get("FREEZEBENCH_TEST_SLOW_ELEMENTS", "1000000"))
    build_case = harness.build_case

    def slow_build_case(case, dataset):
        built = build_case(case, dataset)
        if case.strategy.name != strategy:
            return built

        step = built.train_step
        extra = tf.random.stateless_uniform([elements], seed=[9, 9])

        @tf.function
        def slow_step(images, labels):
            # 0 * sum keeps the work in the graph without changing the loss.
            return step(images, labels) + 0.0 * tf.reduce_sum(tf.math.sin(extra))

        built.train_step = slow_step
        return built

    harness.build_case = slow_build_case
