"""Tests of the trace breakdown: synthetic XSpaces with known times, and real captures."""

import json

import pytest

from bench import breakdown
from bench.breakdown import BACKWARD, FORWARD, OPTIMIZER, OTHER
from bench.profiler import capture_trace
from models.datasets import device_batch, synthetic_dataset
from models.registry import build_model
from models.strategies import apply_strategy, parse_strategy
from models.train_step import make_optimizer, make_train_step

US = 1_000_000  # picoseconds per microsecond
MS_PER_US = 1e-3


class PlaneBuilder:
    """An XPlane under construction, with event and stat metadata interned as the profiler writes them."""

    def __init__(self, xspace, name):
        self.plane = xspace.planes.add(id=len(xspace.planes), name=name)
        self._events = {}
        self._stats = {}

    def stat_id(self, name):
        if name not in self._stats:
            metadata_id = len(self._stats) + 1
            self.plane.stat_metadata[metadata_id].id = metadata_id
            self.plane.stat_metadata[metadata_id].name = name
            self._stats[name] = metadata_id
        return self._stats[name]

    def event_id(self, name, display_name=""):
        if name not in self._events:
            metadata_id = len(self._events) + 1
            metadata = self.plane.event_metadata[metadata_id]
            metadata.id = metadata_id
            metadata.name = name
            metadata.display_name = display_name
            self._events[name] = metadata_id
        return self._events[name]

    def line(self, name, timestamp_ns=0):
        return self.plane.lines.add(id=len(self.plane.lines), name=name, timestamp_ns=timestamp_ns)

    def add(self, line, name, start_us, duration_us, display_name="", **stats):
        """Add an event. Int stats become int64 values, and str stats reference a stat metadata name."""
        event = line.events.add(
            metadata_id=self.event_id(name, display_name),
            offset_ps=int(start_us * US),
            duration_ps=int(duration_us * US),
        )
        for key, value in stats.items():
            stat = event.stats.add(metadata_id=self.stat_id(key))
            if isinstance(value, str):
                stat.ref_value = self.stat_id(value)
            else:
                stat.int64_value = value
        return event

    def add_op(self, line, name, op_type, start_us, duration_us):
        return self.add(line, f"{name}:{op_type}", start_us, duration_us, display_name=op_type)


def synthetic_cpu_xspace():
    """Return an XSpace of two 100 us steps whose op times are known.

    Per step: forward 10 us, backward 20 us, optimizer 5 us, other 2 us, and a
    35 us `fn` call op (forward) with a 10 us MatMul nested in it. One op runs
    after the last step and must not count.
    """
    xspace = breakdown.import_xplane_pb2().XSpace()
    xspace.hostnames.append("testhost")
    host = PlaneBuilder(xspace, breakdown.HOST_PLANE)

    # The line timestamp shifts every event on it; offsets are relative to it.
    python = host.line("python", timestamp_ns=1000)
    compute = host.line("tf_Compute/1", timestamp_ns=1000)
    for step in range(2):
        base = step * 100
        host.add(python, "train", base, 100, step_num=step, _r=1)
        host.add(compute, "ExecutorState::Process", base, 90)
        host.add_op(compute, "model_1/dense1_1/Relu", "_FusedMatMul", base + 1, 10)
        host.add_op(compute, "gradient_tape/model_1/dense1_1/MatMul/MatMul", "MatMul", base + 12, 20)
        host.add_op(compute, "sgd/AssignSubVariableOp", "AssignSubVariableOp", base + 33, 5)
        host.add_op(compute, "Add", "AddV2", base + 39, 1)
        host.add_op(compute, "Add/ReadVariableOp", "ReadVariableOp", base + 41, 1)
        host.add_op(compute, "model_1/fn", "PartitionedCall", base + 50, 35)
        host.add_op(compute, "model_1/fn/inner/MatMul", "MatMul", base + 55, 10)

    host.add_op(compute, "model_1/late/Relu", "Relu", 250, 40)
    return xspace


def add_gpu_plane(xspace):
    """Add a /device:GPU:0 plane: per step (of two), two 4 us kernels, a 3 us H2D and a 1 us D2H copy."""
    gpu = PlaneBuilder(xspace, "/device:GPU:0")
    compute = gpu.line("Stream #7(Kernel)")
    copies = gpu.line("Stream #14(MemcpyH2D,MemcpyD2H)")
    derived = gpu.line("TensorFlow Ops")
    overhead = gpu.line("CUPTI overhead")
    for step in range(2):
        base = step * 100
        for i in range(2):
            gpu.add(compute, "volta_sgemm_128x64_nn", base + 10 * i, 4,
                    kernel_details="regs:64", tf_op="model_1/dense1_1/MatMul:MatMul")
        gpu.add(compute, "Memset", base + 30, 2)
        gpu.add(copies, "MemcpyH2D", base + 40, 3, memcpy_details="size:1024")
        gpu.add(copies, "MemcpyD2H", base + 50, 1, memcpy_details="size:4")
        # Derived lines repeat stream work, so counting them would double it.
        gpu.add(derived, "model_1/dense1_1/MatMul", base, 8)
        gpu.add(overhead, "CUPTI overhead", base, 50)
    return xspace


@pytest.fixture(scope="module")
def cpu_summary():
    return breakdown.summarize_xspace(synthetic_cpu_xspace())


@pytest.fixture(scope="module")
def gpu_summary():
    return breakdown.summarize_xspace(add_gpu_plane(synthetic_cpu_xspace()))["gpu"]["/device:GPU:0"]


def test_synthetic_step_count(cpu_summary):
    assert cpu_summary["steps"] == 2


def test_synthetic_step_wall_times(cpu_summary):
    assert cpu_summary["step_ms"] == pytest.approx([100 * MS_PER_US, 100 * MS_PER_US])


def test_synthetic_op_time_excludes_late_op(cpu_summary):
    # Outermost ops: 10 + 20 + 5 + 1 + 1 + 35 us. The nested MatMul is inside fn.
    assert cpu_summary["op_time_ms_per_step"] == pytest.approx(72 * MS_PER_US)


def test_synthetic_phase_times(cpu_summary):
    expected = {FORWARD: 45 * MS_PER_US, BACKWARD: 20 * MS_PER_US, OPTIMIZER: 5 * MS_PER_US, OTHER: 2 * MS_PER_US}

    assert cpu_summary["phase_ms_per_step"] == pytest.approx(expected)


def test_synthetic_nested_self_time(cpu_summary):
    call = cpu_summary["ops"]["model_1/fn"]

    assert call["self_ms_per_step"] == pytest.approx(25 * MS_PER_US)
    assert call["total_ms_per_step"] == pytest.approx(35 * MS_PER_US)


def test_synthetic_op_type_times(cpu_summary):
    by_type = cpu_summary["op_type_ms_per_step"]

    assert by_type["MatMul"] == pytest.approx(30 * MS_PER_US)
    assert list(by_type)[0] == "MatMul"


def test_synthetic_top_ops_order(cpu_summary):
    names = [entry["name"] for entry in cpu_summary["top_ops"]]

    assert names[:2] == ["model_1/fn", "gradient_tape/model_1/dense1_1/MatMul/MatMul"]


def test_synthetic_occurrences_per_step(cpu_summary):
    assert cpu_summary["ops"]["sgd/AssignSubVariableOp"]["occurrences_per_step"] == pytest.approx(1.0)


def test_summary_is_json_serializable(cpu_summary):
    assert json.loads(json.dumps(cpu_summary)) == cpu_summary


def test_missing_host_plane_raises():
    xspace = breakdown.import_xplane_pb2().XSpace()
    xspace.planes.add(name="/device:GPU:0")

    with pytest.raises(ValueError, match="no /host:CPU plane"):
        breakdown.summarize_xspace(xspace)


def test_missing_step_annotations_raises():
    xspace = synthetic_cpu_xspace()

    with pytest.raises(ValueError, match="no step annotations named 'step'"):
        breakdown.summarize_xspace(xspace, step_name="step")


@pytest.mark.parametrize(
    "name, phase",
    [
        ("gradient_tape/mlp_sequential_1/dense1_1/MatMul/MatMul", BACKWARD),
        ("sgd/AssignSubVariableOp_1", OPTIMIZER),
        ("sgd_3/Mul", OPTIMIZER),
        ("SGD/update/ResourceApplyGradientDescent", OPTIMIZER),
        ("adam/Sqrt_2", OPTIMIZER),
        ("Add", OTHER),
        ("Add/ReadVariableOp", OTHER),
        ("AssignVariableOp", OTHER),
        ("mlp_sequential_1/dense1_1/Relu", FORWARD),
        ("sparse_categorical_crossentropy/Sum", FORWARD),
        ("sgd_layer/dense/MatMul", FORWARD),
    ],
)
def test_classify_op_rules(name, phase):
    assert breakdown.classify_op(name, top_level_ops={"Add", "AssignVariableOp"}) == phase


def test_comparable_name_drops_optimizer_suffix():
    assert breakdown.comparable_name("sgd_2/Mul_1", OPTIMIZER) == "sgd/Mul_1"


def test_comparable_name_keeps_other_scopes():
    assert breakdown.comparable_name("mlp_sequential_1/dense1_1/Relu", FORWARD) == "mlp_sequential_1/dense1_1/Relu"


def test_gpu_kernel_time(gpu_summary):
    assert gpu_summary["kernel_ms_per_step"] == pytest.approx(8 * MS_PER_US)
    assert gpu_summary["kernel_count_per_step"] == pytest.approx(2.0)


def test_gpu_top_kernel_names_tf_op(gpu_summary):
    top = gpu_summary["top_kernels"][0]

    assert top["name"] == "volta_sgemm_128x64_nn"
    assert top["tf_op"] == "model_1/dense1_1/MatMul:MatMul"


def test_gpu_h2d_copy_time(gpu_summary):
    assert gpu_summary["h2d_ms_per_step"] == pytest.approx(3 * MS_PER_US)


def test_gpu_copy_time_by_kind(gpu_summary):
    expected = {"MemcpyH2D": 3 * MS_PER_US, "MemcpyD2H": 1 * MS_PER_US}

    assert gpu_summary["memcpy_ms_per_step"] == pytest.approx(expected)


def test_gpu_other_stream_activity(gpu_summary):
    assert gpu_summary["other_ms_per_step"] == pytest.approx(2 * MS_PER_US)


def test_cpu_trace_has_no_gpu_section(cpu_summary):
    assert cpu_summary["gpu"] == {}


def summary_of(ops, op_time):
    """Return a minimal summary with the given {name: (phase, self ms)} ops."""
    entries = {
        name: {"name": name, "type": "MatMul", "phase": phase, "self_ms_per_step": ms, "occurrences_per_step": 1.0}
        for name, (phase, ms) in ops.items()
    }
    phases = breakdown.sum_by(entries.values(), "phase", breakdown.PHASES)
    return {"ops": entries, "op_time_ms_per_step": op_time, "phase_ms_per_step": phases}


def test_compare_finds_removed_shrunk_added():
    full = summary_of({"a": (BACKWARD, 2.0), "b": (FORWARD, 1.0), "c": (FORWARD, 1.0)}, 4.0)
    other = summary_of({"b": (FORWARD, 0.5), "c": (FORWARD, 0.99), "d": (OTHER, 0.1)}, 1.59)

    comparison = breakdown.compare_to_full(full, other, min_saved_ms=0.05)

    assert [row["op"] for row in comparison["removed"]] == ["a"]
    assert [row["op"] for row in comparison["shrunk"]] == ["b"]
    assert comparison["added"] == ["d"]
    assert comparison["saved_ms_per_step"] == pytest.approx(2.41)
    assert comparison["phase_saved_ms_per_step"][BACKWARD] == pytest.approx(2.0)


def warm_step(model_name, strategy):
    """Return a warmed-up step of `model_name` under `strategy` and a batch of 8."""
    model = build_model(model_name)
    plan = apply_strategy(model, parse_strategy(strategy))
    train_step = make_train_step(model, plan.variables, make_optimizer("sgd"))
    images, labels = device_batch(synthetic_dataset(8), 8, "/CPU:0")
    train_step(images, labels)
    return train_step, images, labels


@pytest.fixture(scope="module")
def real_summaries(tmp_path_factory):
    """Return summaries of 3-step captures of the sequential MLP: full and frozen-prefix."""
    summaries = {}
    for strategy in ("full", "frozen-prefix"):
        logdir = tmp_path_factory.mktemp("trace") / strategy
        result = capture_trace(*warm_step("mlp-sequential", strategy), logdir, steps=3)
        assert result.ok, result.error
        summaries[strategy] = breakdown.summarize_trace(result.xplane_path)
    return summaries


def test_real_capture_step_count(real_summaries):
    assert real_summaries["full"]["steps"] == 3


def test_real_phases_sum_to_total(real_summaries):
    summary = real_summaries["full"]
    phase_sum = sum(summary["phase_ms_per_step"].values())

    assert phase_sum == pytest.approx(summary["op_time_ms_per_step"], rel=0.05)


def test_real_capture_has_every_phase(real_summaries):
    phases = real_summaries["full"]["phase_ms_per_step"]

    for phase in breakdown.PHASES:
        assert phases[phase] > 0, phase


def test_real_summary_is_json_serializable(real_summaries):
    summary = real_summaries["full"]

    assert json.loads(json.dumps(summary)) == summary


def test_frozen_prefix_removes_dense1_gradient(real_summaries):
    comparison = breakdown.compare_to_full(real_summaries["full"], real_summaries["frozen-prefix"])
    removed = [row["op"] for row in comparison["removed"]]

    assert "gradient_tape/mlp_sequential_1/dense1_1/MatMul/MatMul" in removed


def test_frozen_prefix_adds_no_ops(real_summaries):
    # Keras numbers the two optimizers (sgd_<n>), and comparable names still match.
    comparison = breakdown.compare_to_full(real_summaries["full"], real_summaries["frozen-prefix"])

    assert comparison["added"] == []


def test_xprof_op_stats_match(real_summaries):
    raw_to_tool_data = pytest.importorskip("xprof.convert.raw_to_tool_data")
    summary = real_summaries["full"]
    data, _ = raw_to_tool_data.xspace_to_tool_data([summary["trace_path"]], "framework_op_stats", {})
    table = json.loads(data)[0]
    columns = [column["id"] for column in table["cols"]]
    rows = [dict(zip(columns, [cell["v"] for cell in row["c"]])) for row in table["rows"]]
    xprof_ops = {row["operation"]: row for row in rows if row["host_or_device"] == "Host"}

    for entry in summary["ops"].values():
        row = xprof_ops[entry["name"]]
        # xprof reports totals over the whole profile in microseconds.
        assert entry["self_ms_per_step"] * summary["steps"] * 1e3 == pytest.approx(row["total_self_time"], rel=1e-6), entry["name"]
        assert entry["occurrences_per_step"] * summary["steps"] == pytest.approx(row["occurrences"]), entry["name"]
