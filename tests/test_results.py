"""Loading pytest-benchmark result files and finding the newest one."""

import json
import os

import pytest

from bench.results import SCHEMA_VERSION, latest_results_file, load_results
from models.errors import ConfigError


def freezebench_benchmark(strategy="full"):
    """Return a benchmark entry with every field that load_results requires."""
    return {
        "name": f"test_train_step[mlp-sequential-{strategy}-b32-cpu]",
        "stats": {"median": 0.001, "iqr": 0.0001, "q1": 0.00095, "q3": 0.00105, "rounds": 50},
        "extra_info": {
            "schema_version": SCHEMA_VERSION,
            "model": "mlp-sequential",
            "strategy": strategy,
            "batch_size": 32,
            "device": "cpu",
            "samples_per_second": 32_000.0,
        },
    }


def write_json(path, data):
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def load_error(path):
    """Return the message of the ConfigError that load_results(path) raises."""
    with pytest.raises(ConfigError) as raised:
        load_results(path)
    return str(raised.value)


def test_load_keeps_freezebench_benchmarks(tmp_path):
    foreign = {"name": "test_other", "stats": {"median": 1.0}, "extra_info": {}}
    path = write_json(tmp_path / "run.json", {
        "benchmarks": [freezebench_benchmark("full"), foreign, freezebench_benchmark("dense2-only")],
    })

    data, usable = load_results(path)

    assert [b["extra_info"]["strategy"] for b in usable] == ["full", "dense2-only"]
    assert len(data["benchmarks"]) == 3


def test_corrupt_json_rejected(tmp_path):
    path = tmp_path / "run.json"
    path.write_text('{"benchmarks": [', encoding="utf-8")
    message = load_error(path)
    assert str(path) in message
    assert "not valid JSON" in message


def test_non_utf8_rejected(tmp_path):
    path = tmp_path / "run.json"
    path.write_bytes(b"\xff\xfe\x00 not text")
    assert str(path) in load_error(path)


def test_missing_file_rejected(tmp_path):
    path = tmp_path / "absent.json"
    message = load_error(path)
    assert str(path) in message
    assert "not found" in message


@pytest.mark.parametrize("data", [{"machine_info": {}}, {"benchmarks": {}}, [1, 2]],
                         ids=["no-key", "not-a-list", "top-level-list"])
def test_no_benchmarks_list_rejected(tmp_path, data):
    path = write_json(tmp_path / "run.json", data)
    message = load_error(path)
    assert str(path) in message
    assert "'benchmarks'" in message


def test_empty_benchmarks_rejected(tmp_path):
    path = write_json(tmp_path / "run.json", {"benchmarks": []})
    assert str(path) in load_error(path)


@pytest.mark.parametrize("field", ["model", "strategy", "samples_per_second", "schema_version"])
def test_missing_extra_field_rejected(tmp_path, field):
    benchmark = freezebench_benchmark()
    del benchmark["extra_info"][field]
    path = write_json(tmp_path / "run.json", {"benchmarks": [benchmark]})
    assert str(path) in load_error(path)


@pytest.mark.parametrize("field", ["median", "iqr", "rounds"])
def test_missing_stat_rejected(tmp_path, field):
    benchmark = freezebench_benchmark()
    del benchmark["stats"][field]
    path = write_json(tmp_path / "run.json", {"benchmarks": [benchmark]})
    assert str(path) in load_error(path)


def test_plain_pytest_benchmark_rejected(tmp_path):
    plain = {"name": "test_sum", "stats": {"median": 1.0, "iqr": 0.1, "q1": 0.9, "q3": 1.1, "rounds": 5},
             "extra_info": {}}
    path = write_json(tmp_path / "run.json", {"benchmarks": [plain]})
    message = load_error(path)
    assert str(path) in message
    assert f"schema version {SCHEMA_VERSION}" in message


def test_other_schema_version_rejected(tmp_path):
    benchmark = freezebench_benchmark()
    benchmark["extra_info"]["schema_version"] = SCHEMA_VERSION + 1
    path = write_json(tmp_path / "run.json", {"benchmarks": [benchmark]})
    assert str(path) in load_error(path)


def test_malformed_failed_cases_rejected(tmp_path):
    path = write_json(tmp_path / "run.json", {
        "benchmarks": [freezebench_benchmark()],
        "freezebench_failed_cases": [{"model": "mlp-sequential"}],
    })
    message = load_error(path)
    assert str(path) in message
    assert "'freezebench_failed_cases'" in message


def test_directory_path_rejected(tmp_path):
    with pytest.raises(ConfigError):
        load_results(tmp_path)


def test_latest_in_empty_dir(tmp_path):
    with pytest.raises(ConfigError) as raised:
        latest_results_file(tmp_path)
    assert str(tmp_path) in str(raised.value)


def test_latest_in_missing_dir(tmp_path):
    with pytest.raises(ConfigError):
        latest_results_file(tmp_path / "absent")


def test_latest_ignores_non_json(tmp_path):
    (tmp_path / "notes.txt").write_text("not results", encoding="utf-8")
    with pytest.raises(ConfigError):
        latest_results_file(tmp_path)


def test_latest_picks_newest_mtime(tmp_path):
    machine_dir = tmp_path / "Linux-CPython-3.11-64bit"
    machine_dir.mkdir()
    older = write_json(machine_dir / "0002_newer_name.json", {"benchmarks": []})
    newer = write_json(tmp_path / "0001_older_name.json", {"benchmarks": []})
    os.utime(older, (1_000_000, 1_000_000))
    os.utime(newer, (2_000_000, 2_000_000))

    assert latest_results_file(tmp_path) == str(newer)
