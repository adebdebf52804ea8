"""pytest configuration of the benchmark suite: options, defaults, case parametrization."""

# CPU allocator statistics need an environment variable set before TensorFlow
# is first imported, so this comes before every import that loads TensorFlow.
from bench.memory import enable_cpu_allocator_stats

ALLOCATOR_STATUS = enable_cpu_allocator_stats()

import datetime  # noqa: E402
import os  # noqa: E402

import pytest  # noqa: E402
from pytest_benchmark.utils import get_tag  # noqa: E402

from bench.devices import skip_reason  # noqa: E402
from bench.harness import Case, TimingSettings  # noqa: E402
from bench.options import add_options, parse_options  # noqa: E402
from bench.results import STORAGE_DIR, TRACES_DIR  # noqa: E402
from bench.precision import precision_skip_reason  # noqa: E402
from models.registry import SPARSE_LABELS, model_spec, training_data  # noqa: E402
from models.errors import ConfigError  # noqa: E402

# A round of at least 20 ms contains several steps of the small MLP cases, so the
# per-round host read and Python dispatch are a small share of it. pytest-benchmark's
# own default (5 us) would give one-step rounds.
DEFAULT_ROUND_TARGET = 0.02


def pytest_addoption(parser):
    add_options(parser)


def _given(config, flag):
    """Return True if `flag` was on the command line, in either `--flag value` or `--flag=value` form."""
    return any(arg == flag or arg.startswith(flag + "=") for arg in config.invocation_params.args)


def pytest_configure(config):
    # This runs before pytest-benchmark's own pytest_configure (a trylast hook),
    # so defaults changed here reach its session.
    if not _given(config, "--benchmark-storage"):
        config.option.benchmark_storage = "file://" + STORAGE_DIR
    if not (_given(config, "--benchmark-save") or config.option.benchmark_disable):
        # What --benchmark-autosave stores: the tag names the commit and time.
        config.option.benchmark_autosave = get_tag()
    # Raw round times let the report test whether two strategies really differ.
    config.option.benchmark_save_data = True
    if "s" not in config.option.reportchars and "a" not in config.option.reportchars:
        config.option.reportchars += "s"

    try:
        options = parse_options(config.getoption)
        datasets = load_datasets(options)
    except ConfigError as error:
        raise pytest.UsageError(str(error)) from None

    # Traces of one run share a folder, so `tensorboard --logdir` on it lists
    # every case as a run of its own. The folder is created only by a capture.
    run_id = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    config.freezebench_trace_dir = os.path.join(TRACES_DIR, run_id) if options.profile_steps else None
    config.freezebench_options = options
    config.freezebench_datasets = datasets
    config.freezebench_plans = {}
    config.freezebench_failed_cases = []
    config.freezebench_trace_problems = []


def load_datasets(options):
    """Return each model's training data, by model name, large enough for its largest batch."""
    datasets = {}
    for plan in options.models:
        spec = model_spec(plan.name, **dict(plan.options))
        # Only the MLPs read Fashion-MNIST files; the image model uses synthetic images.
        data_dir = options.data_dir if spec.label_kind == SPARSE_LABELS else None
        datasets[plan.name] = training_data(spec, data_dir, min_samples=max(plan.batch_sizes))
    return datasets


def pytest_generate_tests(metafunc):
    if "case" not in metafunc.fixturenames:
        return

    options = metafunc.config.freezebench_options
    params = []
    for plan, spec, batch_size, fine_tune_at, device, compile_mode, precision in options.case_parameters():
        case = Case(plan.name, spec, batch_size, device, fine_tune_at, options.optimizer,
                    compile_mode, precision, plan.options)
        reason = skip_reason(device) or precision_skip_reason(precision, device)
        marks = [pytest.mark.skip(reason=reason)] if reason else []
        params.append(pytest.param(case, id=case.id, marks=marks))
    metafunc.parametrize("case", params)


@pytest.fixture
def case_dataset(pytestconfig, case):
    return pytestconfig.freezebench_datasets[case.model]


@pytest.fixture(scope="session")
def allocator_status():
    return ALLOCATOR_STATUS


@pytest.fixture
def record_failed_case(pytestconfig):
    """Keep a result row for a case that could not be timed, such as one out of memory."""
    return pytestconfig.freezebench_failed_cases.append


@pytest.fixture
def record_trace_problem(pytestconfig):
    """Keep a profiler error or warning (such as a GPU trace without CUPTI) for the terminal summary."""
    return pytestconfig.freezebench_trace_problems.append


@pytest.fixture(scope="session")
def timing_settings(pytestconfig):
    round_target = DEFAULT_ROUND_TARGET
    if _given(pytestconfig, "--benchmark-min-time"):
        round_target = float(pytestconfig.getoption("benchmark_min_time"))
    return TimingSettings(
        round_target=round_target,
        max_time=float(pytestconfig.getoption("benchmark_max_time")),
        min_rounds=int(pytestconfig.getoption("benchmark_min_rounds")),
        paired_reference=pytestconfig.getoption("--paired-reference"),
        crosscheck=pytestconfig.getoption("--crosscheck"),
        profile_steps=pytestconfig.freezebench_options.profile_steps,
        trace_dir=pytestconfig.freezebench_trace_dir,
    )


@pytest.fixture
def record_plan(pytestconfig):
    """Store a strategy's layer table for the terminal summary."""

    def record(key, text):
        pytestconfig.freezebench_plans[key] = text

    return record


def pytest_benchmark_update_json(config, benchmarks, output_json):
    # pytest-benchmark stores only cases with timings; failed cases go beside them
    # in the same file, so a sweep keeps both its results and its failures.
    output_json["freezebench_failed_cases"] = getattr(config, "freezebench_failed_cases", [])


def pytest_terminal_summary(terminalreporter, config):
    datasets = getattr(config, "freezebench_datasets", {})
    plans = getattr(config, "freezebench_plans", {})
    if not plans:
        return

    terminalreporter.section("freezebench: what each strategy trains")
    for text in plans.values():
        terminalreporter.write_line(text)
    for name, dataset in datasets.items():
        terminalreporter.write_line(f"data of {name}: {dataset.source} ({dataset.detail})")
    problems = getattr(config, "freezebench_trace_problems", [])
    if problems:
        terminalreporter.section("freezebench: profiler warnings (timings are kept)")
        for problem in problems:
            terminalreporter.write_line(f"WARNING: {problem}")

    trace_dir = config.freezebench_trace_dir
    if trace_dir and os.path.isdir(trace_dir):
        terminalreporter.write_line(f"traces: tensorboard --logdir {os.path.relpath(trace_dir)}")
