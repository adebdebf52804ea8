"""The regression gate: decision rule, normalization, structure checks, and end to end."""

import os
import subprocess
import sys

import numpy as np
import pytest

from bench.gate.decision import FASTER, NOT_CONFIRMED, OK, REGRESSION, SUSPECTED, compare, confirm
from bench.gate.evaluate import resolve_suspects, structural_failures, suspected_cases, timing_comparisons
from bench.gate.runs import CaseRun, GateRun, read_baseline
from models.errors import ConfigError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STRUCTURE = {
    "full": {"optimized_matmul_count": 8, "trained_variable_count": 6, "optimizer_slot_count": 0, "tracing_count": 1},
    "frozen-prefix": {"optimized_matmul_count": 6, "trained_variable_count": 4, "optimizer_slot_count": 0, "tracing_count": 1},
    "dense2-only": {"optimized_matmul_count": 5, "trained_variable_count": 2, "optimizer_slot_count": 0, "tracing_count": 1},
}


def samples(median, noise, seed, count=40):
    rng = np.random.default_rng(seed)
    return list(median * (1 + noise * rng.standard_normal(count)))


def test_large_slowdown_is_suspected():
    row = compare("case", samples(1.0, 0.02, 1), samples(1.3, 0.02, 2))
    assert row.verdict == SUSPECTED
    assert row.change == pytest.approx(0.3, abs=0.02)


def test_small_change_passes():
    assert compare("case", samples(1.0, 0.02, 1), samples(1.03, 0.02, 2)).verdict == OK


def test_large_speedup_is_faster():
    assert compare("case", samples(1.0, 0.02, 1), samples(0.7, 0.02, 2)).verdict == FASTER


def test_noisy_slowdown_not_declared_at_once():
    # 30% slower, but rounds spread far wider than that: a single draw may or may
    # not look significant, and it can only ever be suspected, never a regression.
    row = compare("case", samples(1.0, 0.6, 1, count=12), samples(1.3, 0.6, 2, count=12))
    assert row.verdict in (OK, SUSPECTED)
    assert row.verdict != REGRESSION


def test_suspect_cleared_on_remeasure():
    first = compare("case", samples(1.0, 0.02, 1), samples(1.3, 0.02, 2))
    second = compare("case", samples(1.0, 0.02, 1), samples(1.0, 0.02, 3))
    assert confirm(first, second).verdict == NOT_CONFIRMED


def test_suspect_confirmed_on_remeasure():
    first = compare("case", samples(1.0, 0.02, 1), samples(1.3, 0.02, 2))
    second = compare("case", samples(1.0, 0.02, 1), samples(1.3, 0.02, 3))
    assert confirm(first, second).verdict == REGRESSION


def make_run(step_medians, reference, noise=0.02, seed=0, scale=1.0):
    cases = {}
    for index, (strategy, median) in enumerate(step_medians.items()):
        data = [t * scale for t in samples(median, noise, seed + index)]
        paired = [reference * scale] * len(data)
        cases[f"m-{strategy}-b256-cpu"] = CaseRun(strategy, data, reference * scale,
                                                  dict(STRUCTURE[strategy]), paired)
    return GateRun(cases, "2.21.0", "3.15.1", {})


MEDIANS = {"full": 0.012, "frozen-prefix": 0.008, "dense2-only": 0.007}


def verdicts(rows):
    return {row.name: row.verdict for row in rows}


def test_machine_speed_factor_cancels():
    baseline = make_run(MEDIANS, 0.05, seed=0)
    same_speed = make_run(MEDIANS, 0.05, seed=10)
    slower_machine = make_run(MEDIANS, 0.05, seed=10, scale=2.5)
    assert verdicts(timing_comparisons(baseline, same_speed, 0.15, 0.01)) == verdicts(
        timing_comparisons(baseline, slower_machine, 0.15, 0.01)
    )


def test_slower_machine_passes():
    baseline = make_run(MEDIANS, 0.05, seed=0)
    slower_machine = make_run(MEDIANS, 0.05, seed=10, scale=2.5)
    rows = timing_comparisons(baseline, slower_machine, 0.15, 0.01)
    assert all(row.verdict in (OK, FASTER) for row in rows), verdicts(rows)


def test_one_slow_strategy_is_suspected():
    baseline = make_run(MEDIANS, 0.05, seed=0)
    slowed = make_run(dict(MEDIANS, **{"dense2-only": 0.007 * 1.3}), 0.05, seed=10)
    rows = timing_comparisons(baseline, slowed, 0.15, 0.01)
    assert suspected_cases(rows) == ["m-dense2-only-b256-cpu", "m-full-b256-cpu"]


def test_resolve_keeps_unsuspected_rows():
    baseline = make_run(MEDIANS, 0.05, seed=0)
    slowed = make_run(dict(MEDIANS, **{"dense2-only": 0.007 * 1.3}), 0.05, seed=10)
    first = timing_comparisons(baseline, slowed, 0.15, 0.01)
    second = timing_comparisons(baseline, make_run(MEDIANS, 0.05, seed=20), 0.15, 0.01)
    resolved = verdicts(resolve_suspects(first, second))
    assert resolved["m-dense2-only-b256-cpu / reference"] == NOT_CONFIRMED
    assert resolved["m-full-b256-cpu / reference"] == OK


def test_structure_matches_baseline():
    assert structural_failures(make_run(MEDIANS, 0.05), make_run(MEDIANS, 0.05)) == []


def test_structure_catches_unfrozen_layer():
    # frozen-prefix that silently trains dense1 again: two more variables, full's MatMuls.
    run = make_run(MEDIANS, 0.05)
    run.cases["m-frozen-prefix-b256-cpu"].structure.update(
        optimized_matmul_count=8, trained_variable_count=6
    )
    failures = structural_failures(run, make_run(MEDIANS, 0.05))
    assert any("trained_variable_count is 6, baseline 4" in failure for failure in failures)
    assert any("optimized_matmul_count is 8, baseline 6" in failure for failure in failures)


def test_structure_invariants_without_baseline():
    run = make_run(MEDIANS, 0.05)
    run.cases["m-dense2-only-b256-cpu"].structure["optimized_matmul_count"] = 6
    failures = structural_failures(run)
    assert failures == ["optimized MatMul count of dense2-only (6) is not below frozen-prefix's (6)"]


def test_structure_catches_retrace():
    run = make_run(MEDIANS, 0.05)
    run.cases["m-full-b256-cpu"].structure["tracing_count"] = 2
    assert structural_failures(run) == ["m-full-b256-cpu: traced 2 times, expected once"]


def test_real_structure_of_unfrozen_layer():
    # The same facts, from real steps: frozen-prefix with dense1 made trainable.
    from bench.harness import Case, build_case, describe_structure
    from models.datasets import synthetic_dataset
    from models.strategies import parse_strategy

    dataset = synthetic_dataset(8)
    frozen = build_case(Case("mlp-sequential", parse_strategy("frozen-prefix"), 8, "cpu", 2, "sgd"), dataset)
    leaky = build_case(Case("mlp-sequential", parse_strategy("frozen-prefix"), 8, "cpu", 1, "sgd"), dataset)
    frozen.train_step(frozen.images, frozen.labels)
    leaky.train_step(leaky.images, leaky.labels)
    assert describe_structure(frozen)["optimized_matmul_count"] == 6
    assert describe_structure(leaky)["optimized_matmul_count"] == 8
    assert describe_structure(leaky)["trained_variable_count"] == 6


def run_gate(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "bench.gate", *args], cwd=REPO, capture_output=True, text=True,
        timeout=900, env=dict(os.environ, **(env or {})),
    )


@pytest.fixture(scope="module")
def recorded_baseline(tmp_path_factory):
    path = tmp_path_factory.mktemp("gate") / "baseline.json"
    result = run_gate("--record", "--baseline", str(path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return path


@pytest.mark.slow
def test_gate_passes_unchanged_code(recorded_baseline):
    result = run_gate("--baseline", str(recorded_baseline))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "gate: passed" in result.stdout


@pytest.mark.slow
def test_gate_fails_injected_slowdown(recorded_baseline):
    slow = {"FREEZEBENCH_TEST_SLOW_STRATEGY": "dense2-only", "FREEZEBENCH_TEST_SLOW_ELEMENTS": "600000"}
    result = run_gate("--baseline", str(recorded_baseline), "--", "-p", "tests.plugins.slow_step", env=slow)
    assert result.returncode == 1, result.stdout[-3000:]
    assert "mlp-sequential-dense2-only-b256-cpu / reference" in result.stdout
    assert REGRESSION in result.stdout
    assert "structural checks: passed" in result.stdout


def test_gate_warns_without_baseline(tmp_path):
    # No timing comparison is possible, but structural invariants still run.
    result = run_gate("--baseline", str(tmp_path / "missing.json"))
    assert result.returncode == 0, result.stdout[-3000:]
    assert "WARNING: no baseline at" in result.stdout
    assert "structural checks: passed" in result.stdout


def test_corrupt_baseline_rejected(tmp_path):
    path = tmp_path / "corrupt.json"
    path.write_text("{")
    with pytest.raises(ConfigError, match="is not a valid gate baseline"):
        read_baseline(str(path))
