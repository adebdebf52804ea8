"""Benchmark cases: one training step per model, strategy, batch size and device."""

from bench.harness import run_case


def test_train_step(benchmark, case, training_data, timing_settings, record_plan):
    _, plan_text = run_case(benchmark, case, training_data, timing_settings)
    record_plan((case.model, case.strategy.name), plan_text)
