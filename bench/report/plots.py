"""Charts of a Report, written as PNG with matplotlib."""

import matplotlib

matplotlib.use("Agg")  # Files only; no display is needed or assumed.
import matplotlib.pyplot as plt  # noqa: E402


def _throughput(row):
    low, high = row.samples_per_second_iqr
    value = row.samples_per_second
    return value, (value - low, high - value)


def _allocator_peak_mib(row):
    peak = row.memory.get("allocator_peak_above_resident_bytes")
    if peak is None:
        return None
    return peak / 2**20, (0.0, 0.0)


def _bar_chart(report, path, metric, ylabel):
    """Write grouped bars of `metric(row)` by strategy and batch, one panel per table.

    `metric` returns (value, (error below, error above)), or None to leave a bar out.
    """
    tables = [table for table in report.tables if table.rows]
    figure, axes = plt.subplots(1, max(1, len(tables)), figsize=(5.5 * max(1, len(tables)), 4.2),
                                squeeze=False)

    for axis, table in zip(axes[0], tables):
        batches = sorted({row.batch_size for row in table.rows})
        strategies = list(dict.fromkeys(row.strategy for row in table.rows))
        width = 0.8 / len(strategies)

        for index, strategy in enumerate(strategies):
            offset = (index - (len(strategies) - 1) / 2) * width
            positions, heights, errors = [], [], [[], []]
            for position, batch in enumerate(batches):
                row = next((r for r in table.rows if r.strategy == strategy and r.batch_size == batch), None)
                measured = metric(row) if row is not None else None
                if measured is None:
                    continue
                value, (below, above) = measured
                positions.append(position + offset)
                heights.append(value)
                errors[0].append(below)
                errors[1].append(above)
            axis.bar(positions, heights, width, yerr=errors, capsize=3, label=strategy)

        axis.set_xticks(range(len(batches)), [f"batch {b}" for b in batches])
        axis.set_ylabel(ylabel)
        axis.set_title(f"{table.model} on {table.device}")
        axis.legend(fontsize="small")

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_throughput(report, path):
    """Write samples/s by strategy and batch; error bars span the IQR of step time."""
    _bar_chart(report, path, _throughput, "samples/s")


def plot_memory(report, path):
    """Write the allocator peak above resident, in MiB, by strategy and batch."""
    _bar_chart(report, path, _allocator_peak_mib, "allocator peak above resident (MiB)")


def plot_phases(report, path):
    """Write stacked bars of op time per step by phase, one bar per strategy and batch.

    Returns False, writing nothing, when no case carries a trace.
    """
    from bench.breakdown import PHASES

    tables = [table for table in report.tables if any(row.has_trace for row in table.rows)]
    if not tables:
        return False

    figure, axes = plt.subplots(1, len(tables), figsize=(5.5 * len(tables), 4.2), squeeze=False)
    for axis, table in zip(axes[0], tables):
        rows = [row for row in table.rows if row.has_trace]
        labels = [f"{row.strategy}\nb{row.batch_size}" for row in rows]
        bottoms = [0.0] * len(rows)
        for phase in PHASES:
            heights = [row.trace["phase_ms_per_step"].get(phase, 0.0) for row in rows]
            axis.bar(range(len(rows)), heights, 0.6, bottom=bottoms, label=phase)
            bottoms = [b + h for b, h in zip(bottoms, heights)]
        axis.set_xticks(range(len(rows)), labels, fontsize="small")
        axis.set_ylabel("op time per step (ms)")
        axis.set_title(f"{table.model} on {table.device}")
        axis.legend(fontsize="small")

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


def plot_sweep(report, path):
    """Write samples/s and allocator peak against fine_tune_at, trainable parameters on a second axis.

    One row of two panels per sweep. Returns False, writing nothing, when the
    report has no freeze-depth sweep.
    """
    from bench.report.sweeps import freeze_depth_sweeps

    sweeps = [(table, key, rows) for table in report.tables for key, rows in freeze_depth_sweeps(table).items()]
    if not sweeps:
        return False

    figure, axes = plt.subplots(len(sweeps), 2, figsize=(11, 4 * len(sweeps)), squeeze=False)
    for (table, (batch, compile_mode, precision), rows), (left, right) in zip(sweeps, axes):
        x = [0 if row.fine_tune_at is None else row.fine_tune_at for row in rows]
        peaks = [row.memory.get("allocator_peak_above_resident_bytes") for row in rows]
        panels = (
            (left, [row.samples_per_second for row in rows], "samples/s"),
            (right, [None if p is None else p / 2**20 for p in peaks], "allocator peak above resident (MiB)"),
        )
        for axis, values, label in panels:
            axis.plot(x, [float("nan") if v is None else v for v in values], "o-", color="tab:blue")
            axis.set_ylim(bottom=0)  # a truncated axis would exaggerate the differences
            axis.set_xlabel("fine_tune_at (layers frozen)")
            axis.set_ylabel(label, color="tab:blue")
            twin = axis.twinx()
            twin.plot(x, [row.trainable_params for row in rows], "s--", color="tab:orange")
            twin.set_ylabel("trainable params", color="tab:orange")
            axis.set_title(f"{table.model}, batch {batch}, {compile_mode}, {precision}", fontsize="small")

    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True
