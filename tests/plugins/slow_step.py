"""pytest plugin for tests: slows one strategy's training step, as a regression would.

Loaded with `-p tests.plugins.slow_step`. FREEZEBENCH_TEST_SLOW_STRATEGY names
the strategy, and FREEZEBENCH_TEST_SLOW_ELEMENTS sets the size of the extra
work: an elementwise sine over that many float32 values, added to the loss
inside the step. It adds no MatMul and no variable, so the gate's structure
facts stay the same and only its timing comparison can catch the change.
"""

import dataclasses
import os


def pytest_configure(config):
    import tensorflow as tf

    import bench.harness as harness

    strategy = os.environ["FREEZEBENCH_TEST_SLOW_STRATEGY"]
    elements = int(os.environ.get("FREEZEBENCH_TEST_SLOW_ELEMENTS", "1000000"))
    build_case = harness.build_case
    model_spec = harness.model_spec

    def slow_model_spec(name, **options):
        spec = model_spec(name, **options)
        extra = tf.random.stateless_uniform([elements], seed=[9, 9])

        def make_slow_loss():
            loss = spec.make_loss()

            def slow_loss(labels, predictions):
                # 0 * sum keeps the work in the graph without changing the loss.
                return loss(labels, predictions) + 0.0 * tf.reduce_sum(tf.math.sin(extra))

            return slow_loss

        return dataclasses.replace(spec, make_loss=make_slow_loss)

    def slow_build_case(case, dataset):
        if case.strategy.name != strategy:
            return build_case(case, dataset)
        harness.model_spec = slow_model_spec
        try:
            return build_case(case, dataset)
        finally:
            harness.model_spec = model_spec

    harness.build_case = slow_build_case
