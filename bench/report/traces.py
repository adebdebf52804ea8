"""Markdown of the report's profiler section: where the time of a step goes."""

import os

from bench import breakdown
from bench.trace_checks import check_backward_matmuls_decrease

# How many removed or shrunk ops the report lists per strategy.
TOP_SAVINGS = 8

TRACE_LEGEND = [
    ("op time", "summed self time of the TensorFlow ops of one profiled step, in ms, averaged over "
     "a few profiled steps run after the timed rounds, so it is noisier than the median step. "
     "Ops on parallel threads add up, so it can exceed the step time."),
    ("forward, backward, optimizer, other", "op time by name scope: `gradient_tape/` is backward, "
     "the optimizer's scope (`sgd/`, `adam/`) is optimizer, top-level ops such as the optimizer's "
     "`iterations` increment are other, and the rest is forward."),
    ("saved vs full", "op time of `full` at the same batch minus this row's, in ms per step."),
    ("checks", "structural checks of the trace: no gradient ops for frozen layers, and no "
     "optimizer updates outside the trained layers."),
]


def _check_cell(row):
    failed = [name for name, check in row.trace.get("checks", {}).items() if not check["ok"]]
    if failed:
        return "FAILED: " + ", ".join(failed)
    return "ok" if row.trace.get("checks") else "-"


def _phase_lines(table, full_by_batch):
    lines = [
        "| strategy | batch | op time | forward | backward | optimizer | other | saved vs full | checks |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for row in table.rows:
        if not row.has_trace:
            continue
        phases = row.trace["phase_ms_per_step"]
        full = full_by_batch.get(row.batch_size)
        saved = "-"
        if full is not None and full is not row:
            saved = f"{breakdown.compare_to_full(full.trace, row.trace)['saved_ms_per_step']:.3f}"
        lines.append(
            f"| {row.strategy} | {row.batch_size} | {row.trace['op_time_ms_per_step']:.3f} "
            + "".join(f"| {phases.get(phase, 0.0):.3f} " for phase in breakdown.PHASES)
            + f"| {saved} | {_check_cell(row)} |"
        )
    return lines


def _savings_lines(table, full_by_batch):
    lines = [
        "",
        "Ops that a strategy removed or shrank, against `full` at the same batch (ms per step):",
        "",
        "| strategy | batch | op | type | phase | full | this | saved |",
        "|---|---:|---|---|---|---:|---:|---:|",
    ]
    for row in table.rows:
        full = full_by_batch.get(row.batch_size)
        if not row.has_trace or full is None or full is row:
            continue
        comparison = breakdown.compare_to_full(full.trace, row.trace)
        savings = sorted(comparison["removed"] + comparison["shrunk"], key=lambda op: -op["saved_ms_per_step"])
        for op in savings[:TOP_SAVINGS]:
            state = "removed" if op["ms_per_step"] == 0 else "shrunk"
            lines.append(
                f"| {row.strategy} | {row.batch_size} | `{op['op']}` ({state}) | {op['type']} "
                f"| {op['phase']} | {op['full_ms_per_step']:.3f} | {op['ms_per_step']:.3f} "
                f"| {op['saved_ms_per_step']:.3f} |"
            )
    return lines


def _matmul_check_lines(table):
    lines = []
    for batch in sorted({row.batch_size for row in table.rows if row.has_trace}):
        summaries = [(row.strategy, row.trace) for row in table.rows if row.batch_size == batch and row.has_trace]
        if len(summaries) > 1:
            ok, message = check_backward_matmuls_decrease(summaries)
            lines.append(f"- batch {batch}: {'ok' if ok else 'FAILED'}: {message}")
    return ["", "Backward MatMul ops executed per step (must fall as more is frozen):", ""] + lines if lines else []


def _open_lines(table):
    lines = ["", "Open a case's trace in TensorBoard's Profile tab:", ""]
    for row in table.rows:
        logdir = row.trace.get("logdir")
        if logdir:
            lines.append(f"- {row.strategy}, batch {row.batch_size}: "
                         f"`tensorboard --logdir {os.path.relpath(os.path.dirname(logdir))}` (run `{os.path.basename(logdir)}`)")
        elif row.trace.get("error"):
            lines.append(f"- {row.strategy}, batch {row.batch_size}: no trace ({row.trace['error']})")
    return lines


def trace_section_lines(report):
    """Return the "where the time goes" section, or [] when no case carries a trace."""
    tables = [table for table in report.tables if any(row.has_trace or row.trace.get("error") for row in table.rows)]
    if not tables:
        return []

    lines = ["", "## Where the time goes (profiler traces)", ""]
    for table in tables:
        full_by_batch = {row.batch_size: row for row in table.rows if row.strategy == "full" and row.has_trace}
        lines += [f"### {table.model} on {table.device}", ""]
        lines += _phase_lines(table, full_by_batch)
        lines += _savings_lines(table, full_by_batch)
        lines += _matmul_check_lines(table)
        lines += _open_lines(table) + [""]
    lines += ["Columns:", ""] + [f"- **{name}**: {text}" for name, text in TRACE_LEGEND]
    return lines
