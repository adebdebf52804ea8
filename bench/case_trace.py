"""Profiling of a timed case: capture a trace, summarize it, run the structural checks.

This runs after the case's timed rounds and memory figures, over a few extra
steps, so the profiler changes neither. A trace that cannot be captured or
parsed gives {"error": message}; the case keeps its timing result.
"""

import json
import logging
import os

from google.protobuf.message import DecodeError

from bench import breakdown, trace_checks
from bench.devices import tf_device
from bench.profiler import capture_trace

logger = logging.getLogger(__name__)


def profile_case(case, built, logdir, steps):
    """Capture `steps` profiled steps into `logdir` and return the trace summary.

    The summary is also written beside the trace as `logdir/summary.json`.
    """
    # The device lets the capture warn when a GPU trace has no GPU plane (CUPTI missing).
    device = tf_device(case.device)
    result = capture_trace(built.train_step, built.images, built.labels, logdir, steps=steps, device=device)
    if not result.ok:
        return {"error": result.error, "logdir": logdir}

    try:
        summary = breakdown.summarize_trace(result.xplane_path)
    except (ValueError, OSError, DecodeError) as error:
        logger.error("cannot parse trace %s of case %s: %s", result.xplane_path, case.id, error)
        return {"error": f"cannot parse {result.xplane_path}: {error}", "logdir": logdir}

    summary["logdir"] = logdir
    summary["capture_warnings"] = result.warnings
    summary["checks"] = run_trace_checks(case, built, summary)
    with open(os.path.join(logdir, "summary.json"), "w", encoding="utf-8") as f:
        json.dump(summary, f, indent=1)
    return summary


def run_trace_checks(case, built, summary):
    """Return the structural checks that apply to the case's strategy, as {name: {"ok", "message"}}."""
    checks = {}
    frozen = [layer.name for layer in built.model.layers if not layer.trainable]
    if frozen and built.plan.variables:
        checks["no_frozen_gradients"] = trace_checks.check_no_frozen_gradients(summary, frozen)

    if case.strategy.is_layers_only:
        writes = trace_checks.variable_writes(built.train_step, built.model, built.images, built.labels)
        checks["optimizer_updates_only"] = trace_checks.check_optimizer_updates_only(
            summary, writes, case.strategy.layers
        )
    return {name: {"ok": ok, "message": message} for name, (ok, message) in checks.items()}
