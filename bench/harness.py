"""One benchmark case end to end: build, warm up, check, time, and record.

Each case builds its own model and optimizer, so no case inherits another's
variables or optimizer slots.
"""

import dataclasses

import tensorflow as tf

from bench import quality
from bench.devices import tf_device
from bench.environment import describe_environment
from bench.results import SCHEMA_VERSION
from bench.timing import time_train_step, warm_up
from models.datasets import SYNTHETIC, device_batch
from models.registry import build_model
from models.strategies import apply_strategy, format_plan
from models.train_step import check_updated_variables, make_optimizer, make_train_step


@dataclasses.dataclass(frozen=True)
class Case:
    """The parameters of one benchmark case."""

    model: str
    strategy: object  # a models.strategies.StrategySpec
    batch_size: int
    device: str
    fine_tune_at: int
    optimizer: str

    @property
    def id(self):
        return f"{self.model}-{self.strategy.name}-b{self.batch_size}-{self.device}"


@dataclasses.dataclass
class TimingSettings:
    """pytest-benchmark limits: round target and total time in seconds, minimum rounds."""

    round_target: float
    max_time: float
    min_rounds: int


def run_case(benchmark, case, dataset, settings):
    """Time one case with `benchmark` and return (extra_info, plan text).

    The extra_info is also stored on `benchmark.extra_info`.
    """
    device = tf_device(case.device)
    with tf.device(device):
        model = build_model(case.model)
        plan = apply_strategy(model, case.strategy, case.fine_tune_at)
        optimizer = make_optimizer(case.optimizer)
        train_step = make_train_step(model, plan.variables, optimizer)
        images, labels = device_batch(dataset, case.batch_size, device)

        warmup = warm_up(train_step, images, labels)
        traces_after_warmup = train_step.experimental_get_tracing_count()
        # Checked after tracing because Keras 3 reads the live trainable flags then.
        check_updated_variables(train_step, model, plan, images, labels)

        # pytest-benchmark copies the group when timing starts, so it is set first.
        benchmark.group = f"{case.model} {case.device} batch {case.batch_size}"
        runner, iterations, rounds = time_train_step(
            benchmark, train_step, images, labels,
            settings.round_target, settings.max_time, settings.min_rounds,
        )
        traces_after_timing = train_step.experimental_get_tracing_count()

    stats = benchmark.stats.stats
    warnings = quality.stability_warnings(stats.median, stats.iqr)
    if traces_after_warmup != 1 or traces_after_timing != traces_after_warmup:
        warnings.append(quality.RETRACED)
    if not runner.all_losses_finite:
        warnings.append(quality.NON_FINITE_LOSS)
    if dataset.source == SYNTHETIC:
        warnings.append(quality.SYNTHETIC_DATA)
    if not plan.variables:
        warnings.append(quality.NOTHING_TRAINED)

    extra_info = {
        "schema_version": SCHEMA_VERSION,
        "model": case.model,
        "strategy": case.strategy.name,
        "fine_tune_at": plan.fine_tune_at,
        "train_layers": list(case.strategy.layers),
        "batch_size": case.batch_size,
        "device": case.device,
        "tf_device": device,
        "optimizer": case.optimizer,
        "data_source": dataset.source,
        "data_detail": dataset.detail,
        "trainable_params": plan.trainable_params,
        "non_trainable_params": plan.non_trainable_params,
        "keras_trainable_params": plan.keras_trainable_params,
        "layers": [dataclasses.asdict(layer) for layer in plan.layers],
        "samples_per_second": case.batch_size / stats.median,
        "steps_per_second": 1.0 / stats.median,
        "warmup_seconds": warmup.seconds,
        "warmup_steps": warmup.steps,
        "first_call_seconds": warmup.first_call_seconds,
        "tracing_count": traces_after_timing,
        "iterations_per_round": iterations,
        "final_loss": runner.losses[-1] if runner.losses else warmup.loss,
        "warnings": warnings,
        "environment": describe_environment(),
    }
    benchmark.extra_info.update(extra_info)
    return extra_info, format_plan(case.model, plan)
