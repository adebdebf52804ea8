"""Benchmark cases: one training step per model, strategy, batch size and device."""

import pytest

from bench.harness import OutOfMemory, out_of_memory_record, run_case


def test_train_step(benchmark, case, case_dataset, timing_settings, allocator_status,
                    record_plan, record_failed_case, record_trace_problem):
    try:
        extra_info, plan_text = run_case(benchmark, case, case_dataset, timing_settings, allocator_status)
    except OutOfMemory as error:
        # An out-of-memory case is a result of a memory sweep, not a failure of
        # the run: it is recorded, and the next case still runs.
        record_failed_case(out_of_memory_record(case, error, case_dataset))
        pytest.skip(f"out of memory at batch {case.batch_size}: {error}")
    record_plan((case.model, case.strategy.name, case.fine_tune_at), plan_text)

    trace = extra_info["trace"] or {}
    for problem in [trace.get("error")] + trace.get("capture_warnings", []):
        if problem:
            record_trace_problem(f"{case.id}: {problem}")
