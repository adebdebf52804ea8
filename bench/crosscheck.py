"""Compare pytest-benchmark's median step times with a plain `time.perf_counter` loop.

Usage: pytest bench/ --crosscheck && python -m bench.crosscheck [RESULTS.json] [--tolerance 0.10]

A harness whose figures are far from a plain loop over the same step on the same
machine is measuring itself. With `--crosscheck`, every case times the same
steps in a plain loop right after each pytest-benchmark round, outside it, so
both see the same machine load. This command reads those figures from a results
file (default: the newest), prints both medians per case, and exits with status
1 if any case differs by more than the tolerance.
"""

import argparse
import statistics
import sys

from bench.results import latest_results_file, load_results
from models.errors import ConfigError


def crosscheck(results_path, tolerance):
    """Print one line per case and return True if every case is within `tolerance`."""
    _, benchmarks = load_results(results_path)
    cases = [b for b in benchmarks if b["extra_info"].get("plain_loop_seconds")]
    if not cases:
        raise ConfigError(
            f"results file {results_path!r} has no plain-loop figures; run `pytest bench/ --crosscheck` first"
        )

    print(f"{'case':<48} {'harness':>10} {'plain':>10} {'ratio':>6}  verdict")
    all_within = True
    for benchmark in cases:
        extra = benchmark["extra_info"]
        harness = benchmark["stats"]["median"]
        plain = statistics.median(extra["plain_loop_seconds"])
        ratio = harness / plain
        within = abs(ratio - 1) <= tolerance
        all_within &= within
        print(f"{extra['case_id']:<48} {harness * 1e6:>8.0f}us {plain * 1e6:>8.0f}us "
              f"{ratio:>6.3f}  {'ok' if within else 'OUTSIDE'}")
    return all_within


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.crosscheck", description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="?", help="pytest-benchmark JSON file (default: newest run)")
    parser.add_argument(
        "--tolerance", type=float, default=0.10,
        help="largest accepted relative difference of the medians (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    if not 0 < args.tolerance < 1:
        parser.error(f"--tolerance={args.tolerance} is invalid; give a fraction such as 0.10")
    try:
        results_path = args.results or latest_results_file()
        print(f"results: {results_path}")
        return 0 if crosscheck(results_path, args.tolerance) else 1
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
