"""One benchmark case end to end: build, warm up, check, time, measure memory, record.

Each case builds its own model and optimizer, so no case inherits another's
variables or optimizer slots.
"""

import dataclasses
import os

import keras
import tensorflow as tf

from bench import quality
from bench.case_trace import profile_case
from bench.precision import (
    DEFAULT_COMPILE_MODE,
    DEFAULT_PRECISION,
    compile_train_step,
    dtype_policy,
    wrap_optimizer,
)
from bench.devices import tf_device
from bench.environment import describe_environment
from bench.memory import (
    AllocatorProbe,
    allocator_device,
    byte_account,
    memory_figures,
    peak_rss_bytes,
    slot_variables,
)
from bench.reference import REFERENCE_KERNEL, PairedReference, time_reference_kernel
from bench.results import SCHEMA_VERSION
from bench.timing import PlainLoop, time_train_step, warm_up
from models.datasets import SYNTHETIC, device_batch
from models.graph_stats import matmul_count, optimized_op_counts
from models.registry import model_spec
from models.strategies import FROZEN_PREFIX, apply_strategy, format_plan
from models.train_step import check_updated_variables, make_optimizer, make_train_step


class OutOfMemory(Exception):
    """A case ran out of device memory; the message is TensorFlow's."""


@dataclasses.dataclass(frozen=True)
class Case:
    """The parameters of one benchmark case.

    `fine_tune_at` is used by frozen-prefix only. `model_options` contains the
    model builder's keyword arguments as (name, value) pairs, such as
    mobilenetv2's image size.
    """

    model: str
    strategy: object  # a models.strategies.StrategySpec
    batch_size: int
    device: str
    fine_tune_at: object
    optimizer: str
    compile_mode: str = DEFAULT_COMPILE_MODE
    precision: str = DEFAULT_PRECISION
    model_options: tuple = ()

    @property
    def id(self):
        """Return the case's pytest id, with only the parameters that differ from the defaults."""
        parts = [self.model, self.strategy.name]
        if self.strategy.name == FROZEN_PREFIX:
            parts.append(f"ft{self.fine_tune_at}")
        parts += [f"b{self.batch_size}", self.device]
        if self.compile_mode != DEFAULT_COMPILE_MODE:
            parts.append(self.compile_mode)
        if self.precision != DEFAULT_PRECISION:
            parts.append(self.precision)
        return "-".join(parts)

    def describe(self):
        """Return the case's fields as stored in a result."""
        return {
            "case_id": self.id,
            "model": self.model,
            "model_options": dict(self.model_options),
            "strategy": self.strategy.name,
            "train_layers": list(self.strategy.layers),
            "batch_size": self.batch_size,
            "device": self.device,
            "tf_device": tf_device(self.device),
            "optimizer": self.optimizer,
            "compile_mode": self.compile_mode,
            "precision": self.precision,
        }


@dataclasses.dataclass
class TimingSettings:
    """pytest-benchmark limits: round target and total time in seconds, minimum rounds."""

    round_target: float
    max_time: float
    min_rounds: int
    paired_reference: bool = False
    crosscheck: bool = False  # time a plain loop after every round, for comparison
    profile_steps: int = 0  # 0: no profiler trace
    trace_dir: object = None  # the run's folder; each case writes to <trace_dir>/<case id>


@dataclasses.dataclass
class Built:
    """A case's model, plan, optimizer, compiled step and on-device batch."""

    model: object
    plan: object
    optimizer: object
    train_step: object
    images: object
    labels: object


def build_case(case, dataset):
    """Build the model, strategy, optimizer, step and batch of `case` on its device."""
    # Frees what earlier cases left behind, so the allocator's resident bytes
    # belong to this case, and resets Keras' layer and optimizer name counters.
    keras.backend.clear_session(free_memory=True)
    spec = model_spec(case.model, **dict(case.model_options))

    with dtype_policy(case.precision):
        model = spec.build()
    plan = apply_strategy(model, case.strategy, case.fine_tune_at)
    optimizer = wrap_optimizer(make_optimizer(case.optimizer), case.precision)
    loss = spec.make_loss()
    train_step = compile_train_step(
        lambda jit_compile: make_train_step(model, plan.variables, optimizer, jit_compile, loss),
        case.compile_mode,
    )
    images, labels = device_batch(dataset, case.batch_size, tf_device(case.device))
    return Built(model, plan, optimizer, train_step, images, labels)


def run_case(benchmark, case, dataset, settings, allocator_status):
    """Time one case with `benchmark` and return (extra_info, plan text).

    The extra_info is also stored on `benchmark.extra_info`. Raises OutOfMemory
    when TensorFlow cannot allocate the case's tensors.
    """
    rss_before = peak_rss_bytes()
    device = tf_device(case.device)
    try:
        with tf.device(device):
            built = build_case(case, dataset)
            warmup = warm_up(built.train_step, built.images, built.labels)
            traces_after_warmup = built.train_step.experimental_get_tracing_count()
            # Checked on the traced graph, which is what the rounds will run.
            state_written = check_updated_variables(
                built.train_step, built.model, built.plan, built.images, built.labels
            )

            structure = describe_structure(built)
            # Timed right before the rounds, so it runs under the same machine load.
            reference_seconds = time_reference_kernel(device)

            probe = AllocatorProbe(allocator_device(device))
            probe.reset()
            resident = probe.current()

            paired = PairedReference(device) if settings.paired_reference else None
            plain = PlainLoop(built.train_step, built.images, built.labels) if settings.crosscheck else None

            # pytest-benchmark copies the group when timing starts, so it is set first.
            benchmark.group = f"{case.model} {case.device} batch {case.batch_size}"
            runner, iterations, _ = time_train_step(
                benchmark, built.train_step, built.images, built.labels,
                settings.round_target, settings.max_time, settings.min_rounds,
                teardown=paired, plain_loop=plain,
            )
            peak = probe.peak()

            trace = None
            if settings.profile_steps:
                logdir = os.path.join(settings.trace_dir, case.id)
                trace = profile_case(case, built, logdir, settings.profile_steps)
    except tf.errors.ResourceExhaustedError as error:
        raise OutOfMemory(error.message) from None

    stats = benchmark.stats.stats
    warnings = _warnings(stats, built, dataset, runner, peak is not None,
                         traces_after_warmup, built.train_step.experimental_get_tracing_count())
    warnings += _trace_warnings(trace)
    memory = memory_figures(
        byte_account(built.model, built.plan, built.optimizer), peak, resident,
        case.batch_size, rss_before, peak_rss_bytes(),
    )

    extra_info = {
        "schema_version": SCHEMA_VERSION,
        **case.describe(),
        "fine_tune_at": built.plan.fine_tune_at,
        "weights": _weights_detail(built.model),
        "data_source": dataset.source,
        "data_detail": dataset.detail,
        "trainable_params": built.plan.trainable_params,
        "non_trainable_params": built.plan.non_trainable_params,
        "keras_trainable_params": built.plan.keras_trainable_params,
        "layers": [dataclasses.asdict(layer) for layer in built.plan.layers],
        "base": built.plan.base,
        "base_layers": [dataclasses.asdict(layer) for layer in built.plan.base_layers],
        # Non-trainable state the step writes besides the optimizer's updates,
        # such as BatchNormalization moving statistics of trainable layers.
        "state_variables_written": [v.path for v in state_written],
        "samples_per_second": case.batch_size / stats.median,
        "steps_per_second": 1.0 / stats.median,
        "warmup_seconds": warmup.seconds,
        "warmup_steps": warmup.steps,
        "first_call_seconds": warmup.first_call_seconds,
        # The first call traces the step and, under XLA, compiles it as well.
        "compile_seconds": warmup.first_call_seconds if case.compile_mode == "xla" else None,
        "tracing_count": built.train_step.experimental_get_tracing_count(),
        "iterations_per_round": iterations,
        "final_loss": runner.losses[-1] if runner.losses else warmup.loss,
        "memory": memory,
        "reference_kernel": REFERENCE_KERNEL,
        "reference_seconds": reference_seconds,
        # pytest-benchmark's pedantic calls the teardown once more after the
        # last round, for an untimed extra call; that sample pairs with no round.
        "paired_reference_seconds": paired.seconds[: len(stats.data)] if paired else None,
        "plain_loop_seconds": plain.seconds[: len(stats.data)] if plain else None,
        "structure": {**structure, "tracing_count": built.train_step.experimental_get_tracing_count()},
        "allocator_stats": allocator_status.reason,
        "trace": trace,
        "warnings": warnings,
        "environment": describe_environment(),
    }
    benchmark.extra_info.update(extra_info)
    return extra_info, format_plan(case.model, built.plan)


def _weights_detail(model):
    source = getattr(model, "weights_source", None)
    if source is None:
        return None
    return {"weights": source.weights, "path": source.path, "detail": source.detail}


def describe_structure(built):
    """Return the step's deterministic facts: optimized MatMul count, variable and slot counts."""
    return {
        "optimized_matmul_count": matmul_count(
            optimized_op_counts(built.train_step, built.images, built.labels)
        ),
        "trained_variable_count": len(built.plan.variables),
        "optimizer_slot_count": len(slot_variables(built.optimizer)),
    }


def _warnings(stats, built, dataset, runner, allocator_measured, traces_after_warmup, traces_after_timing):
    warnings = quality.stability_warnings(stats.median, stats.iqr)
    # An eager step has no tracing count (None), and nothing to retrace.
    if traces_after_warmup is not None and (traces_after_warmup != 1 or traces_after_timing != traces_after_warmup):
        warnings.append(quality.RETRACED)
    if not runner.all_losses_finite:
        warnings.append(quality.NON_FINITE_LOSS)
    if dataset.source == SYNTHETIC:
        warnings.append(quality.SYNTHETIC_DATA)
    if not built.plan.variables:
        warnings.append(quality.NOTHING_TRAINED)
    if not allocator_measured:
        warnings.append(quality.NO_ALLOCATOR_STATS)
    return warnings


def _trace_warnings(trace):
    if trace is None:
        return []
    if "error" in trace:
        return [quality.TRACE_FAILED]
    if not all(check["ok"] for check in trace["checks"].values()):
        return [quality.TRACE_CHECK_FAILED]
    return []


def out_of_memory_record(case, error, dataset):
    """Return the result row of a case that ran out of memory."""
    return {
        "schema_version": SCHEMA_VERSION,
        **case.describe(),
        "fine_tune_at": case.fine_tune_at if case.strategy.name == "frozen-prefix" else None,
        "data_source": dataset.source,
        "status": "out of memory",
        "error": str(error),
    }
