"""Device names, TensorFlow device strings and skip reasons, with fake GPU lists."""

import pytest

from bench.devices import check_explicit_request, parse_device, skip_reason, tf_device
from models.errors import ConfigError

FAKE_GPUS = ["PhysicalDevice(name='/physical_device:GPU:0', device_type='GPU')"]


def test_gpu_skipped_without_gpu():
    reason = skip_reason("gpu", physical_devices=[])
    assert reason is not None
    assert "no GPU" in reason
    assert "--device=cpu" in reason


def test_gpu_runs_with_gpu():
    assert skip_reason("gpu", physical_devices=FAKE_GPUS) is None


@pytest.mark.parametrize("physical_devices", [[], FAKE_GPUS])
def test_cpu_never_skipped(physical_devices):
    assert skip_reason("cpu", physical_devices=physical_devices) is None


def test_skip_reason_unknown_device():
    with pytest.raises(ConfigError) as raised:
        skip_reason("tpu", physical_devices=[])
    assert "'tpu'" in str(raised.value)


def test_gpu_only_request_rejected():
    with pytest.raises(ConfigError) as raised:
        check_explicit_request(["gpu"], [])
    assert "--device=gpu" in str(raised.value)
    assert "no GPU" in str(raised.value)


@pytest.mark.parametrize("names", [["cpu", "gpu"], ["cpu"], ["gpu", "cpu"]])
def test_request_with_cpu_accepted(names):
    check_explicit_request(names, [])


def test_gpu_request_with_gpu_accepted():
    check_explicit_request(["gpu"], FAKE_GPUS)


@pytest.mark.parametrize(("name", "device"), [("cpu", "/CPU:0"), ("gpu", "/GPU:0")])
def test_tf_device_names(name, device):
    assert tf_device(name) == device


@pytest.mark.parametrize("name", ["tpu", "GPU", "cuda", ""])
def test_tf_device_rejects_unknown(name):
    with pytest.raises(ConfigError) as raised:
        tf_device(name)
    assert repr(name) in str(raised.value)
    assert "cpu, gpu" in str(raised.value)


@pytest.mark.parametrize("name", ["cpu", "gpu"])
def test_parse_device_known(name):
    assert parse_device(name) == name
