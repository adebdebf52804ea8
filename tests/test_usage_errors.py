"""`pytest bench/` with an invalid option exits with a usage error and no traceback.

Each case starts a pytest subprocess that imports TensorFlow (about 15 s each
on a 2-core machine), so the four cases start together and are marked slow.
"""

import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TIMEOUT_SECONDS = 300

# Each option with a phrase its message must contain. The subprocesses see no
# GPU, so --device=gpu alone is invalid.
INVALID_OPTIONS = {
    "--strategies=bogus": "unknown strategy 'bogus'",
    "--fine-tune-at=9": "fine_tune_at=9 is out of range",
    "--batch-sizes=0": "--batch-sizes=0 is invalid",
    "--device=gpu": "--device=gpu cannot run here",
}


@pytest.fixture(scope="module")
def bench_runs():
    """Run `pytest bench/` once per invalid option, in parallel.

    Returns a dict from option to (exit code, combined stdout and stderr).
    """
    environment = dict(os.environ)
    # Hide any GPU so the --device=gpu case is invalid on every machine.
    environment["CUDA_VISIBLE_DEVICES"] = ""
    processes = {
        option: subprocess.Popen(
            [sys.executable, "-m", "pytest", "bench/", option, "-p", "no:cacheprovider"],
            cwd=REPO_ROOT,
            env=environment,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for option in INVALID_OPTIONS
    }

    runs = {}
    for option, process in processes.items():
        output, _ = process.communicate(timeout=TIMEOUT_SECONDS)
        runs[option] = (process.returncode, output)
    return runs


@pytest.mark.parametrize("option", INVALID_OPTIONS)
def test_invalid_option_exit_code(bench_runs, option):
    code, output = bench_runs[option]
    assert code == pytest.ExitCode.USAGE_ERROR, output


@pytest.mark.parametrize("option", INVALID_OPTIONS)
def test_invalid_option_message(bench_runs, option):
    _, output = bench_runs[option]
    assert INVALID_OPTIONS[option] in output, output


@pytest.mark.parametrize("option", INVALID_OPTIONS)
def test_invalid_option_no_traceback(bench_runs, option):
    _, output = bench_runs[option]
    assert "Traceback" not in output, output
