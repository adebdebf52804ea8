"""The gate's comparisons: normalized timings, in-run ratios and exact structure facts."""

import statistics

from bench.gate.decision import SUSPECTED, compare, confirm, normalize

BASELINE_STRATEGY = "full"
# Strategies in the order their optimized MatMul counts must fall.
MATMUL_ORDER = ("full", "frozen-prefix", "dense2-only")


def _by_strategy(run):
    return {case.strategy: name for name, case in run.cases.items()}


def _samples(case, absolute):
    return case.data if absolute else case.normalized()


def timing_comparisons(baseline, current, threshold, alpha, absolute=False):
    """Return a Comparison per case (normalized by the reference, or in seconds) and per in-run ratio."""
    rows = []
    common = sorted(set(baseline.cases) & set(current.cases))
    for name in common:
        old, new = baseline.cases[name], current.cases[name]
        if absolute:
            rows.append(compare(f"{name} (s)", old.data, new.data, threshold, alpha, (name,)))
        else:
            rows.append(compare(
                f"{name} / reference", old.normalized(), new.normalized(), threshold, alpha, (name,)
            ))

    old_names, new_names = _by_strategy(baseline), _by_strategy(current)
    full_old, full_new = old_names.get(BASELINE_STRATEGY), new_names.get(BASELINE_STRATEGY)
    if full_old is None or full_new is None:
        return rows
    # Both sides are reference-normalized first, so load that changed between
    # the full case and this one cancels too.
    old_full_median = statistics.median(_samples(baseline.cases[full_old], absolute))
    new_full_median = statistics.median(_samples(current.cases[full_new], absolute))
    for strategy in sorted(set(old_names) & set(new_names) - {BASELINE_STRATEGY}):
        old, new = baseline.cases[old_names[strategy]], current.cases[new_names[strategy]]
        rows.append(compare(
            f"{strategy} / {BASELINE_STRATEGY} (same run)",
            normalize(_samples(old, absolute), old_full_median),
            normalize(_samples(new, absolute), new_full_median),
            threshold, alpha, (new_names[strategy], full_new),
        ))
    return rows


def suspected_cases(rows):
    """Return the sorted case ids that a suspected row needs measured again."""
    return sorted({case for row in rows if row.verdict == SUSPECTED for case in row.cases})


def resolve_suspects(first_rows, second_rows):
    """Replace each suspected row of the first pass with its confirmed or cleared verdict."""
    second_by_name = {row.name: row for row in second_rows}
    resolved = []
    for row in first_rows:
        if row.verdict == SUSPECTED and row.name in second_by_name:
            resolved.append(confirm(row, second_by_name[row.name]))
        else:
            resolved.append(row)
    return resolved


def merge_runs(first, second):
    """Return `first` with the cases that `second` measured again replaced."""
    cases = dict(first.cases)
    cases.update(second.cases)
    return type(first)(cases, first.tensorflow_version, first.keras_version, first.machine)


def structural_failures(current, baseline=None):
    """Return messages for every structure fact that is wrong; empty means all pass.

    Without a baseline, only invariants are checked: each step traced once, and the
    optimized MatMul count falling from full to frozen-prefix to dense2-only. With
    one, every fact must also equal the baseline's exactly.
    """
    failures = []
    for name, case in sorted(current.cases.items()):
        if case.structure["tracing_count"] != 1:
            failures.append(f"{name}: traced {case.structure['tracing_count']} times, expected once")

    names = _by_strategy(current)
    counts = [(s, current.cases[names[s]].structure["optimized_matmul_count"]) for s in MATMUL_ORDER if s in names]
    for (left, left_count), (right, right_count) in zip(counts, counts[1:]):
        if not left_count > right_count:
            failures.append(
                f"optimized MatMul count of {right} ({right_count}) is not below {left}'s ({left_count})"
            )

    if baseline is None:
        return failures
    for name in sorted(set(baseline.cases) | set(current.cases)):
        if name not in current.cases or name not in baseline.cases:
            failures.append(f"{name}: in {'baseline' if name in baseline.cases else 'this run'} only")
            continue
        old, new = baseline.cases[name].structure, current.cases[name].structure
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                failures.append(f"{name}: {key} is {new.get(key)}, baseline {old.get(key)}")
    return failures
