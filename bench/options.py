"""The pytest options of `pytest bench/`, parsed and validated into BenchOptions.

List options take comma-separated values. Options left unset take each model's
own defaults: the MLPs run full, frozen-prefix and dense2-only at batch 32 and
256 with fine_tune_at=2; mobilenetv2 runs full, frozen-prefix (fine_tune_at=100),
base-frozen and head-only at batch 32.
"""

import dataclasses
import itertools

from bench.devices import DEVICES, check_explicit_request, parse_device, skip_reason
from bench.precision import (
    COMPILE_MODES,
    PRECISIONS,
    parse_compile_mode,
    parse_precision,
    precision_skip_reason,
)
from models.errors import ConfigError
from models.registry import DEFAULT_MODELS, MODEL_NAMES, model_spec
from models.strategies import FROZEN_PREFIX, check_strategy, parse_strategy
from models.train_step import DEFAULT_OPTIMIZER, make_optimizer

# Per-model defaults for options left unset.
DEFAULT_STRATEGIES = {
    "mobilenetv2": ("full", "frozen-prefix", "base-frozen", "head-only"),
}
MLP_STRATEGIES = ("full", "frozen-prefix", "dense2-only")
DEFAULT_BATCH_SIZES = {"mobilenetv2": (32,)}
MLP_BATCH_SIZES = (32, 256)
# --fine-tune-sweep: every 25 layers of MobileNetV2's base plus both ends; every
# layer boundary of the 4-layer MLP.
SWEEP_STEP = 25
WEIGHTS_CHOICES = ("auto", "none")


@dataclasses.dataclass
class ModelPlan:
    """The validated settings of one model: its strategies, batch sizes and fine_tune_at values."""

    name: str
    options: tuple
    strategies: list
    batch_sizes: list
    fine_tune_ats: list


@dataclasses.dataclass
class BenchOptions:
    """Validated settings of a benchmark run; `cases()` expands them into Case parameters."""

    models: list
    devices: list
    optimizer: str
    compile_modes: list
    precisions: list
    data_dir: object
    memory_sweep: object = None
    profile_steps: int = 0

    @property
    def max_batch_size(self):
        return max(size for plan in self.models for size in plan.batch_sizes)

    def case_parameters(self):
        """Yield (model plan, strategy, batch size, fine_tune_at, device, compile mode, precision)."""
        for plan in self.models:
            for spec, batch_size, device, compile_mode, precision in itertools.product(
                plan.strategies, plan.batch_sizes, self.devices, self.compile_modes, self.precisions
            ):
                fine_tune_ats = plan.fine_tune_ats if spec.name == FROZEN_PREFIX else [None]
                for fine_tune_at in fine_tune_ats:
                    yield plan, spec, batch_size, fine_tune_at, device, compile_mode, precision


def add_options(parser):
    """Register freezebench's options with pytest."""
    group = parser.getgroup("freezebench")
    group.addoption("--models", default=",".join(DEFAULT_MODELS),
                    help=f"comma-separated models: {', '.join(MODEL_NAMES)} (default: %(default)s)")
    group.addoption("--strategies", default=None,
                    help="comma-separated strategies: full, frozen-prefix, base-frozen, "
                    "<layer>[+<layer>...]-only (default: per model)")
    group.addoption("--batch-sizes", default=None,
                    help="comma-separated batch sizes, in samples per step (default: 32,256 for "
                    "the MLPs, 32 for mobilenetv2)")
    group.addoption("--device", default=",".join(DEVICES),
                    help="comma-separated devices, cpu and/or gpu; gpu cases are skipped when "
                    "TensorFlow sees no GPU (default: %(default)s)")
    group.addoption("--fine-tune-at", default=None,
                    help="comma-separated numbers of leading layers that frozen-prefix freezes, "
                    "counted in the base for mobilenetv2 (default: 2 for the MLPs, 100 for mobilenetv2)")
    group.addoption("--fine-tune-sweep", action="store_true", default=False,
                    help="run frozen-prefix at every fine_tune_at of the MLPs, and every 25 base "
                    "layers of mobilenetv2 plus both ends")

    group.addoption("--optimizer", default=DEFAULT_OPTIMIZER,
                    help="optimizer of every case: sgd or adam, with Keras defaults (default: %(default)s)")
    group.addoption("--compile-mode", default="graph",
                    help=f"comma-separated: {', '.join(COMPILE_MODES)}; eager runs the Python step, "
                    "graph wraps it in tf.function, xla adds jit_compile=True (default: %(default)s)")
    group.addoption("--precision", default="float32",
                    help=f"comma-separated Keras dtype policies: {', '.join(PRECISIONS)}; "
                    "mixed_float16 runs on GPU only (default: %(default)s)")
    group.addoption("--image-size", default="96",
                    help="mobilenetv2 input size in pixels per side, at least 32 (default: %(default)s)")
    group.addoption("--weights", default="auto",
                    help="mobilenetv2 base weights: auto (ImageNet if its file is in Keras' cache, "
                    "else random) or none (default: %(default)s)")

    group.addoption("--memory-sweep", default=None, metavar="MAX_BATCH",
                    help="sweep batch sizes for memory: double from the smallest batch size up to "
                    "MAX_BATCH samples; cases that run out of memory are recorded, not fatal")
    group.addoption("--profile", action="store_true", default=False,
                    help="after each case's timed rounds, capture a TensorBoard profiler trace of a "
                    "few more steps under results/traces/<run id>/<case id>/")
    group.addoption("--profile-steps", default="5",
                    help="steps per profiler trace, with --profile (default: %(default)s)")
    group.addoption("--paired-reference", action="store_true", default=False,
                    help="after every round, time a 512x512 matmul outside the round; the regression "
                    "gate divides each round by it to cancel machine load")

    group.addoption("--crosscheck", action="store_true", default=False,
                    help="after every round, time the same steps in a plain time.perf_counter loop; "
                    "`python -m bench.crosscheck` compares the two medians")
    group.addoption("--data-dir", default=None,
                    help="folder with the four Fashion-MNIST IDX .gz files; without it, Keras' cache "
                    "is used if it holds them, else synthetic data")


def _split(text, option):
    items = [item.strip() for item in text.split(",")]
    if not any(items):
        raise ConfigError(f"{option}={text!r} is empty; give at least one comma-separated value")
    if not all(items):
        raise ConfigError(f"{option}={text!r} has an empty item; separate values with single commas")
    if len(set(items)) != len(items):
        raise ConfigError(f"{option}={text!r} repeats a value; give each value once")
    return items


def _parse_int(text, option, minimum):
    try:
        value = int(text)
    except ValueError:
        raise ConfigError(f"{option}={text!r} is not an integer") from None
    if value < minimum:
        raise ConfigError(f"{option}={value} is invalid; it must be {minimum} or more")
    return value


def _int_list(text, option, minimum):
    return [_parse_int(item, option, minimum) for item in _split(text, option)]


def sweep_fine_tune_ats(layer_count):
    """Return fine_tune_at values for a sweep: 0 to `layer_count` in steps of 25 (every value below 25 layers)."""
    step = SWEEP_STEP if layer_count > SWEEP_STEP else 1
    return sorted(set(range(0, layer_count, step)) | {layer_count})


def sweep_batch_sizes(smallest, largest):
    """Return batch sizes doubling from `smallest`, ending with `largest`."""
    sizes = []
    size = smallest
    while size < largest:
        sizes.append(size)
        size *= 2
    sizes.append(largest)
    return sizes


def _model_options(name, getoption):
    if name != "mobilenetv2":
        return ()
    image_size = _parse_int(getoption("--image-size"), "--image-size", minimum=32)
    weights = getoption("--weights")
    if weights not in WEIGHTS_CHOICES:
        raise ConfigError(f"--weights={weights!r} is invalid; valid values: {', '.join(WEIGHTS_CHOICES)}")
    return (("image_size", image_size), ("weights", "imagenet" if weights == "auto" else None))


def _model_plan(name, getoption):
    """Return the ModelPlan of model `name`, checking every strategy on a built model."""
    options = _model_options(name, getoption)
    spec = model_spec(name, **dict(options))
    model = spec.build()

    strategies_text = getoption("--strategies")
    if strategies_text is None:
        strategies_text = ",".join(DEFAULT_STRATEGIES.get(name, MLP_STRATEGIES))
    strategies = [parse_strategy(text) for text in _split(strategies_text, "--strategies")]

    batch_text = getoption("--batch-sizes")
    batch_sizes = (_int_list(batch_text, "--batch-sizes", minimum=1) if batch_text is not None
                   else list(DEFAULT_BATCH_SIZES.get(name, MLP_BATCH_SIZES)))

    fine_tune_text = getoption("--fine-tune-at")
    # A negative value is let through here, so that check_strategy's message
    # names the model's full range.
    fine_tune_ats = (_int_list(fine_tune_text, "--fine-tune-at", minimum=-(2**31)) if fine_tune_text is not None
                     else [spec.default_fine_tune_at])
    if getoption("--fine-tune-sweep"):
        fine_tune_ats = sweep_fine_tune_ats(spec.fine_tune_layer_count)

    for strategy in strategies:
        for fine_tune_at in fine_tune_ats:
            try:
                check_strategy(strategy, model, fine_tune_at)
            except ConfigError as error:
                # The message names the Keras model; this names the --models value too.
                raise ConfigError(f"--models={name}: {error}") from None
    return ModelPlan(name, options, strategies, batch_sizes, fine_tune_ats)


def _check_precisions_can_run(precisions, devices, physical_gpus):
    """Raise ConfigError when no requested precision can run on any requested device that exists."""
    usable = [d for d in devices if skip_reason(d, physical_gpus) is None]
    if usable and all(precision_skip_reason(p, d) for p in precisions for d in usable):
        raise ConfigError(
            f"--precision={','.join(precisions)} cannot run on --device={','.join(usable)}: "
            f"{precision_skip_reason(precisions[0], usable[0])}"
        )


def parse_options(getoption, physical_gpus=None):
    """Parse and validate the option values that `getoption(name)` returns.

    Raises ConfigError for the first invalid value. Each model is built once here
    so that fine_tune_at values and layer names are checked against real layers.
    """
    names = _split(getoption("--models"), "--models")
    devices = [parse_device(name) for name in _split(getoption("--device"), "--device")]
    compile_modes = [parse_compile_mode(m) for m in _split(getoption("--compile-mode"), "--compile-mode")]
    precisions = [parse_precision(p) for p in _split(getoption("--precision"), "--precision")]
    optimizer = getoption("--optimizer")
    make_optimizer(optimizer)
    models = [_model_plan(name, getoption) for name in names]

    memory_sweep = getoption("--memory-sweep")
    if memory_sweep is not None:
        smallest = min(size for plan in models for size in plan.batch_sizes)
        memory_sweep = _parse_int(memory_sweep, "--memory-sweep", minimum=1)
        if memory_sweep < smallest:
            raise ConfigError(
                f"--memory-sweep={memory_sweep} is below the smallest batch size ({smallest}), where "
                "the sweep starts; give a larger maximum or a smaller --batch-sizes"
            )
        for plan in models:
            plan.batch_sizes = sweep_batch_sizes(min(plan.batch_sizes), memory_sweep)

    profile_steps = _parse_int(getoption("--profile-steps"), "--profile-steps", minimum=1)
    if not getoption("--profile"):
        profile_steps = 0

    check_explicit_request(devices, physical_gpus)
    _check_precisions_can_run(precisions, devices, physical_gpus)
    return BenchOptions(models, devices, optimizer, compile_modes, precisions,
                        getoption("--data-dir"), memory_sweep, profile_steps)
