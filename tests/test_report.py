"""The report builds from a small results fixture, and its figures match the fixture."""

import json
import os
import shutil

import pytest

from bench.report.__main__ import main
from bench.report.markdown import render_markdown
from bench.report.model import build_report, mann_whitney_p
from bench.results import load_results
from models.errors import ConfigError

FIXTURE = os.path.join(os.path.dirname(__file__), "fixtures", "results_small.json")


@pytest.fixture
def report():
    data, benchmarks = load_results(FIXTURE)
    return build_report(data, benchmarks, FIXTURE)


def rows_by_strategy(report):
    (table,) = report.tables
    return {row.strategy: row for row in table.rows}


def test_report_has_one_table(report):
    assert [(t.device, t.model) for t in report.tables] == [("cpu", "mlp-sequential")]


def test_rows_keep_fixture_medians(report):
    rows = rows_by_strategy(report)
    assert rows["full"].median == pytest.approx(0.0040)
    assert rows["dense2-only"].median == pytest.approx(0.0020)
    assert rows["frozen-prefix"].median == pytest.approx(0.0041)


def test_speedup_is_median_ratio(report):
    assert rows_by_strategy(report)["dense2-only"].speedup == pytest.approx(2.0)


def test_separated_samples_are_significant(report):
    assert rows_by_strategy(report)["dense2-only"].significant is True


def test_overlapping_samples_not_significant(report):
    assert rows_by_strategy(report)["frozen-prefix"].significant is False


def test_full_has_no_speedup(report):
    assert rows_by_strategy(report)["full"].speedup is None


def test_samples_per_second_from_median(report):
    assert rows_by_strategy(report)["full"].samples_per_second == pytest.approx(32 / 0.0040)


def test_failed_case_in_table(report):
    (table,) = report.tables
    assert [(case.strategy, case.batch_size, case.status) for case in table.failed] == [
        ("full", 65536, "out of memory")
    ]


def test_markdown_shows_figures(report):
    text = render_markdown(report)
    assert "| full | 32 | 4.000 ms | 8,000 (" in text
    assert "| 2.00x |" in text
    assert "n.s. (p=" in text
    assert "**out of memory**: OOM when allocating" in text


def test_markdown_legend_lists_present_warnings(report):
    text = render_markdown(report)
    assert "- **unstable**:" in text
    assert "- **synthetic-data**:" in text
    assert "- **retraced**:" not in text


def test_markdown_memory_figures(report):
    text = render_markdown(report)
    assert "| dense2-only | 32 | 512.00 KiB |" in text
    assert "| 2.03 MiB |" in text  # Adam slots of the full model: 2 x 266,610 x 4 bytes.


def test_mann_whitney_needs_samples():
    assert mann_whitney_p([], [1.0, 2.0]) is None


def test_command_writes_report(tmp_path):
    status = main([FIXTURE, "--output-dir", str(tmp_path)])
    assert status == 0
    assert (tmp_path / "report.md").read_text().startswith("# freezebench report")
    assert (tmp_path / "report-throughput.png").stat().st_size > 0
    assert (tmp_path / "report-memory.png").stat().st_size > 0


def test_command_rejects_corrupt_file(tmp_path, capsys):
    corrupt = tmp_path / "corrupt.json"
    corrupt.write_text('{"benchmarks": [')
    status = main([str(corrupt), "--output-dir", str(tmp_path)])
    assert status == 2
    assert "is not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "report.md").exists()


def test_command_keeps_existing_report(tmp_path):
    shutil.copy(FIXTURE, tmp_path / "good.json")
    main([str(tmp_path / "good.json"), "--output-dir", str(tmp_path)])
    before = (tmp_path / "report.md").read_text()
    (tmp_path / "bad.json").write_text("not json")
    main([str(tmp_path / "bad.json"), "--output-dir", str(tmp_path)])
    assert (tmp_path / "report.md").read_text() == before


def test_malformed_failed_cases_rejected(tmp_path):
    data = json.loads(open(FIXTURE).read())
    data["freezebench_failed_cases"] = [{"model": "mlp-sequential"}]
    path = tmp_path / "malformed.json"
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="malformed"):
        load_results(str(path))
