"""Option parsing of `pytest bench/`: valid values and the ConfigError for each invalid one."""

import pytest

from bench.options import BenchOptions, add_options, parse_options
from models.errors import ConfigError


class RecordingParser:
    """The part of pytest's parser that add_options uses. It keeps each option's default."""

    def __init__(self):
        self.defaults = {}

    def getgroup(self, name):
        return self

    def addoption(self, name, default=None, **kwargs):
        self.defaults[name] = default


def registered_defaults():
    parser = RecordingParser()
    add_options(parser)
    return parser.defaults


DEFAULTS = registered_defaults()


def parse(**overrides):
    """Parse DEFAULTS with `overrides` (keyword names without "--", "_" for "-") and no GPU."""
    values = dict(DEFAULTS)
    for key, value in overrides.items():
        values["--" + key.replace("_", "-")] = value
    return parse_options(values.__getitem__, physical_gpus=[])


def parse_error(**overrides):
    """Return the message of the ConfigError that parsing with `overrides` raises."""
    with pytest.raises(ConfigError) as raised:
        parse(**overrides)
    return str(raised.value)


def test_registered_defaults():
    assert DEFAULTS["--models"] == "mlp-sequential,mlp-subclassed"
    assert DEFAULTS["--strategies"] is None  # per model
    assert DEFAULTS["--batch-sizes"] is None  # per model
    assert DEFAULTS["--device"] == "cpu,gpu"
    assert DEFAULTS["--fine-tune-at"] is None  # per model
    assert DEFAULTS["--optimizer"] == "sgd"
    assert DEFAULTS["--compile-mode"] == "graph"
    assert DEFAULTS["--precision"] == "float32"
    assert DEFAULTS["--data-dir"] is None


def test_defaults_parse():
    options = parse()

    assert isinstance(options, BenchOptions)
    assert [plan.name for plan in options.models] == ["mlp-sequential", "mlp-subclassed"]
    for plan in options.models:
        assert [spec.name for spec in plan.strategies] == ["full", "frozen-prefix", "dense2-only"]
        assert plan.batch_sizes == [32, 256]
        assert plan.fine_tune_ats == [2]
    assert options.devices == ["cpu", "gpu"]
    assert options.optimizer == "sgd"
    assert options.data_dir is None


def test_default_case_count():
    # 2 models x 3 strategies x 2 batch sizes x 2 devices.
    assert len(list(parse().case_parameters())) == 24


def test_values_are_stripped():
    options = parse(models=" mlp-subclassed ", batch_sizes="8, 16", device="cpu")
    assert [plan.name for plan in options.models] == ["mlp-subclassed"]
    assert options.models[0].batch_sizes == [8, 16]
    assert options.devices == ["cpu"]


@pytest.mark.parametrize("fine_tune_at", ["0", "4"])
def test_fine_tune_at_bounds_accepted(fine_tune_at):
    assert parse(fine_tune_at=fine_tune_at).models[0].fine_tune_ats == [int(fine_tune_at)]


def test_fine_tune_at_list():
    assert parse(fine_tune_at="0,2,4").models[0].fine_tune_ats == [0, 2, 4]


def test_fine_tune_sweep_mlp():
    assert parse(fine_tune_sweep=True).models[0].fine_tune_ats == [0, 1, 2, 3, 4]


def test_sweep_values_of_base():
    from bench.options import sweep_fine_tune_ats

    assert sweep_fine_tune_ats(154) == [0, 25, 50, 75, 100, 125, 150, 154]


def test_unknown_compile_mode():
    message = parse_error(compile_mode="graph,jit")
    assert "'jit'" in message
    assert "eager, graph, xla" in message


def test_unknown_precision():
    message = parse_error(precision="float16")
    assert "'float16'" in message
    assert "mixed_bfloat16" in message


def test_base_frozen_needs_base():
    assert "base-frozen" in parse_error(strategies="base-frozen")


def test_adam_and_data_dir_accepted(tmp_path):
    options = parse(optimizer="adam", data_dir=str(tmp_path))
    assert options.optimizer == "adam"
    assert options.data_dir == str(tmp_path)


def test_unknown_strategy():
    message = parse_error(strategies="full,bogus")
    assert "'bogus'" in message
    assert "full, frozen-prefix, or <layer>[+<layer>...]-only" in message
    assert "base-frozen" in message


def test_unknown_model():
    message = parse_error(models="mlp-sequential,resnet")
    assert "'resnet'" in message
    assert "mlp-sequential, mlp-subclassed" in message


def test_fine_tune_at_five():
    message = parse_error(fine_tune_at="5")
    assert "fine_tune_at=5" in message
    assert "0 to 4" in message


def test_fine_tune_at_minus_one():
    message = parse_error(fine_tune_at="-1")
    assert "fine_tune_at=-1" in message
    assert "0 to 4" in message


def test_fine_tune_at_minus_one_range():
    assert "0 to 4" in parse_error(fine_tune_at="-1")


def test_fine_tune_at_not_integer():
    assert "--fine-tune-at='two' is not an integer" in parse_error(fine_tune_at="two")


@pytest.mark.parametrize("batch_sizes", ["0", "-3", "32,0"])
def test_batch_size_not_positive(batch_sizes):
    value = batch_sizes.split(",")[-1]
    message = parse_error(batch_sizes=batch_sizes)
    assert f"--batch-sizes={value} is invalid" in message
    assert "1 or more" in message


def test_batch_size_not_integer():
    assert "--batch-sizes='1.5' is not an integer" in parse_error(batch_sizes="1.5")


def test_unknown_layer():
    message = parse_error(strategies="dense9-only")
    assert "'dense9'" in message
    assert "flatten, dense1, dense2, dense3" in message


def test_unknown_optimizer():
    message = parse_error(optimizer="rmsprop")
    assert "'rmsprop'" in message
    assert "sgd, adam" in message


def test_unknown_device():
    message = parse_error(device="cpu,tpu")
    assert "'tpu'" in message
    assert "cpu, gpu" in message


def test_gpu_only_without_gpu():
    message = parse_error(device="gpu")
    assert "--device=gpu" in message
    assert "no GPU" in message


def test_gpu_only_with_fake_gpu():
    values = dict(DEFAULTS, **{"--device": "gpu"})
    options = parse_options(values.__getitem__, physical_gpus=["fake GPU"])
    assert options.devices == ["gpu"]


@pytest.mark.parametrize("option", ["--models", "--strategies", "--batch-sizes", "--device"])
def test_empty_list_rejected(option):
    values = dict(DEFAULTS, **{option: " , "})
    with pytest.raises(ConfigError) as raised:
        parse_options(values.__getitem__, physical_gpus=[])
    assert f"{option}=' , ' is empty" in str(raised.value)


def test_fine_tune_at_ignored_without_prefix():
    """fine_tune_at is checked against the layers only when frozen-prefix runs."""
    assert parse(strategies="full,dense2-only", fine_tune_at="9").models[0].fine_tune_ats == [9]


@pytest.mark.parametrize("text", ["", "1,,2", "8,8"])
def test_batch_list_rejected(text):
    message = parse_error(batch_sizes=text)
    assert f"--batch-sizes={text!r}" in message


def test_float16_only_on_cpu_rejected():
    message = parse_error(precision="mixed_float16", device="cpu")
    assert "--precision=mixed_float16" in message
    assert "GPU only" in message


def test_memory_sweep_below_batch():
    message = parse_error(memory_sweep="16", batch_sizes="64")
    assert "--memory-sweep=16 is below the smallest batch size (64)" in message


def test_range_error_names_option_model():
    assert parse_error(fine_tune_at="5").startswith("--models=mlp-sequential: ")
