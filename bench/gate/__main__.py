"""Run the regression gate: a short fixed benchmark run compared with a committed baseline.

Usage:
  python -m bench.gate                  compare with results/baselines/gate-cpu.json
  python -m bench.gate --record         measure and write the baseline
  python -m bench.gate -- -p PLUGIN     pass further arguments to pytest

Exit status: 0 when nothing regressed, 1 on a confirmed regression or a
structural mismatch, 2 on invalid input (a corrupt baseline, a failed run).
"""

import argparse
import sys

from bench.gate.decision import DEFAULT_ALPHA, DEFAULT_THRESHOLD, REGRESSION
from bench.gate.evaluate import (
    merge_runs,
    resolve_suspects,
    structural_failures,
    suspected_cases,
    timing_comparisons,
)
from bench.gate.runs import DEFAULT_BASELINE, check_baseline_path, read_baseline, run_cases, write_baseline
from models.errors import ConfigError


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.gate", description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=DEFAULT_BASELINE, help="baseline file (default: %(default)s)")
    parser.add_argument("--record", action="store_true", help="measure and write the baseline, then stop")
    parser.add_argument(
        "--threshold", type=float, default=DEFAULT_THRESHOLD,
        help="slowdown, as a fraction, above which a significant change fails (default: %(default)s)",
    )
    parser.add_argument(
        "--alpha", type=float, default=DEFAULT_ALPHA,
        help="significance level of the Mann-Whitney U test (default: %(default)s)",
    )
    parser.add_argument(
        "--absolute", action="store_true",
        help="compare seconds instead of reference-normalized times; only for the baseline's own machine",
    )
    parser.add_argument("pytest_args", nargs="*", help="arguments after -- go to pytest")
    args = parser.parse_args(argv)
    if not 0 < args.threshold < 10:
        parser.error(f"--threshold={args.threshold} is invalid; give a fraction such as 0.15")
    if not 0 < args.alpha < 1:
        parser.error(f"--alpha={args.alpha} is invalid; give a probability such as 0.01")
    return args


def format_table(rows):
    """Return the gate table: case, baseline, current, change in %, p-value, verdict."""
    header = f"{'case':<58} {'baseline':>10} {'current':>10} {'change':>8} {'p-value':>9}  verdict"
    lines = [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{row.name:<58} {row.baseline:>10.4g} {row.current:>10.4g} {row.change:>+8.1%} "
            f"{row.p_value:>9.2g}  {row.verdict}"
        )
    return "\n".join(lines)


def baseline_problem(baseline, run, path):
    """Return why timings cannot be compared with `baseline`, or None if they can."""
    if baseline is None:
        return f"no baseline at {path}; record one with `python -m bench.gate --record`"
    if baseline.tensorflow_version != run.tensorflow_version:
        return (
            f"the baseline was recorded with TensorFlow {baseline.tensorflow_version}, this run "
            f"uses {run.tensorflow_version}; record a new baseline with `python -m bench.gate --record`"
        )
    return None


def gate(args):
    """Run the gate and return its exit status."""
    # A bad baseline path is reported before minutes of measuring, not after.
    check_baseline_path(args.baseline, args.record)
    run = run_cases(extra_args=args.pytest_args)
    if args.record:
        write_baseline(run, args.baseline)
        print(f"wrote baseline {args.baseline} ({len(run.cases)} cases)")
        return 0

    baseline = read_baseline(args.baseline)
    problem = baseline_problem(baseline, run, args.baseline)
    failures = structural_failures(run, baseline)
    rows = []
    if problem:
        print(f"WARNING: {problem}. Timings are not compared; structural checks still run.")
    else:
        rows = timing_comparisons(baseline, run, args.threshold, args.alpha, args.absolute)
        suspects = suspected_cases(rows)
        if suspects:
            print(f"suspected regression in {', '.join(suspects)}; measuring them once more")
            rerun = merge_runs(run, run_cases(suspects, args.pytest_args))
            rows = resolve_suspects(
                rows, timing_comparisons(baseline, rerun, args.threshold, args.alpha, args.absolute)
            )

    return report(rows, failures)


def report(rows, failures):
    """Print the table and the structural result; return the exit status."""
    if rows:
        print()
        print(format_table(rows))
    print()
    print("structural checks: " + ("passed" if not failures else "FAILED"))
    for failure in failures:
        print(f"  {failure}")

    regressions = [row for row in rows if row.verdict == REGRESSION]
    if regressions or failures:
        print(f"gate: FAILED ({len(regressions)} timing regressions, {len(failures)} structural failures)")
        return 1
    print("gate: passed")
    return 0


def main(argv=None):
    args = parse_args(argv)
    try:
        return gate(args)
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
