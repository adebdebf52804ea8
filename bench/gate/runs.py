"""Gate runs: the fixed benchmark cases, run through pytest, and their baseline files.

Baseline schema versions:
1: first version. Top level: schema_version, created, machine, tensorflow_version,
   keras_version, pytest_args, cases. Each case: strategy, data (per-step
   seconds of every round), reference_seconds, structure, and
   paired_reference_seconds (the reference matmul after each round).
"""

import dataclasses
import datetime
import json
import os
import subprocess
import sys
import tempfile

from bench.results import RESULTS_DIR, load_results
from models.errors import ConfigError

BASELINE_SCHEMA_VERSION = 1
DEFAULT_BASELINE = os.path.join(RESULTS_DIR, "baselines", "gate-cpu.json")
REPO_DIR = os.path.dirname(RESULTS_DIR)

# The fixed set: one model, the three strategies, one batch size, on the CPU.
# Batch 256 makes a step long enough (milliseconds) that Python dispatch is a
# small share of it, and 3 s of rounds give each case dozens of samples.
GATE_PYTEST_ARGS = (
    "--models=mlp-sequential",
    "--strategies=full,frozen-prefix,dense2-only",
    "--batch-sizes=256",
    "--device=cpu",
    "--optimizer=sgd",
    "--fine-tune-at=2",
    "--benchmark-max-time=3",
    "--benchmark-min-rounds=30",
    "--paired-reference",
)
TEST_PATH = "bench/test_train_steps.py::test_train_step"


@dataclasses.dataclass
class CaseRun:
    """One gate case as measured: per-step round times, the reference time, structure facts."""

    strategy: str
    data: list
    reference_seconds: float
    structure: dict
    paired_reference_seconds: list = None

    def normalized(self):
        """Return each round's step time over the reference time measured right after it."""
        if self.paired_reference_seconds and len(self.paired_reference_seconds) == len(self.data):
            return [step / ref for step, ref in zip(self.data, self.paired_reference_seconds)]
        return [step / self.reference_seconds for step in self.data]


@dataclasses.dataclass
class GateRun:
    """A run's cases by case id, with the versions and machine it ran on."""

    cases: dict
    tensorflow_version: str
    keras_version: str
    machine: dict


def case_id(extra):
    return extra["case_id"]


def run_cases(case_ids=None, extra_args=()):
    """Run the gate cases (or only `case_ids`) in a pytest subprocess and return the GateRun."""
    with tempfile.TemporaryDirectory(prefix="freezebench-gate-") as tmp:
        json_path = os.path.join(tmp, "run.json")
        command = [
            sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
            *([f"{TEST_PATH}[{case}]" for case in case_ids] if case_ids else ["bench/"]),
            *GATE_PYTEST_ARGS,
            "--benchmark-save-data",
            f"--benchmark-storage=file://{os.path.join(tmp, 'storage')}",
            f"--benchmark-json={json_path}",
            *extra_args,
        ]
        completed = subprocess.run(command, cwd=REPO_DIR)
        if completed.returncode != 0:
            raise ConfigError(
                f"the gate's benchmark run failed with exit status {completed.returncode}; "
                "see the pytest output above"
            )
        return gate_run_from_results(*load_results(json_path))


def gate_run_from_results(data, benchmarks):
    """Return the GateRun of loaded pytest-benchmark results."""
    cases = {}
    for benchmark in benchmarks:
        extra = benchmark["extra_info"]
        cases[case_id(extra)] = CaseRun(
            strategy=extra["strategy"],
            data=list(benchmark["stats"]["data"]),
            reference_seconds=extra["reference_seconds"],
            structure=extra["structure"],
            paired_reference_seconds=extra.get("paired_reference_seconds"),
        )
    environment = benchmarks[0]["extra_info"]["environment"]
    return GateRun(cases, environment["tensorflow_version"], environment["keras_version"],
                   data.get("machine_info", {}))


def write_baseline(run, path):
    """Write `run` as the baseline file at `path`."""
    payload = {
        "schema_version": BASELINE_SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": run.machine,
        "tensorflow_version": run.tensorflow_version,
        "keras_version": run.keras_version,
        "pytest_args": list(GATE_PYTEST_ARGS),
        "cases": {name: dataclasses.asdict(case) for name, case in run.cases.items()},
    }
    try:
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=1)
    except OSError as error:
        raise ConfigError(f"cannot write baseline {path!r}: {error.strerror}") from None


def check_baseline_path(path, record):
    """Raise ConfigError before any measuring if `path` cannot be read (or, with `record`, written)."""
    if os.path.isdir(path):
        raise ConfigError(f"--baseline {path!r} is a folder; give a file such as {DEFAULT_BASELINE}")
    if record:
        folder = os.path.dirname(os.path.abspath(path))
        existing = folder
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing) or not os.access(existing, os.W_OK):
            raise ConfigError(f"cannot write baseline {path!r}: {existing!r} is not a writable folder")
        return
    read_baseline(path)


def read_baseline(path):
    """Return the baseline GateRun at `path`, or None if the file does not exist.

    Raises ConfigError if the file exists but is not a baseline of this schema.
    """
    if not os.path.exists(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            payload = json.load(f)
        if payload["schema_version"] != BASELINE_SCHEMA_VERSION:
            raise ConfigError(
                f"baseline {path!r} has schema version {payload['schema_version']}, expected "
                f"{BASELINE_SCHEMA_VERSION}; record a new one with `python -m bench.gate --record`"
            )
        cases = {name: CaseRun(**case) for name, case in payload["cases"].items()}
        return GateRun(cases, payload["tensorflow_version"], payload["keras_version"],
                       payload.get("machine", {}))
    except OSError as error:
        raise ConfigError(f"cannot read baseline {path!r}: {error.strerror}") from None
    except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError) as error:
        raise ConfigError(
            f"baseline {path!r} is not a valid gate baseline ({error!r}); record a new one "
            "with `python -m bench.gate --record`"
        ) from None
