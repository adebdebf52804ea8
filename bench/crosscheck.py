"""Compare pytest-benchmark's median step times with a plain `time.perf_counter` loop.

Usage: python -m bench.crosscheck [RESULTS.json] [--tolerance 0.10]

A harness whose figures are far from a plain loop over the same step on the same
machine is measuring itself. For every CPU case in the results file (default: the
newest), this rebuilds the same model, strategy, optimizer and batch, warms the
step up, then times REPETITIONS runs of a plain loop that ends with one host read
of the loss. It compares the median of those repetitions with the stored median
and exits with status 1 if any case differs by more than the tolerance.
"""

import argparse
import statistics
import sys
import time

from bench.harness import Case, build_case
from bench.results import latest_results_file, load_results
from bench.timing import warm_up
from models.errors import ConfigError
from models.registry import model_spec, training_data
from models.strategies import parse_strategy

REPETITIONS = 7
# Each repetition runs at least this long, so a single preempted step barely moves it.
MIN_REPETITION_SECONDS = 0.3


def plain_loop_seconds(train_step, images, labels, steps):
    """Return the mean seconds per step of `steps` back-to-back calls, ending with a host read."""
    start = time.perf_counter()
    for _ in range(steps):
        loss = train_step(images, labels)
    loss.numpy()
    return (time.perf_counter() - start) / steps


def case_from_result(extra):
    """Return the harness Case that a stored result describes."""
    return Case(
        extra["model"], parse_strategy(extra["strategy"]), extra["batch_size"], "cpu",
        extra["fine_tune_at"], extra["optimizer"], extra.get("compile_mode", "graph"),
        extra.get("precision", "float32"), tuple(sorted(extra.get("model_options", {}).items())),
    )


def time_plain_loop(extra, dataset):
    """Rebuild the case described by `extra` and return per-step seconds of each repetition."""
    built = build_case(case_from_result(extra), dataset)
    warm_up(built.train_step, built.images, built.labels)
    estimate = plain_loop_seconds(built.train_step, built.images, built.labels, steps=10)
    steps = max(10, int(MIN_REPETITION_SECONDS / estimate))
    return [plain_loop_seconds(built.train_step, built.images, built.labels, steps) for _ in range(REPETITIONS)]


def crosscheck(results_path, tolerance):
    """Print one line per CPU case and return True if every case is within `tolerance`."""
    _, benchmarks = load_results(results_path)
    cases = [b for b in benchmarks if b["extra_info"]["device"] == "cpu"]
    if not cases:
        raise ConfigError(f"results file {results_path!r} holds no CPU cases to check")

    datasets = {}

    print(f"{'case':<48} {'harness':>10} {'plain':>10} {'best':>10} {'ratio':>6}  verdict")
    all_within = True
    for benchmark in cases:
        extra = benchmark["extra_info"]
        if extra["model"] not in datasets:
            spec = model_spec(extra["model"], **extra.get("model_options", {}))
            datasets[extra["model"]] = training_data(spec, min_samples=max(b["extra_info"]["batch_size"] for b in cases))
        repetitions = time_plain_loop(extra, datasets[extra["model"]])
        plain = statistics.median(repetitions)
        harness = benchmark["stats"]["median"]
        ratio = harness / plain
        within = abs(ratio - 1) <= tolerance
        all_within &= within
        case = extra.get("case_id", extra["strategy"])
        print(
            f"{case:<48} {harness * 1e6:>8.0f}us {plain * 1e6:>8.0f}us "
            f"{min(repetitions) * 1e6:>8.0f}us {ratio:>6.3f}  {'ok' if within else 'OUTSIDE'}"
        )
    return all_within


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.crosscheck", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", help="pytest-benchmark JSON file (default: newest run)")
    parser.add_argument(
        "--tolerance", type=float, default=0.10,
        help="largest accepted relative difference of the medians (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    try:
        results_path = args.results or latest_results_file()
        print(f"results: {results_path}; plain loop: median of {REPETITIONS} repetitions")
        return 0 if crosscheck(results_path, args.tolerance) else 1
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
