"""The pytest options of `pytest bench/`, parsed and validated into BenchOptions."""

import dataclasses

from bench.devices import DEVICES, check_explicit_request, parse_device
from models.errors import ConfigError
from models.registry import MODEL_BUILDERS, build_model
from models.strategies import (
    DEFAULT_FINE_TUNE_AT,
    DEFAULT_STRATEGIES,
    FROZEN_PREFIX,
    check_fine_tune_at,
    check_layer_names,
    parse_strategy,
)
from models.train_step import DEFAULT_OPTIMIZER, make_optimizer

DEFAULT_BATCH_SIZES = (32, 256)


@dataclasses.dataclass
class BenchOptions:
    """Validated settings of a benchmark run; each list becomes a parametrize axis."""

    models: list
    strategies: list
    batch_sizes: list
    devices: list
    fine_tune_at: int
    optimizer: str
    data_dir: object
    memory_sweep: object = None
    profile_steps: int = 0


def add_options(parser):
    """Register freezebench's options with pytest."""
    group = parser.getgroup("freezebench")
    group.addoption(
        "--models", default=",".join(MODEL_BUILDERS),
        help=f"comma-separated models to benchmark (default: %(default)s)",
    )
    group.addoption(
        "--strategies", default=",".join(DEFAULT_STRATEGIES),
        help="comma-separated strategies: full, frozen-prefix, <layer>[+<layer>...]-only "
        "(default: %(default)s)",
    )
    group.addoption(
        "--batch-sizes", default=",".join(map(str, DEFAULT_BATCH_SIZES)),
        help="comma-separated batch sizes, in samples per step (default: %(default)s)",
    )
    group.addoption(
        "--device", default=",".join(DEVICES),
        help="comma-separated devices, cpu and/or gpu; gpu cases are skipped when "
        "TensorFlow sees no GPU (default: %(default)s)",
    )
    group.addoption(
        "--fine-tune-at", default=str(DEFAULT_FINE_TUNE_AT),
        help="number of leading layers that frozen-prefix freezes, from 0 to the model's "
        "layer count (default: %(default)s)",
    )
    group.addoption(
        "--optimizer", default=DEFAULT_OPTIMIZER,
        help="optimizer of every case: sgd or adam, with Keras defaults (default: %(default)s)",
    )
    group.addoption(
        "--memory-sweep", default=None, metavar="MAX_BATCH",
        help="sweep batch sizes for memory: double from the smallest --batch-sizes value "
        "up to MAX_BATCH samples; cases that run out of memory are recorded, not fatal",
    )
    group.addoption(
        "--profile", action="store_true", default=False,
        help="after each case's timed rounds, capture a TensorBoard profiler trace of a few "
        "more steps under results/traces/<run id>/<case id>/",
    )
    group.addoption(
        "--profile-steps", default="5",
        help="steps per profiler trace, with --profile (default: %(default)s)",
    )
    group.addoption(
        "--paired-reference", action="store_true", default=False,
        help="after every round, time a 512x512 matmul outside the round; the regression "
        "gate divides each round by it to cancel machine load",
    )
    group.addoption(
        "--data-dir", default=None,
        help="folder with the four Fashion-MNIST IDX .gz files; without it, Keras' cache "
        "is used if it holds them, else synthetic data",
    )


def _split(text, option):
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise ConfigError(f"{option}={text!r} is empty; give at least one comma-separated value")
    return items


def _parse_int(text, option, minimum):
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{option}={text!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{option}={value} is invalid; it must be {minimum} or more")
    return value


def parse_options(getoption, physical_gpus=None):
    """Parse and validate the option values that `getoption(name)` returns.

    Raises ConfigError for the first invalid value. Models are built once here so
    that `--fine-tune-at` and layer names are checked against the real layers.
    """
    models = _split(getoption("--models"), "--models")
    strategies = [parse_strategy(name) for name in _split(getoption("--strategies"), "--strategies")]
    batch_sizes = [
        _parse_int(text, "--batch-sizes", minimum=1)
        for text in _split(getoption("--batch-sizes"), "--batch-sizes")
    ]
    devices = [parse_device(name) for name in _split(getoption("--device"), "--device")]
    # A negative value gets the model's full range in its message, below.
    fine_tune_at = _parse_int(getoption("--fine-tune-at"), "--fine-tune-at", minimum=-(2**31))
    optimizer = getoption("--optimizer")
    make_optimizer(optimizer)

    for name in models:
        model = build_model(name)
        if any(spec.name == FROZEN_PREFIX for spec in strategies):
            check_fine_tune_at(fine_tune_at, model)
        for spec in strategies:
            check_layer_names(spec.layers, model)

    memory_sweep = getoption("--memory-sweep")
    if memory_sweep is not None:
        memory_sweep = _parse_int(memory_sweep, "--memory-sweep", minimum=min(batch_sizes))
        batch_sizes = sweep_batch_sizes(min(batch_sizes), memory_sweep)

    profile_steps = _parse_int(getoption("--profile-steps"), "--profile-steps", minimum=1)
    if not getoption("--profile"):
        profile_steps = 0

    check_explicit_request(devices, physical_gpus)
    return BenchOptions(
        models, strategies, batch_sizes, devices, fine_tune_at, optimizer,
        getoption("--data-dir"), memory_sweep, profile_steps,
    )


def sweep_batch_sizes(smallest, largest):
    """Return batch sizes doubling from `smallest`, ending with `largest`."""
    sizes = []
    size = smallest
    while size < largest:
        sizes.append(size)
        size *= 2
    sizes.append(largest)
    return sizes
