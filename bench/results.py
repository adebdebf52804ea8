"""Benchmark results: where pytest-benchmark stores them, their schema, and loading them.

Results are pytest-benchmark JSON files (what `--benchmark-autosave` writes and
`pytest-benchmark compare` reads). freezebench's own fields are in each
benchmark's `extra_info`, versioned by `extra_info["schema_version"]`.

Schema versions:
1: first version. extra_info contains the case, parameter counts, per-layer state,
   warm-up, calibration, throughput, memory, warnings and environment. Cases
   without timings (out of memory) are in the top-level list
   "freezebench_failed_cases".
"""

import glob
import json
import os

from models.errors import ConfigError

SCHEMA_VERSION = 1
RESULTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "results")
STORAGE_DIR = os.path.join(RESULTS_DIR, "benchmarks")
TRACES_DIR = os.path.join(RESULTS_DIR, "traces")

# Fields the report reads; a file without them was not written by freezebench.
_REQUIRED_STATS = ("median", "iqr", "q1", "q3", "rounds")
_REQUIRED_EXTRA = ("schema_version", "model", "strategy", "batch_size", "device", "samples_per_second")
_REQUIRED_FAILED = ("model", "strategy", "batch_size", "device", "status", "error")


def latest_results_file(storage_dir=STORAGE_DIR):
    """Return the newest pytest-benchmark JSON file under `storage_dir`."""
    paths = glob.glob(os.path.join(storage_dir, "**", "*.json"), recursive=True)
    if not paths:
        raise ConfigError(
            f"no results found under {storage_dir!r}; run `pytest bench/` first or "
            "pass a results file"
        )
    return max(paths, key=os.path.getmtime)


def load_results(path):
    """Load a results file and return its benchmarks that carry freezebench fields.

    Raises ConfigError naming the file and the problem if it is missing, is not
    JSON, or contains no freezebench benchmarks of a supported schema version.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except FileNotFoundError:
        raise ConfigError(f"results file {str(path)!r} not found") from None
    except OSError as error:
        raise ConfigError(f"cannot read results file {str(path)!r}: {error.strerror}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ConfigError(f"results file {path!r} is not valid JSON: {error}") from None

    benchmarks = data.get("benchmarks") if isinstance(data, dict) else None
    if not isinstance(benchmarks, list):
        raise ConfigError(f"results file {path!r} has no 'benchmarks' list; is it pytest-benchmark JSON?")

    failed = data.get("freezebench_failed_cases") or []
    if not isinstance(failed, list) or not all(
        isinstance(record, dict) and all(key in record for key in _REQUIRED_FAILED) for record in failed
    ):
        raise ConfigError(
            f"results file {path!r} has a malformed 'freezebench_failed_cases' list; each entry "
            f"needs {', '.join(_REQUIRED_FAILED)}"
        )

    usable = [b for b in benchmarks if _is_freezebench_benchmark(b)]
    # The report names how many were left out, so a damaged row is not lost silently.
    data["freezebench_skipped_benchmarks"] = len(benchmarks) - len(usable)
    if not usable and not failed:
        raise ConfigError(
            f"results file {path!r} contains no freezebench benchmarks of schema version "
            f"{SCHEMA_VERSION} with stats {', '.join(_REQUIRED_STATS)}"
        )
    return data, usable


def _is_freezebench_benchmark(benchmark):
    stats = benchmark.get("stats") if isinstance(benchmark, dict) else None
    extra = benchmark.get("extra_info") if isinstance(benchmark, dict) else None
    if not isinstance(stats, dict) or not isinstance(extra, dict):
        return False
    if extra.get("schema_version") != SCHEMA_VERSION:
        return False
    if not all(key in stats for key in _REQUIRED_STATS) or not all(key in extra for key in _REQUIRED_EXTRA):
        return False
    numbers_ok = all(isinstance(stats[key], (int, float)) and stats[key] > 0 for key in ("median", "q1", "q3"))
    return (numbers_ok and isinstance(extra["strategy"], str) and isinstance(extra["model"], str)
            and isinstance(extra["device"], str) and isinstance(extra["batch_size"], int))
