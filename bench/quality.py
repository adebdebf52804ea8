"""Quality warnings attached to each result, with the thresholds that raise them.

Each warning is a short code stored in `extra_info["warnings"]`. The report marks
a row with the codes and explains them in the legend under each table.
"""

# IQR above this fraction of the median: the rounds disagree, often because other
# work ran on the machine; compare such a row with care.
UNSTABLE_IQR_RATIO = 0.10

UNSTABLE = "unstable"
RETRACED = "retraced"
NON_FINITE_LOSS = "non-finite-loss"
SYNTHETIC_DATA = "synthetic-data"
NOTHING_TRAINED = "nothing-trained"
NO_ALLOCATOR_STATS = "no-allocator-stats"
TRACE_FAILED = "trace-failed"
TRACE_CHECK_FAILED = "trace-check-failed"

LEGEND = {
    UNSTABLE: f"IQR above {UNSTABLE_IQR_RATIO:.0%} of the median step time: noisy rounds.",
    RETRACED: "the tf.function was traced again after warm-up, so tracing time may be in the rounds.",
    NON_FINITE_LOSS: "a round ended with a NaN or infinite loss.",
    SYNTHETIC_DATA: "random data of the model's input shape was used; the step time does not depend on it.",
    NOTHING_TRAINED: "the strategy leaves no variable to update, so the step is a forward pass only.",
    NO_ALLOCATOR_STATS: "the allocator kept no statistics, so its figures are unavailable (not zero); "
    "on CPU, TF_CPU_ALLOCATOR_USE_BFC=true must be set before TensorFlow is imported.",
    TRACE_FAILED: "the profiler trace could not be captured or parsed (for example, another "
    "profiler was running); the timing is still valid.",
    TRACE_CHECK_FAILED: "a structural check of the trace failed: the step runs gradient or "
    "optimizer ops that the strategy should have removed.",
}


def stability_warnings(median, iqr):
    """Return [UNSTABLE] when the IQR is large relative to the median, else []."""
    if median > 0 and iqr / median > UNSTABLE_IQR_RATIO:
        return [UNSTABLE]
    return []
