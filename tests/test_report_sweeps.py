"""Freeze-depth sweep and compile-mode sections of the report, from hand-made rows."""

from bench.report.model import Row, Table, _compare_settings
from bench.report.sweeps import freeze_depth_sweeps, settings_section_lines, sweep_section_lines


def row(strategy, median, fine_tune_at=None, compile_mode="graph", precision="float32", params=100):
    return Row(strategy=strategy, batch_size=32, median=median, q1=median, q3=median, rounds=5,
               samples_per_second=32 / median, trainable_params=params, data_source="synthetic",
               warnings=[], fine_tune_at=fine_tune_at, compile_mode=compile_mode, precision=precision,
               memory={"allocator_peak_above_resident_bytes": int(median * 2**30)})


class FakeReport:
    def __init__(self, tables):
        self.tables = tables


def sweep_table():
    rows = [row("full", 0.4, params=1000), row("frozen-prefix", 0.2, 100, params=300),
            row("frozen-prefix", 0.3, 50, params=600), row("frozen-prefix", 0.1, 154, params=10)]
    return Table("cpu", "mobilenetv2", rows)


def test_sweep_starts_at_full():
    ((key, rows),) = freeze_depth_sweeps(sweep_table()).items()
    assert key == (32, "graph", "float32")
    assert [r.fine_tune_at for r in rows] == [None, 50, 100, 154]


def test_sweep_needs_three_points():
    table = Table("cpu", "m", [row("frozen-prefix", 0.2, 1), row("frozen-prefix", 0.1, 2)])
    assert freeze_depth_sweeps(table) == {}


def test_sweep_speedups_over_full():
    text = "\n".join(sweep_section_lines(FakeReport([sweep_table()])))
    assert "| 0 (full) | 1,000 | 80.0 (80.0-80.0) | 1.00x |" in text
    # The hand-made rows carry no round times, so the test cannot run.
    assert "| 154 | 10 | 320.0 (320.0-320.0) | 4.00x (too few rounds to test) |" in text


def test_min_p_of_four_rounds():
    from bench.report.model import min_p_value, testable

    assert round(min_p_value(4, 4), 4) == 0.0286
    assert not testable([1.0] * 4, [2.0] * 4)
    assert testable([1.0] * 6, [2.0] * 6)


def test_settings_compare_with_graph_float32():
    rows = [row("full", 0.010), row("full", 0.005, compile_mode="xla")]
    raw = {id(r): [] for r in rows}
    (comparison,) = _compare_settings(rows, raw)
    assert comparison.ratio == 2.0
    assert comparison.row.compile_mode == "xla"


def test_settings_section_shows_ratio():
    rows = [row("full", 0.010), row("full", 0.005, compile_mode="xla")]
    table = Table("cpu", "m", rows, settings=_compare_settings(rows, {id(r): [] for r in rows}))
    text = "\n".join(settings_section_lines(FakeReport([table])))
    assert "| full | 32 | xla | float32 | 5.000 ms | 2.00x | - |" in text
