"""`pytest bench/ --profile` end to end: traces per case, and a failed capture keeps the timing."""

import glob
import json
import os
import re
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRACES = os.path.join(REPO, "results", "traces")


def run_bench(tmp_path, *args, env=None):
    command = [
        sys.executable, "-m", "pytest", "bench/", "--models=mlp-sequential", "--device=cpu",
        "--batch-sizes=8", "--benchmark-max-time=0.05", "--benchmark-min-rounds=2",
        f"--benchmark-storage=file://{tmp_path / 'storage'}", *args,
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600,
                            env=dict(os.environ, **(env or {})))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    (path,) = glob.glob(str(tmp_path / "storage" / "**" / "*.json"), recursive=True)
    return result, json.loads(open(path).read())


def trace_runs():
    return set(os.listdir(TRACES)) if os.path.isdir(TRACES) else set()


@pytest.mark.slow
def test_no_trace_folder_without_profile(tmp_path):
    before = trace_runs()
    _, data = run_bench(tmp_path)
    assert trace_runs() == before
    assert all(b["extra_info"]["trace"] is None for b in data["benchmarks"])


@pytest.mark.slow
def test_profile_writes_trace_per_case(tmp_path):
    result, data = run_bench(tmp_path, "--profile", "--profile-steps=2")
    traces = [b["extra_info"]["trace"] for b in data["benchmarks"]]
    assert len(traces) == 3
    for trace in traces:
        assert glob.glob(os.path.join(trace["logdir"], "plugins", "profile", "*", "*.xplane.pb"))
        assert trace["steps"] == 2
        assert all(check["ok"] for check in trace["checks"].values())
    assert "tensorboard --logdir results/traces/" in result.stdout

    # The step annotations give TensorBoard's overview page real step times,
    # not "no step marker observed".
    raw_to_tool_data = pytest.importorskip("xprof.convert.raw_to_tool_data")
    (xplane,) = glob.glob(os.path.join(traces[0]["logdir"], "plugins", "profile", "*", "*.xplane.pb"))
    page, _ = raw_to_tool_data.xspace_to_tool_data([xplane], "overview_page", {})
    overview = json.dumps(json.loads(page))
    assert "no step marker" not in overview.lower()
    assert float(re.search(r'"steptime_ms_average": "([0-9.]+)"', overview).group(1)) > 0


@pytest.mark.slow
def test_profiler_start_failure_keeps_timing(tmp_path):
    env = {"FREEZEBENCH_TEST_PROFILER_DIR": str(tmp_path / "other-profiler")}
    result, data = run_bench(tmp_path, "--profile", "-p", "tests.plugins.busy_profiler", env=env)
    assert "profiler warnings (timings are kept)" in result.stdout
    for benchmark in data["benchmarks"]:
        assert benchmark["stats"]["median"] > 0
        assert "error" in benchmark["extra_info"]["trace"]
        assert "trace-failed" in benchmark["extra_info"]["warnings"]
