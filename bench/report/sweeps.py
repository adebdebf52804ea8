"""Report sections that compare settings: the freeze-depth sweep, and compile modes and precisions."""

from bench.report.model import ALPHA, BASELINE_STRATEGY, mann_whitney_p, setting_key, testable

FROZEN_PREFIX = "frozen-prefix"
# A sweep needs this many fine_tune_at values to be worth a plot.
MIN_SWEEP_POINTS = 3


def freeze_depth_sweeps(table):
    """Return {(batch, compile mode, precision): rows} of frozen-prefix runs at several fine_tune_at values.

    Each list is sorted by fine_tune_at and starts with the fully trainable point:
    the frozen-prefix row at fine_tune_at=0 if there is one, else the `full` row.
    """
    sweeps = {}
    for row in table.rows:
        if row.strategy == FROZEN_PREFIX:
            sweeps.setdefault(setting_key(row), []).append(row)

    result = {}
    for key, rows in sweeps.items():
        if len({row.fine_tune_at for row in rows}) < MIN_SWEEP_POINTS:
            continue
        rows = sorted(rows, key=lambda row: row.fine_tune_at)
        if rows[0].fine_tune_at != 0:
            full = [row for row in table.rows if row.strategy == BASELINE_STRATEGY and setting_key(row) == key]
            rows = full[:1] + rows
        result[key] = rows
    return result


def _fine_tune_label(row):
    return "0 (full)" if row.strategy == BASELINE_STRATEGY else str(row.fine_tune_at)


def _peak_mib(row):
    peak = row.memory.get("allocator_peak_above_resident_bytes")
    return "n/a" if peak is None else f"{peak / 2**20:.2f}"


def _sweep_speedup_cell(row, baseline):
    ratio = baseline.median / row.median
    if row is baseline:
        return "1.00x"
    if not testable(baseline.data, row.data):
        return f"{ratio:.2f}x (too few rounds to test)"
    p_value = mann_whitney_p(baseline.data, row.data)
    if p_value >= ALPHA:
        return f"n.s. (p={p_value:.2g})"
    return f"{ratio:.2f}x"


def sweep_section_lines(report):
    """Return the freeze-depth sweep tables, or [] when no table has a sweep."""
    lines = []
    for table in report.tables:
        for (batch, compile_mode, precision), rows in freeze_depth_sweeps(table).items():
            baseline = rows[0]
            lines += [
                f"### {table.model} on {table.device}, batch {batch}, {compile_mode}, {precision}",
                "",
                "| fine_tune_at | trainable params | samples/s (IQR) | speedup vs fully trainable "
                "| allocator peak (MiB) |",
                "|---:|---:|---:|---:|---:|",
            ]
            for row in rows:
                low, high = row.samples_per_second_iqr
                lines.append(
                    f"| {_fine_tune_label(row)} | {row.trainable_params:,} "
                    f"| {row.samples_per_second:,.1f} ({low:,.1f}-{high:,.1f}) "
                    f"| {_sweep_speedup_cell(row, baseline)} | {_peak_mib(row)} |"
                )
            lines.append("")
    if not lines:
        return []
    return ["", "## Freeze-depth sweep", "",
            "Frozen-prefix at each fine_tune_at. The speedup is over the fully trainable point, "
            f"shown only where a two-sided Mann-Whitney U test gives p < {ALPHA}.", ""] + lines


def _ratio_cell(comparison):
    if comparison.p_value is not None and comparison.p_value >= ALPHA:
        return f"n.s. (p={comparison.p_value:.2g})"
    return f"{comparison.ratio:.2f}x"


def settings_section_lines(report):
    """Return the compile mode and precision comparison, or [] with one setting only."""
    tables = [table for table in report.tables if table.settings]
    if not tables:
        return []

    lines = ["", "## Compile modes and precisions", "",
             "Each case against the same strategy and batch in graph mode and float32. "
             "Above 1x is faster; XLA's first call (tracing plus compilation) is given apart.", ""]
    for table in tables:
        lines += [
            f"### {table.model} on {table.device}",
            "",
            "| strategy | batch | compile mode | precision | median step | vs graph float32 | first call |",
            "|---|---:|---|---|---:|---:|---:|",
        ]
        for comparison in table.settings:
            row = comparison.row
            strategy = row.strategy if row.fine_tune_at is None else f"{row.strategy} ({row.fine_tune_at})"
            compile_cell = "-" if row.compile_seconds is None else f"{row.compile_seconds:.2f} s"
            lines.append(
                f"| {strategy} | {row.batch_size} | {row.compile_mode} | {row.precision} "
                f"| {row.median * 1e3:.3f} ms | {_ratio_cell(comparison)} | {compile_cell} |"
            )
        lines.append("")
    return lines
