"""Offline breakdown of a profiler trace (`.xplane.pb`) into op time per training step.

The trace is the XSpace that `tf.profiler.experimental.stop()` writes. Facts
about its layout, read from TensorFlow 2.21 CPU captures:

- The host plane is `/host:CPU`. Executor threads have lines named
  `tf_Compute/<thread id>`. An op event there is named `<op name>:<op type>`,
  where `<op name>` is the graph node's name with its name scopes, and its
  metadata `display_name` is the op type, for example
  `gradient_tape/mlp_sequential_1/dense1_1/MatMul/MatMul:MatMul`.
- Op events sit inside non-op events (`ExecutorState::Process`) on the same
  line. Ops did not nest inside each other in these captures, but self time
  still subtracts nested op events, so a function-call op does not count its
  body twice.
- Each step is an event named after the `tf.profiler.experimental.Trace`
  annotation (here "train") with a `step_num` stat, on the calling thread's line.
- On a GPU, `/device:GPU:<n>` planes hold CUPTI activity on lines named
  `Stream #<id>` (plus a type list, for example `Stream #14(MemcpyH2D)`).
  Kernels carry a `kernel_details` stat and the launching op in `tf_op`.
  Copies are named `MemcpyH2D`, `MemcpyD2H`, `MemcpyD2D`, `MemcpyP2P` or
  `MemcpyOther` and carry `memcpy_details`.

All times in the summary are milliseconds per step, averaged over the steps.
"""

import bisect
import collections
import dataclasses
import re

STEP_ANNOTATION = "train"
HOST_PLANE = "/host:CPU"
GPU_PLANE_PREFIX = "/device:GPU:"
GPU_STREAM_LINE_PREFIX = "Stream #"
STEP_NUM_STAT = "step_num"
KERNEL_DETAILS_STAT = "kernel_details"
MEMCPY_DETAILS_STAT = "memcpy_details"
TF_OP_STAT = "tf_op"
MEMCPY_H2D = "MemcpyH2D"
TOP_N = 10

FORWARD = "forward"
BACKWARD = "backward"
OPTIMIZER = "optimizer"
OTHER = "other"
PHASES = (FORWARD, BACKWARD, OPTIMIZER, OTHER)

# Keras 3 names an optimizer after its class in snake case and uses that name
# as the optimizer's name scope. Keras adds `_<n>` to repeated names in one
# process (`sgd`, `sgd_1`, ...). Keras 2 used the class name (`SGD`).
OPTIMIZER_SCOPES = (
    "sgd", "adam", "adamw", "rmsprop", "adagrad", "adadelta", "adamax",
    "nadam", "ftrl", "lion", "lamb", "adafactor", "muon", "loss_scale_optimizer",
)
_SCOPE_SUFFIX = re.compile(r"_\d+$")

PS_PER_MS = 1e9


def import_xplane_pb2():
    """Return the `xplane_pb2` module that parses `.xplane.pb` files.

    TensorFlow 2.21 ships it as `tensorflow.tsl.profiler.protobuf.xplane_pb2`.
    Other builds of TSL install it as `tsl.profiler.protobuf.xplane_pb2`.
    """
    try:
        from tensorflow.tsl.profiler.protobuf import xplane_pb2
    except ImportError:
        try:
            from tsl.profiler.protobuf import xplane_pb2
        except ImportError:
            raise ImportError(
                "cannot import xplane_pb2 from tensorflow.tsl.profiler.protobuf or "
                "tsl.profiler.protobuf; install tensorflow (2.21 ships it)"
            ) from None
    return xplane_pb2


def load_xspace(path):
    """Parse the `.xplane.pb` file at `path` and return its XSpace message."""
    xspace = import_xplane_pb2().XSpace()
    with open(path, "rb") as f:
        xspace.ParseFromString(f.read())
    return xspace


@dataclasses.dataclass
class OpEvent:
    """One execution of a TensorFlow op on a host line, with times in picoseconds."""

    name: str
    type: str
    start_ps: int
    duration_ps: int
    self_ps: int = 0
    nested: bool = False

    @property
    def end_ps(self):
        return self.start_ps + self.duration_ps


def classify_op(name, top_level_ops, optimizer_scopes=OPTIMIZER_SCOPES):
    """Return the phase of the op `name`: forward, backward, optimizer or other.

    The rules look only at the op's name scopes, in this order:

    1. backward: the name begins with `gradient_tape/`, the scope under which
       `tf.GradientTape.gradient` builds the gradient ops.
    2. optimizer: the first scope is an optimizer's name, with or without the
       `_<n>` suffix of a repeated name and in any case (`sgd/`, `sgd_1/`, `SGD/`).
    3. other: the op has no name scope, or its first scope is the name of such
       a top-level op (TensorFlow puts an op's helper ops under its name, as in
       `Add/ReadVariableOp`). In Keras 3 these are the `Add` and
       `AssignVariableOp` that increment the optimizer's `iterations`, which run
       outside the optimizer's scope.
    4. forward: every other op, which is under the model's, a layer's or the
       loss's scope.

    `top_level_ops` is the set of op names without a scope in the same trace.
    """
    scope, _, _ = name.partition("/")
    if scope == "gradient_tape":
        return BACKWARD

    scopes = {s.lower() for s in optimizer_scopes}
    if "/" in name and _SCOPE_SUFFIX.sub("", scope).lower() in scopes:
        return OPTIMIZER

    if "/" not in name or scope in top_level_ops:
        return OTHER
    return FORWARD


def comparable_name(name, phase):
    """Return `name` with the optimizer scope's `_<n>` suffix removed.

    Keras numbers optimizers created in one process (`sgd`, `sgd_1`, ...), so
    the same update op has another name in each case; other scopes are kept.
    """
    if phase != OPTIMIZER:
        return name
    scope, _, rest = name.partition("/")
    return f"{_SCOPE_SUFFIX.sub('', scope)}/{rest}"


def stat_value(plane, stat):
    """Return an XStat's value, or the referenced string for a reference stat."""
    kind = stat.WhichOneof("value")
    if kind == "ref_value":
        return plane.stat_metadata[stat.ref_value].name
    return getattr(stat, kind) if kind else None


def event_stats(plane, event):
    """Return an event's stats and its metadata's stats as a name-to-value dict."""
    metadata = plane.event_metadata[event.metadata_id]
    stats = {}
    for stat in list(metadata.stats) + list(event.stats):
        stats[plane.stat_metadata[stat.metadata_id].name] = stat_value(plane, stat)
    return stats


def find_plane(xspace, name):
    """Return the plane called `name`, or None."""
    for plane in xspace.planes:
        if plane.name == name:
            return plane
    return None


def _event_start_ps(line, event):
    # Event offsets are relative to their line's timestamp, which is in ns.
    return line.timestamp_ns * 1000 + event.offset_ps


def step_windows(plane, step_name=STEP_ANNOTATION):
    """Return the (start_ps, end_ps) of each step annotation on `plane`, sorted.

    A step is an event named `step_name` that has a `step_num` stat. A step
    number seen twice counts once.
    """
    windows = {}
    for line in plane.lines:
        for event in line.events:
            if plane.event_metadata[event.metadata_id].name != step_name:
                continue
            stats = event_stats(plane, event)
            if STEP_NUM_STAT in stats:
                start = _event_start_ps(line, event)
                windows.setdefault(stats[STEP_NUM_STAT], (start, start + event.duration_ps))
    return sorted(windows.values())


def parse_op_event_name(metadata):
    """Return (op name, op type) if the event metadata is a TensorFlow op, else None.

    Op events are named `<op name>:<op type>` and have the op type as display
    name. Other host events (`ExecutorState::Process`, `EagerExecute`) have none.
    """
    op_type = metadata.display_name
    if not op_type or not metadata.name.endswith(":" + op_type):
        return None
    return metadata.name[: -len(op_type) - 1], op_type


def host_op_events(plane):
    """Return the op events of every line of `plane`, with self times filled in."""
    events = []
    for line in plane.lines:
        line_events = []
        for event in line.events:
            parsed = parse_op_event_name(plane.event_metadata[event.metadata_id])
            if parsed is not None:
                start = _event_start_ps(line, event)
                line_events.append(OpEvent(parsed[0], parsed[1], start, event.duration_ps))
        fill_self_times(line_events)
        events.extend(line_events)
    return events


def fill_self_times(events):
    """Set `self_ps` and `nested` of op events that ran on one thread.

    Events on one line either nest or do not overlap. An op's self time is its
    duration minus the time of the op events directly nested in it.
    """
    events.sort(key=lambda e: (e.start_ps, -e.duration_ps))
    open_events = []
    for event in events:
        event.self_ps = event.duration_ps
        while open_events and open_events[-1].end_ps <= event.start_ps:
            open_events.pop()

        if open_events:
            parent = open_events[-1]
            parent.self_ps -= min(event.end_ps, parent.end_ps) - event.start_ps
            event.nested = True
        open_events.append(event)


def in_windows(start_ps, windows):
    """Return True if `start_ps` lies in one of the sorted, disjoint `windows`."""
    index = bisect.bisect_right(windows, (start_ps, float("inf"))) - 1
    return index >= 0 and windows[index][0] <= start_ps < windows[index][1]


def summarize_trace(path, step_name=STEP_ANNOTATION, optimizer_scopes=OPTIMIZER_SCOPES, top_n=TOP_N):
    """Load the `.xplane.pb` file at `path` and return its summary (see summarize_xspace)."""
    summary = summarize_xspace(load_xspace(path), step_name, optimizer_scopes, top_n)
    summary["trace_path"] = str(path)
    return summary


def summarize_xspace(xspace, step_name=STEP_ANNOTATION, optimizer_scopes=OPTIMIZER_SCOPES, top_n=TOP_N):
    """Return a JSON-serializable summary of op time per step in `xspace`.

    Only host ops that start inside a step annotation count. Op time is a sum
    over threads, so it exceeds the step's wall time when ops run in parallel.
    Keys, with times in ms per step:

    - steps, step_ms: the step count and each step annotation's wall time.
    - op_time_ms_per_step: the time of the outermost op events.
    - phase_ms_per_step: self time by phase (see classify_op); the phases add
      up to op_time_ms_per_step.
    - op_type_ms_per_step: self time by op type, largest first.
    - ops: per op, keyed by comparable_name: name, type, phase,
      occurrences_per_step, self_ms_per_step, total_ms_per_step.
    - top_ops: the `top_n` ops with the largest self time.
    - gpu: per `/device:GPU:<n>` plane, see summarize_gpu_plane; empty on CPU.
    - hostnames, errors, warnings: as the XSpace records them.

    Raises ValueError if the host plane or the step annotations are missing.
    """
    host = find_plane(xspace, HOST_PLANE)
    if host is None:
        names = ", ".join(p.name for p in xspace.planes) or "none"
        raise ValueError(f"trace has no {HOST_PLANE} plane; its planes are: {names}")

    windows = step_windows(host, step_name)
    if not windows:
        raise ValueError(
            f"trace has no step annotations named {step_name!r} with a step_num stat; "
            "wrap each step in tf.profiler.experimental.Trace(name, step_num=i, _r=1)"
        )
    steps = len(windows)

    events = [e for e in host_op_events(host) if in_windows(e.start_ps, windows)]
    ops = aggregate_ops(events, steps, optimizer_scopes)

    summary = {
        "step_annotation": step_name,
        "steps": steps,
        "step_ms": [(end - start) / PS_PER_MS for start, end in windows],
        "op_time_ms_per_step": sum(e.duration_ps for e in events if not e.nested) / PS_PER_MS / steps,
        "phase_ms_per_step": sum_by(ops.values(), "phase", PHASES),
        "op_type_ms_per_step": sum_by(ops.values(), "type"),
        "ops": ops,
        "top_ops": top_entries(ops.values(), top_n),
        "gpu": {
            plane.name: summarize_gpu_plane(plane, steps, top_n)
            for plane in xspace.planes
            if plane.name.startswith(GPU_PLANE_PREFIX)
        },
        "hostnames": list(xspace.hostnames),
        "errors": list(xspace.errors),
        "warnings": list(xspace.warnings),
    }
    return summary


def aggregate_ops(events, steps, optimizer_scopes=OPTIMIZER_SCOPES):
    """Return the per-op table of summarize_xspace from op events of `steps` steps."""
    top_level_ops = {e.name for e in events if "/" not in e.name}
    ops = {}
    for event in events:
        phase = classify_op(event.name, top_level_ops, optimizer_scopes)
        key = comparable_name(event.name, phase)
        entry = ops.setdefault(
            key,
            {"name": event.name, "type": event.type, "phase": phase,
             "occurrences_per_step": 0.0, "self_ms_per_step": 0.0, "total_ms_per_step": 0.0},
        )
        entry["occurrences_per_step"] += 1 / steps
        entry["self_ms_per_step"] += event.self_ps / PS_PER_MS / steps
        entry["total_ms_per_step"] += event.duration_ps / PS_PER_MS / steps
    return ops


def sum_by(entries, field, keys=(), value="self_ms_per_step"):
    """Return the sum of `value` over `entries` grouped by `field`, largest first.

    Every key in `keys` is present, with 0.0 if no entry has it.
    """
    totals = collections.Counter({key: 0.0 for key in keys})
    for entry in entries:
        totals[entry[field]] += entry[value]
    return dict(sorted(totals.items(), key=lambda item: -item[1]))


def top_entries(entries, top_n, value="self_ms_per_step"):
    """Return copies of the `top_n` entries with the largest `value`."""
    ranked = sorted(entries, key=lambda entry: -entry[value])
    return [dict(entry) for entry in ranked[:top_n]]


def summarize_gpu_plane(plane, steps, top_n=TOP_N):
    """Return kernel and copy time per step on one `/device:GPU:<n>` plane.

    Only `Stream #` lines count, so derived lines that repeat the same work
    (xprof adds "XLA Ops" and "TensorFlow Ops") and "CUPTI overhead" are left
    out. GPU events are asynchronous to the host, so they are not matched to
    step annotations. The profile still contains only the profiled steps'
    work, because each step reads its loss back to the host before its
    annotation ends. Kernels on different streams can overlap, so kernel time is busy time
    summed over streams. Keys, in ms per step:

    - kernel_ms_per_step and kernel_count_per_step: all kernels.
    - top_kernels: the `top_n` (kernel, tf_op) pairs by time, with name,
      tf_op, ms_per_step and count_per_step.
    - memcpy_ms_per_step: copy time by kind (MemcpyH2D, MemcpyD2H, ...).
    - h2d_ms_per_step: host-to-device copy time (MemcpyH2D).
    - other_ms_per_step: other stream activity, such as Memset.
    """
    # NOTE: unverified on GPU hardware. The names follow the CUPTI collector in
    # OpenXLA (cupti_collector.cc) and are tested only on synthetic planes.
    kernels = {}
    memcpy = collections.Counter()
    other_ps = 0
    for line in plane.lines:
        if not line.name.startswith(GPU_STREAM_LINE_PREFIX):
            continue

        for event in line.events:
            name = plane.event_metadata[event.metadata_id].name
            stats = event_stats(plane, event)
            if name.startswith("Memcpy") or MEMCPY_DETAILS_STAT in stats:
                memcpy[name] += event.duration_ps
            elif KERNEL_DETAILS_STAT in stats:
                tf_op = stats.get(TF_OP_STAT, "")
                entry = kernels.setdefault(
                    (name, tf_op), {"name": name, "tf_op": tf_op, "ms_per_step": 0.0, "count_per_step": 0.0}
                )
                entry["ms_per_step"] += event.duration_ps / PS_PER_MS / steps
                entry["count_per_step"] += 1 / steps
            else:
                other_ps += event.duration_ps

    return {
        "kernel_ms_per_step": sum(k["ms_per_step"] for k in kernels.values()),
        "kernel_count_per_step": sum(k["count_per_step"] for k in kernels.values()),
        "top_kernels": top_entries(kernels.values(), top_n, "ms_per_step"),
        "memcpy_ms_per_step": {kind: ps / PS_PER_MS / steps for kind, ps in memcpy.most_common()},
        "h2d_ms_per_step": memcpy[MEMCPY_H2D] / PS_PER_MS / steps,
        "other_ms_per_step": other_ps / PS_PER_MS / steps,
    }


def compare_to_full(full, other, min_saved_ms=0.0):
    """Return the ops that a strategy removed or shrank, against the `full` summary.

    Both arguments are summaries of the same model, optimizer and batch size.
    Ops match by their comparable_name. Returns a dict with:

    - saved_ms_per_step: full's op time minus the strategy's op time.
    - phase_saved_ms_per_step: the same by phase.
    - removed: ops in full that the strategy does not run.
    - shrunk: ops in both whose self time fell by more than `min_saved_ms`.
    - added: the names of ops that only the strategy runs.

    Each removed or shrunk entry has op, type, phase, full_ms_per_step,
    ms_per_step and saved_ms_per_step, largest saving first. With a few
    profiled steps many ops differ by run-to-run noise, so a small saving in
    `shrunk` is not evidence that the strategy shrank the op.
    """
    removed, shrunk = [], []
    for key, entry in full["ops"].items():
        strategy_entry = other["ops"].get(key)
        ms = strategy_entry["self_ms_per_step"] if strategy_entry else 0.0
        row = {
            "op": key,
            "type": entry["type"],
            "phase": entry["phase"],
            "full_ms_per_step": entry["self_ms_per_step"],
            "ms_per_step": ms,
            "saved_ms_per_step": entry["self_ms_per_step"] - ms,
        }
        if strategy_entry is None:
            removed.append(row)
        elif row["saved_ms_per_step"] > min_saved_ms:
            shrunk.append(row)

    phases = full["phase_ms_per_step"]
    return {
        "saved_ms_per_step": full["op_time_ms_per_step"] - other["op_time_ms_per_step"],
        "phase_saved_ms_per_step": {p: phases.get(p, 0.0) - other["phase_ms_per_step"].get(p, 0.0) for p in PHASES},
        "removed": sorted(removed, key=lambda row: -row["saved_ms_per_step"]),
        "shrunk": sorted(shrunk, key=lambda row: -row["saved_ms_per_step"]),
        "added": sorted(set(other["ops"]) - set(full["ops"])),
    }


def ops_per_step(summary, phase=None, op_type=None):
    """Return how many op executions per step match `phase` and `op_type` (None matches all)."""
    return sum(
        entry["occurrences_per_step"]
        for entry in summary["ops"].values()
        if (phase is None or entry["phase"] == phase) and (op_type is None or entry["type"] == op_type)
    )
