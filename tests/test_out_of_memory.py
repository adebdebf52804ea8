"""An out-of-memory case becomes a result row and the run goes on."""

import glob
import json
import os
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_sweep_records_out_of_memory(tmp_path):
    env = dict(os.environ, FREEZEBENCH_TEST_OOM_BATCH="64")
    command = [
        sys.executable, "-m", "pytest", "bench/", "-p", "tests.plugins.inject_oom",
        "--models=mlp-sequential", "--strategies=full", "--device=cpu",
        "--batch-sizes=16", "--memory-sweep=64",
        "--benchmark-max-time=0.05", "--benchmark-min-rounds=2",
        f"--benchmark-storage=file://{tmp_path}",
    ]
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr

    assert result.returncode == 0, output[-3000:]
    assert "out of memory at batch 64" in output

    (path,) = glob.glob(str(tmp_path / "**" / "*.json"), recursive=True)
    data = json.loads(open(path).read())
    timed = sorted(b["extra_info"]["batch_size"] for b in data["benchmarks"])
    failed = data["freezebench_failed_cases"]
    assert timed == [16, 32]
    assert [(f["batch_size"], f["status"]) for f in failed] == [(64, "out of memory")]
    assert "injected" in failed[0]["error"]
