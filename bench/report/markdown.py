"""Render a Report as Markdown."""

import os

from bench import quality
from bench.report.model import ALPHA
from bench.report.sweeps import settings_section_lines, sweep_section_lines
from bench.report.traces import trace_section_lines

_COLUMNS_LEGEND = [
    ("strategy", "which variables the step updates: `full` all, `frozen-prefix` all but the first "
     "`fine_tune_at` layers (of `model.layers`, or of the base for a transfer-learning model), "
     "`base-frozen` the head only with `base.trainable = False`, `<layer>-only` only that layer's."),
    ("batch", "samples per training step."),
    ("median step", "median time of one training step over the timed rounds, in milliseconds."),
    ("samples/s (IQR)", "batch / median step time; in brackets the same at the third and "
     "first quartile of step time."),
    ("speedup vs full", f"median step time of `full` at the same batch over this row's. Shown only "
     f"when a two-sided Mann-Whitney U test on the per-round times gives p < {ALPHA}; "
     "otherwise `n.s.` (not significant), with the p-value. With fewer than 5 rounds per case the "
     "test cannot reach that level, and the ratio is marked `too few rounds to test`."),
    ("trainable params", "parameters the step updates."),
    ("data", "`fashion-mnist` (real files) or `synthetic` (random data of the model's input "
     "shape); the line under each table heading gives the details and the model's weights."),
    ("warnings", "quality warnings attached to the result; see below."),
]


def _speedup_cell(row):
    if row.speedup is None:
        return "baseline" if row.strategy == "full" else "-"
    if row.p_value is not None and not row.testable:
        return f"{row.speedup:.2f}x (too few rounds to test)"
    if row.significant is None:
        return f"{row.speedup:.2f}x (untested)"
    if not row.significant:
        return f"n.s. (p={row.p_value:.2g})"
    return f"{row.speedup:.2f}x"


def _strategy_cell(row):
    label = row.strategy
    if row.fine_tune_at is not None:
        label = f"{row.strategy} (fine_tune_at={row.fine_tune_at})"
    if (row.compile_mode, row.precision) != ("graph", "float32"):
        label += f" [{row.compile_mode}, {row.precision}]"
    return label


def _source_line(table):
    first = table.rows[0]
    line = f"Data: {first.data_source} ({first.data_detail})."
    if first.weights:
        line += f" Weights: {first.weights}."
    return line


def _table_lines(table):
    lines = [
        f"### {table.model} on {table.device}",
        "",
        _source_line(table),
        "",
        "| strategy | batch | median step | samples/s (IQR) | speedup vs full "
        "| trainable params | data | warnings |",
        "|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in table.rows:
        low, high = row.samples_per_second_iqr
        lines.append(
            f"| {_strategy_cell(row)} | {row.batch_size} | {row.median * 1e3:.3f} ms "
            f"| {row.samples_per_second:,.0f} ({low:,.0f}-{high:,.0f}) | {_speedup_cell(row)} "
            f"| {row.trainable_params:,} | {row.data_source} | {', '.join(row.warnings) or '-'} |"
        )
    return lines


_MEMORY_LEGEND = [
    ("allocator peak", "TensorFlow allocator peak during the timed steps above the bytes resident "
     "before them (`tf.config.experimental.get_memory_info` after `reset_memory_stats`; on CPU "
     "this needs TF_CPU_ALLOCATOR_USE_BFC=true). Measured."),
    ("RSS peak", "the process's peak resident set size after the case (`getrusage` ru_maxrss). "
     "It never falls, so it reflects every case run before this one too. Measured."),
    ("params, gradients, optimizer slots", "bytes counted from variable shapes and dtypes: all "
     "parameters, one gradient per trained variable, and the optimizer's slot variables. Exact."),
    ("activations (est.)", "allocator peak above resident minus the gradients. Parameters, slots "
     "and the batch are resident before the steps. An estimate: it also holds other temporaries."),
    ("bytes/sample", "allocator peak above resident divided by the batch size. Measured."),
]


def _bytes(value):
    if value is None:
        return "n/a"
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if abs(value) >= size:
            return f"{value / size:.2f} {unit}"
    return f"{value:.0f} B"


def _memory_table_lines(table):
    lines = [
        f"### {table.model} on {table.device}",
        "",
        "| strategy | batch | allocator peak | RSS peak | params | gradients | optimizer slots "
        "| activations (est.) | bytes/sample |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in table.rows:
        memory = row.memory
        lines.append(
            f"| {_strategy_cell(row)} | {row.batch_size} "
            f"| {_bytes(memory.get('allocator_peak_above_resident_bytes'))} "
            f"| {_bytes(memory.get('rss_peak_after_bytes'))} | {_bytes(memory.get('param_bytes'))} "
            f"| {_bytes(memory.get('gradient_bytes'))} | {_bytes(memory.get('optimizer_slot_bytes'))} "
            f"| {_bytes(memory.get('activation_bytes_estimate'))} "
            f"| {_bytes(memory.get('bytes_per_sample'))} |"
        )
    for case in table.failed:
        message = case.error.strip().splitlines()[0][:160] if case.error.strip() else ""
        lines.append(f"| {case.strategy} | {case.batch_size} | **{case.status}**: {message} "
                     "| | | | | | |")
    return lines


def _header_lines(report):
    env = report.environment
    cpu = report.machine.get("cpu", {}).get("brand_raw", "unknown CPU")
    return [
        "# freezebench report",
        "",
        f"Results: `{report.source}` ({report.datetime}, commit {report.commit}).",
        f"Machine: {cpu}, {env.get('cpu_count', '?')} logical cores. "
        f"TensorFlow {env.get('tensorflow_version', '?')}, Keras {env.get('keras_version', '?')}, "
        f"oneDNN {'on' if env.get('onednn_enabled') else 'off'} ({env.get('onednn_source', '?')}), "
        f"intra-op threads {env.get('intra_op_threads', '?')}, "
        f"inter-op threads {env.get('inter_op_threads', '?')} (0 = TensorFlow's choice).",
        "",
    ] + ([f"{report.skipped_benchmarks} benchmark(s) in the file were left out: they lack "
          "freezebench fields or have invalid values.", ""] if report.skipped_benchmarks else [])


def _legend_lines(report, columns):
    lines = ["Columns:", ""]
    lines += [f"- **{name}**: {text}" for name, text in columns]
    codes = report.warning_codes
    if codes:
        lines += ["", "Warnings:", ""]
        lines += [f"- **{code}**: {quality.LEGEND[code]}" for code in codes]
    return lines


def _image_line(alt, path, output_dir):
    return f"![{alt}]({os.path.relpath(path, output_dir)})"


def render_markdown(report, charts=None, output_dir="."):
    """Return the report as Markdown.

    `charts` maps "throughput", "memory" and "phases" to PNG paths, linked relative to `output_dir`.
    """
    charts = charts or {}
    lines = _header_lines(report)

    lines += ["## Throughput", ""]
    for table in report.tables:
        if table.rows:
            lines += _table_lines(table) + [""]
    lines += _legend_lines(report, _COLUMNS_LEGEND)
    if "throughput" in charts:
        lines += ["", _image_line("samples/s by strategy and batch", charts["throughput"], output_dir)]

    lines += ["", "## Memory", ""]
    for table in report.tables:
        lines += _memory_table_lines(table) + [""]
    lines += ["Columns:", ""] + [f"- **{name}**: {text}" for name, text in _MEMORY_LEGEND]
    if "memory" in charts:
        lines += ["", _image_line("allocator peak by strategy and batch", charts["memory"], output_dir)]

    sweep_lines = sweep_section_lines(report)
    lines += sweep_lines
    if sweep_lines and "sweep" in charts:
        lines += ["", _image_line("samples/s and allocator peak by fine_tune_at", charts["sweep"], output_dir)]
    lines += settings_section_lines(report)

    trace_lines = trace_section_lines(report)
    lines += trace_lines
    if trace_lines and "phases" in charts:
        lines += ["", _image_line("op time per step by phase", charts["phases"], output_dir)]
    return "\n".join(lines) + "\n"
