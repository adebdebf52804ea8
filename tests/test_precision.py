"""Compile modes and dtype policies: no policy leaks between cases, eager steps are not traced."""

import keras

from bench.harness import Case, build_case
from bench.precision import EagerStep, dtype_policy, precision_skip_reason
from models.datasets import synthetic_dataset
from models.strategies import parse_strategy


def build(compile_mode="graph", precision="float32"):
    case = Case("mlp-sequential", parse_strategy("full"), 4, "cpu", None, "sgd", compile_mode, precision)
    return build_case(case, synthetic_dataset(4))


def test_policy_restored_after_build():
    built = build(precision="mixed_bfloat16")
    assert built.model.layers[1].dtype_policy.name == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"


def test_policy_restored_after_error():
    try:
        with dtype_policy("mixed_bfloat16"):
            raise RuntimeError("build failed")
    except RuntimeError:
        pass
    assert keras.mixed_precision.global_policy().name == "float32"


def test_eager_step_is_not_traced():
    built = build(compile_mode="eager")
    assert isinstance(built.train_step, EagerStep)
    built.train_step(built.images, built.labels)
    assert built.train_step.experimental_get_tracing_count() is None


def test_xla_step_traced_once():
    built = build(compile_mode="xla")
    loss = built.train_step(built.images, built.labels)
    assert float(loss.numpy()) > 0
    assert built.train_step.experimental_get_tracing_count() == 1


def test_float16_skipped_on_cpu():
    assert "GPU only" in precision_skip_reason("mixed_float16", "cpu")
    assert precision_skip_reason("mixed_float16", "gpu") is None
    assert precision_skip_reason("mixed_bfloat16", "cpu") is None
