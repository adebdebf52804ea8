"""The report model: per-case figures and comparisons with the `full` strategy.

Significance: a strategy's speedup over `full` is reported only when the two
sets of per-step round times differ by a two-sided Mann-Whitney U test
(`scipy.stats.mannwhitneyu`) at p < ALPHA. The test is rank-based, so it needs
no normality assumption about step times, whose distributions have long right
tails from interference. Rounds are treated as independent samples, which
drift on a busy machine makes optimistic.
"""

import dataclasses
import math

from scipy.stats import mannwhitneyu

from bench import quality

ALPHA = 0.01
BASELINE_STRATEGY = "full"
_STRATEGY_ORDER = {"full": 0, "frozen-prefix": 1}


@dataclasses.dataclass
class Row:
    """One case: step time statistics in seconds, throughput and the comparison with `full`.

    `speedup` is the median step time of `full` over this case's. It is None for
    `full` itself, and when no `full` case with the same batch size, compile mode
    and precision was measured.
    `p_value` is None when either case lacks raw round times.
    """

    strategy: str
    batch_size: int
    median: float
    q1: float
    q3: float
    rounds: int
    samples_per_second: float
    trainable_params: int
    data_source: str
    warnings: list
    fine_tune_at: object = None
    compile_mode: str = "graph"
    precision: str = "float32"
    compile_seconds: object = None
    memory: dict = dataclasses.field(default_factory=dict)
    data: list = dataclasses.field(default_factory=list)
    data_detail: str = ""
    weights: object = None
    trace: dict = dataclasses.field(default_factory=dict)
    speedup: object = None
    p_value: object = None
    testable: bool = True  # False when too few rounds were timed for p < ALPHA to be possible

    @property
    def samples_per_second_iqr(self):
        """Return samples/s at the third and first quartile of step time (low, high)."""
        return self.batch_size / self.q3, self.batch_size / self.q1

    @property
    def has_trace(self):
        """Return True if the case carries a parsed profiler trace."""
        return bool(self.trace.get("steps"))

    @property
    def significant(self):
        """Return True/False for the speedup test, or None when it was not run or could not pass."""
        if self.p_value is None or not self.testable:
            return None
        return self.p_value < ALPHA


@dataclasses.dataclass
class FailedCase:
    """A case that produced no timing, such as one that ran out of memory."""

    strategy: str
    batch_size: int
    status: str
    error: str


@dataclasses.dataclass
class SettingComparison:
    """One case timed under a compile mode and precision, against graph and float32.

    `ratio` is the median step time of the graph/float32 case over this one's,
    so above 1 is faster; `p_value` is the Mann-Whitney U test's.
    """

    row: Row
    reference: Row
    ratio: float
    p_value: object


@dataclasses.dataclass
class Table:
    """All cases of one device and model, timed or failed."""

    device: str
    model: str
    rows: list
    failed: list = dataclasses.field(default_factory=list)
    settings: list = dataclasses.field(default_factory=list)

    @property
    def has_several_settings(self):
        return len({(row.compile_mode, row.precision) for row in self.rows}) > 1


@dataclasses.dataclass
class Report:
    """Everything the writers show, computed once from one results file."""

    source: str
    datetime: str
    commit: str
    machine: dict
    environment: dict
    tables: list
    skipped_benchmarks: int = 0

    @property
    def warning_codes(self):
        """Return the warning codes that appear in any row, in legend order."""
        seen = {code for table in self.tables for row in table.rows for code in row.warnings}
        return [code for code in quality.LEGEND if code in seen]


def mann_whitney_p(a, b):
    """Return the two-sided Mann-Whitney U p-value of samples a and b, or None if either is empty."""
    if not a or not b:
        return None
    return float(mannwhitneyu(a, b, alternative="two-sided").pvalue)


def min_p_value(n1, n2):
    """Return the smallest two-sided p-value an exact Mann-Whitney U test can give for sizes n1, n2.

    With few rounds even fully separated samples cannot reach ALPHA: 4 rounds
    against 4 give at least 2 / C(8, 4) = 0.029.
    """
    return min(1.0, 2 / math.comb(n1 + n2, n1))


def testable(a, b):
    """Return True if samples of these sizes can reach p < ALPHA at all."""
    return bool(a) and bool(b) and min_p_value(len(a), len(b)) < ALPHA


def _row(benchmark):
    stats = benchmark["stats"]
    extra = benchmark["extra_info"]
    return Row(
        strategy=extra["strategy"],
        batch_size=extra["batch_size"],
        median=stats["median"],
        q1=stats["q1"],
        q3=stats["q3"],
        rounds=stats["rounds"],
        samples_per_second=extra["samples_per_second"],
        trainable_params=extra.get("trainable_params"),
        data_source=extra.get("data_source", "unknown"),
        warnings=list(extra.get("warnings", [])),
        fine_tune_at=extra.get("fine_tune_at"),
        compile_mode=extra.get("compile_mode", "graph"),
        precision=extra.get("precision", "float32"),
        compile_seconds=extra.get("compile_seconds"),
        memory=extra.get("memory") or {},
        data=list(stats.get("data") or []),
        data_detail=extra.get("data_detail", ""),
        weights=(extra.get("weights") or {}).get("detail"),
        trace=extra.get("trace") or {},
    )


_COMPILE_ORDER = {"eager": 0, "graph": 1, "xla": 2}
_PRECISION_ORDER = {"float32": 0, "mixed_bfloat16": 1, "mixed_float16": 2}


def setting_key(row):
    """Return what a row shares with the `full` row it is compared with."""
    return row.batch_size, row.compile_mode, row.precision


def _compare_with_full(rows, raw_times):
    full_rows = {setting_key(row): row for row in rows if row.strategy == BASELINE_STRATEGY}
    for row in rows:
        full = full_rows.get(setting_key(row))
        if full is None or row is full:
            continue
        row.speedup = full.median / row.median
        row.p_value = mann_whitney_p(raw_times[id(full)], raw_times[id(row)])
        row.testable = testable(raw_times[id(full)], raw_times[id(row)])


def _sort_key(row):
    return (
        row.batch_size,
        _COMPILE_ORDER.get(row.compile_mode, 3),
        _PRECISION_ORDER.get(row.precision, 3),
        _STRATEGY_ORDER.get(row.strategy, 2),
        row.strategy,
        row.fine_tune_at if row.fine_tune_at is not None else -1,
    )


def _compare_settings(rows, raw_times):
    """Return a SettingComparison for every row not in graph mode and float32 that has such a twin."""
    def identity(row):
        return row.strategy, row.fine_tune_at, row.batch_size

    references = {identity(row): row for row in rows if row.compile_mode == "graph" and row.precision == "float32"}
    comparisons = []
    for row in sorted(rows, key=_sort_key):
        reference = references.get(identity(row))
        if reference is None or reference is row:
            continue
        comparisons.append(SettingComparison(
            row, reference, reference.median / row.median,
            mann_whitney_p(raw_times[id(reference)], raw_times[id(row)]),
        ))
    return comparisons


def _failed_cases(data):
    failed = {}
    for record in data.get("freezebench_failed_cases") or []:
        case = FailedCase(record["strategy"], record["batch_size"], record["status"], record["error"])
        failed.setdefault((record["device"], record["model"]), []).append(case)
    return failed


def build_report(data, benchmarks, source):
    """Build the Report from pytest-benchmark JSON `data` and its freezebench `benchmarks`."""
    groups = {}
    raw_times = {}
    for benchmark in benchmarks:
        extra = benchmark["extra_info"]
        row = _row(benchmark)
        raw_times[id(row)] = list(benchmark["stats"].get("data") or [])
        groups.setdefault((extra["device"], extra["model"]), []).append(row)

    failed = _failed_cases(data)
    tables = []
    for key in sorted(set(groups) | set(failed)):
        rows = groups.get(key, [])
        _compare_with_full(rows, raw_times)
        tables.append(Table(key[0], key[1], sorted(rows, key=_sort_key), failed.get(key, []),
                            _compare_settings(rows, raw_times)))

    environment = benchmarks[0]["extra_info"].get("environment", {}) if benchmarks else {}
    commit = (data.get("commit_info") or {}).get("id") or "unknown"
    return Report(
        source=source,
        datetime=data.get("datetime", "unknown"),
        commit=commit,
        machine=data.get("machine_info", {}),
        environment=environment,
        tables=tables,
        skipped_benchmarks=data.get("freezebench_skipped_benchmarks", 0),
    )
