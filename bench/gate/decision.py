"""The gate's decision rule on per-round samples.

A case regresses only when both hold:

1. its median got slower by more than `threshold` (default 15%), and
2. a one-sided Mann-Whitney U test (`scipy.stats.mannwhitneyu`,
   alternative="greater") finds the current samples larger than the
   baseline's at p < `alpha` (default 0.01).

The test is rank-based, so it tolerates the long right tail of step times that
interference on shared runners produces. A case that meets both conditions is
only suspected. The gate measures it once more and fails only if the second
measurement confirms it, so a single unlucky draw does not fail a build.

Samples are normalized before they get here: step time over the reference
kernel's time (machine speed), or over the median of `full` in the same run
(in-run ratio). A constant machine-speed factor cancels in both.
"""

import dataclasses
import statistics

from scipy.stats import mannwhitneyu

DEFAULT_THRESHOLD = 0.15
DEFAULT_ALPHA = 0.01

OK = "ok"
FASTER = "faster"
SUSPECTED = "suspected"
REGRESSION = "REGRESSION"
NOT_CONFIRMED = "ok (not confirmed on re-measure)"


@dataclasses.dataclass
class Comparison:
    """One row of the gate table: a normalized figure of the baseline and of this run."""

    name: str
    baseline: float
    current: float
    change: float
    p_value: float
    verdict: str
    cases: tuple = ()  # the gate cases to run again if this row is suspected


def compare(name, baseline_samples, current_samples, threshold=DEFAULT_THRESHOLD, alpha=DEFAULT_ALPHA,
            cases=()):
    """Compare two sets of normalized samples; the verdict is OK, FASTER or SUSPECTED."""
    baseline = statistics.median(baseline_samples)
    current = statistics.median(current_samples)
    change = current / baseline - 1
    p_slower = float(mannwhitneyu(current_samples, baseline_samples, alternative="greater").pvalue)

    if change > threshold and p_slower < alpha:
        return Comparison(name, baseline, current, change, p_slower, SUSPECTED, cases)

    p_faster = float(mannwhitneyu(current_samples, baseline_samples, alternative="less").pvalue)
    if change < -threshold and p_faster < alpha:
        return Comparison(name, baseline, current, change, p_faster, FASTER, cases)
    return Comparison(name, baseline, current, change, p_slower, OK, cases)


def confirm(first, second):
    """Return the final Comparison of a suspected case from its re-measured comparison."""
    if second.verdict == SUSPECTED:
        return dataclasses.replace(second, verdict=REGRESSION)
    return dataclasses.replace(second, verdict=NOT_CONFIRMED)


def normalize(samples, scale):
    """Divide every sample by `scale` (a reference time, or the `full` median)."""
    return [sample / scale for sample in samples]
