"""The transfer-learning model: spec, weights lookup, strategies and BatchNormalization.

Every model here is MobileNetV2 at 32x32, the smallest input Keras accepts, with
batches of 2. Tracing a step function still takes several seconds, so the model
is built once per module, each strategy is trained once, and each run compares
the variables with the snapshot taken at its start.
"""

import dataclasses
import os

import keras
import numpy as np
import pytest

from models import mobilenet
from models.datasets import device_batch, synthetic_image_dataset
from models.errors import ConfigError
from models.registry import (
    BASE_LAYERS,
    BINARY_LABELS,
    MODEL_BUILDERS,
    build_model,
    model_spec,
    training_data,
)
from models.strategies import apply_strategy, fine_tune_base, format_plan, parse_strategy
from models.train_step import check_updated_variables, make_optimizer, make_train_step

IMAGE_SIZE = 32
BATCH_SIZE = 2
TRAINING_STEPS = 3
FINE_TUNE_AT = 100
HEAD_VARIABLES = ["head/kernel", "head/bias"]
BN_VARIABLES = ("gamma", "beta", "moving_mean", "moving_variance")
BN_STATISTICS = ("moving_mean", "moving_variance")
# The Dropout layer's SeedGenerator state, which every training-mode call advances.
SEED_STATE = "seed_generator/seed_generator_state"


@dataclasses.dataclass
class TrainingRun:
    """Variable values before and after TRAINING_STEPS steps, keyed by variable path."""

    initial: dict
    final: dict
    tracing_count: int
    state_written: list  # paths of state variables the traced step writes

    def changed(self, path):
        return not np.array_equal(self.initial[path], self.final[path])


def snapshot(model):
    return {v.path: v.numpy().copy() for v in model.variables}


def bn_layers(layers):
    return [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization)]


def bn_stat_paths(layers):
    return [f"{layer.name}/{name}" for layer in bn_layers(layers) for name in BN_STATISTICS]


@pytest.fixture(scope="module")
def model():
    keras.utils.set_random_seed(0)
    return build_model("mobilenetv2", image_size=IMAGE_SIZE)


@pytest.fixture(scope="module")
def base(model):
    return fine_tune_base(model)


@pytest.fixture(scope="module")
def batch():
    dataset = synthetic_image_dataset(BATCH_SIZE, IMAGE_SIZE, seed=0)
    return device_batch(dataset, BATCH_SIZE, "/CPU:0")


def train(model, plan, batch):
    """Run TRAINING_STEPS SGD steps of `plan` with the model's binary cross-entropy loss."""
    images, labels = batch
    loss = model_spec("mobilenetv2", image_size=IMAGE_SIZE).make_loss()
    train_step = make_train_step(model, plan.variables, make_optimizer("sgd"), loss=loss)

    initial = snapshot(model)
    for _ in range(TRAINING_STEPS):
        train_step(images, labels)
    final = snapshot(model)

    # Also checks that the optimizer writes exactly plan.variables.
    state_written = check_updated_variables(train_step, model, plan, images, labels)
    return TrainingRun(
        initial, final, train_step.experimental_get_tracing_count(), [v.path for v in state_written]
    )


@pytest.fixture(scope="module")
def runs(model, batch):
    """Return a function that trains one strategy on the shared model, once per module."""
    cache = {}

    def run(strategy):
        if strategy not in cache:
            plan = apply_strategy(model, parse_strategy(strategy), fine_tune_at=FINE_TUNE_AT)
            cache[strategy] = train(model, plan, batch)
        return cache[strategy]

    return run


# Spec and registry.

def test_spec_fields():
    spec = model_spec("mobilenetv2", image_size=IMAGE_SIZE)
    assert spec.input_shape == (IMAGE_SIZE, IMAGE_SIZE, 3)
    assert spec.label_kind == BINARY_LABELS
    assert spec.fine_tune_layers == BASE_LAYERS
    assert spec.default_fine_tune_at == FINE_TUNE_AT


def test_spec_loss_from_logits():
    loss = model_spec("mobilenetv2").make_loss()
    assert isinstance(loss, keras.losses.BinaryCrossentropy)
    assert loss.get_config()["from_logits"] is True


def test_spec_default_image_size():
    assert model_spec("mobilenetv2").input_shape == (96, 96, 3)


def test_base_layer_count(base):
    assert len(base.layers) == mobilenet.BASE_LAYER_COUNT == 154


def test_model_layers(model, base):
    names = [layer.name for layer in model.layers]
    assert names == ["images", base.name, "pooling", "dropout", "head"]


def test_head_outputs_one_logit(model):
    assert model.output_shape == (None, 1)


def test_default_models_are_mlps():
    assert "mobilenetv2" not in MODEL_BUILDERS


def test_mlp_rejects_image_size():
    with pytest.raises(ConfigError) as raised:
        build_model("mlp-sequential", image_size=IMAGE_SIZE)
    assert "image_size" in str(raised.value)


@pytest.mark.parametrize("image_size", [16, 31, "96", 96.0])
def test_invalid_image_size(image_size):
    with pytest.raises(ConfigError) as raised:
        model_spec("mobilenetv2", image_size=image_size)
    assert f"image_size={image_size!r}" in str(raised.value)


def test_invalid_weights():
    with pytest.raises(ConfigError) as raised:
        model_spec("mobilenetv2", weights="imagenet21k")
    assert "'imagenet21k'" in str(raised.value)


# Data.

def test_training_data_images(batch):
    images, labels = batch
    assert images.shape == (BATCH_SIZE, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert images.dtype.name == "float32"
    assert labels.dtype.name == "float32"


def test_training_data_ranges():
    dataset = training_data(model_spec("mobilenetv2", image_size=IMAGE_SIZE), min_samples=64)
    assert dataset.images.min() >= -1.0
    assert dataset.images.max() <= 1.0
    assert set(np.unique(dataset.labels)) == {0.0, 1.0}
    assert dataset.source == "synthetic"


def test_training_data_seeded():
    first = synthetic_image_dataset(4, IMAGE_SIZE, seed=3)
    second = synthetic_image_dataset(4, IMAGE_SIZE, seed=3)
    assert np.array_equal(first.images, second.images)
    assert np.array_equal(first.labels, second.labels)


def test_training_data_rejects_data_dir(tmp_path):
    with pytest.raises(ConfigError) as raised:
        training_data(model_spec("mobilenetv2"), data_dir=str(tmp_path))
    assert str(tmp_path) in str(raised.value)


# Weights: the lookup never downloads.

@pytest.fixture
def no_download(monkeypatch):
    """Make any download attempt by keras.applications fail the test."""

    def get_file(*args, **kwargs):
        raise AssertionError(f"keras.utils.get_file called with {args} {kwargs}")

    monkeypatch.setattr(keras.src.utils.file_utils, "get_file", get_file)


def test_weights_fall_back_without_cache(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    built = mobilenet.build_mobilenet(IMAGE_SIZE, weights="imagenet")

    assert built.weights_source.weights is None
    assert built.weights_source.path is None
    assert str(tmp_path) in built.weights_source.detail


def test_weights_none_by_default(model):
    assert model.weights_source.weights is None


def test_weights_loaded_from_cache(tmp_path, monkeypatch, no_download):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    saved = keras.applications.MobileNetV2(input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), include_top=False, weights=None)
    path = tmp_path / "models" / mobilenet.imagenet_weights_file(IMAGE_SIZE)
    write_legacy_weights(saved, path)

    built = mobilenet.build_mobilenet(IMAGE_SIZE, weights="imagenet")

    assert built.weights_source.weights == "imagenet"
    assert built.weights_source.path == str(path)
    for expected, loaded in zip(saved.get_weights(), fine_tune_base(built).get_weights()):
        assert np.array_equal(expected, loaded)


def write_legacy_weights(model, path):
    # The published files use Keras 2's HDF5 layout. Keras 3's `save_weights`
    # writes only `.weights.h5`, so this calls the legacy writer directly.
    import h5py
    from keras.src.legacy.saving import legacy_h5_format

    os.makedirs(path.parent, exist_ok=True)
    with h5py.File(path, "w") as f:
        legacy_h5_format.save_weights_to_hdf5_group(f, model)


@pytest.mark.parametrize(
    ("image_size", "rows"), [(96, 96), (160, 160), (224, 224), (32, 224), (100, 224)]
)
def test_weights_file_name(image_size, rows):
    expected = f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"
    assert mobilenet.imagenet_weights_file(image_size) == expected


# Strategies.

@pytest.mark.parametrize("fine_tune_at", [-1, 155])
def test_fine_tune_at_out_of_range(model, fine_tune_at):
    with pytest.raises(ConfigError) as raised:
        apply_strategy(model, parse_strategy("frozen-prefix"), fine_tune_at=fine_tune_at)
    assert f"fine_tune_at={fine_tune_at}" in str(raised.value)
    assert "0 to 154" in str(raised.value)


@pytest.mark.parametrize(("fine_tune_at", "frozen"), [(0, 0), (100, 100), (154, 154)])
def test_fine_tune_at_counts_base_layers(model, base, fine_tune_at, frozen):
    apply_strategy(model, parse_strategy("frozen-prefix"), fine_tune_at=fine_tune_at)
    assert sum(not layer.trainable for layer in base.layers) == frozen
    assert all(layer.trainable for layer in model.layers)


def test_full_resets_nested_flags(model, base):
    apply_strategy(model, parse_strategy("frozen-prefix"), fine_tune_at=FINE_TUNE_AT)
    plan = apply_strategy(model, parse_strategy("full"))
    assert all(layer.trainable for layer in base.layers)
    assert len(plan.variables) == len(model.trainable_variables) == 158


def test_base_frozen_sets_base_flag(model, base):
    plan = apply_strategy(model, parse_strategy("base-frozen"))
    assert base.trainable is False
    assert [v.path for v in plan.variables] == HEAD_VARIABLES


def test_head_only_keeps_flags(model):
    plan = apply_strategy(model, parse_strategy("head-only"))
    assert all(layer.trainable for layer in model.layers)
    assert [v.path for v in plan.variables] == HEAD_VARIABLES


def test_base_frozen_rejects_mlp():
    with pytest.raises(ConfigError) as raised:
        apply_strategy(build_model("mlp-sequential"), parse_strategy("base-frozen"))
    assert "'base-frozen'" in str(raised.value)


def test_format_plan_base_line(model, base):
    plan = apply_strategy(model, parse_strategy("frozen-prefix"), fine_tune_at=FINE_TUNE_AT)
    text = format_plan("mobilenetv2", plan)
    assert f"base {base.name}: 54 of 154 layers trainable, 100 frozen" in text


def test_pooling_dropout_untrained(model):
    assert model.get_layer("pooling").variables == []
    assert model.get_layer("dropout").trainable_variables == []


def test_dropout_has_seed_state(model):
    """Dropout's SeedGenerator state is a variable, though not a weight."""
    paths = [v.path for v in model.get_layer("dropout").variables]
    assert paths == [SEED_STATE]


# BatchNormalization. Keras 3 passes the outer call's `training=True` on to the
# base, although the model calls the base with `training=False`.

def test_training_call_updates_trainable_bn(model, base, batch):
    apply_strategy(model, parse_strategy("full"))
    bn = base.get_layer("bn_Conv1")
    before = bn.moving_mean.numpy().copy()

    model(batch[0], training=True)

    assert not np.array_equal(before, bn.moving_mean.numpy())


def test_default_call_keeps_bn_stats(model, base, batch):
    apply_strategy(model, parse_strategy("full"))
    bn = base.get_layer("bn_Conv1")
    before = bn.moving_mean.numpy().copy()

    model(batch[0])

    assert np.array_equal(before, bn.moving_mean.numpy())


def freeze_base_flag(model, base):
    apply_strategy(model, parse_strategy("full"))
    base.trainable = False


def freeze_each_layer(model, base):
    apply_strategy(model, parse_strategy("full"))
    for layer in base.layers:
        layer.trainable = False


FREEZERS = {"base-flag": freeze_base_flag, "each-layer": freeze_each_layer}


def training_output(model, images):
    """Return the model's training-mode output, with Dropout's seed state restored afterwards."""
    seed_state = model.get_layer("dropout").seed_generator.state
    saved = seed_state.numpy()
    output = model(images, training=True).numpy()
    seed_state.assign(saved)
    return output


@pytest.fixture(scope="module")
def frozen_base_runs(model, base, batch):
    """Return, per way of freezing the base: (trainable paths, training output, TrainingRun)."""
    # Both outputs are taken before any step trains the head, so they see the same weights.
    outputs = {}
    for name, freeze in FREEZERS.items():
        freeze(model, base)
        outputs[name] = (sorted(v.path for v in model.trainable_variables), training_output(model, batch[0]))

    results = {}
    for name, freeze in FREEZERS.items():
        # The full plan lists the state variables; its variable list is replaced below.
        full_plan = apply_strategy(model, parse_strategy("full"))
        freeze(model, base)
        plan = dataclasses.replace(full_plan, strategy=name, variables=list(model.trainable_variables))
        results[name] = (*outputs[name], train(model, plan, batch))
    return results


def test_freezing_same_trainable_paths(frozen_base_runs):
    assert frozen_base_runs["base-flag"][0] == frozen_base_runs["each-layer"][0]
    assert frozen_base_runs["base-flag"][0] == sorted(HEAD_VARIABLES)


def test_freezing_same_training_output(frozen_base_runs):
    assert np.array_equal(frozen_base_runs["base-flag"][1], frozen_base_runs["each-layer"][1])


def test_frozen_output_uses_moving_stats(model, base, batch):
    """The frozen base's training-mode output equals its inference-mode output."""
    freeze_base_flag(model, base)
    features = keras.Model(model.inputs, model.get_layer("pooling").output)
    assert np.allclose(features(batch[0], training=True), features(batch[0], training=False))


@pytest.mark.parametrize("freezer", sorted(FREEZERS))
def test_frozen_bn_stats_unchanged(frozen_base_runs, base, freezer):
    run = frozen_base_runs[freezer][2]
    for layer in bn_layers(base.layers):
        for name in BN_STATISTICS:
            path = f"{layer.name}/{name}"
            assert not run.changed(path), f"{path} changed although the base is frozen ({freezer})"


@pytest.mark.parametrize("freezer", sorted(FREEZERS))
def test_frozen_writes_only_seed(frozen_base_runs, freezer):
    assert frozen_base_runs[freezer][2].state_written == [SEED_STATE]


def test_prefix_frozen_bn_identical(runs, base):
    run = runs("frozen-prefix")
    for layer in bn_layers(base.layers[:FINE_TUNE_AT]):
        for name in BN_VARIABLES:
            path = f"{layer.name}/{name}"
            assert not run.changed(path), f"{path} changed although layer {layer.name} is frozen"


@pytest.mark.parametrize(
    "path",
    [
        "block_11_depthwise/kernel",
        "block_11_depthwise_BN/gamma",
        "block_11_depthwise_BN/beta",
        "Conv_1/kernel",
        "Conv_1_bn/gamma",
        "head/kernel",
        "head/bias",
    ],
)
def test_prefix_tuned_weights_change(runs, path):
    assert runs("frozen-prefix").changed(path)


def test_prefix_tuned_bn_stats_change(runs, base):
    """Trainable BatchNormalization layers run in training mode, so their moving statistics move."""
    run = runs("frozen-prefix")
    tuned = bn_layers(base.layers[FINE_TUNE_AT:])
    assert len(tuned) == 18
    for layer in tuned:
        for name in BN_STATISTICS:
            path = f"{layer.name}/{name}"
            assert run.changed(path), f"{path} did not change although {layer.name} is trainable"


STATE_SUFFIXES = (*BN_STATISTICS, "seed_generator_state")


def changed_weights(run):
    """Return the paths of changed variables other than moving statistics and seed states."""
    return sorted(path for path in run.initial if run.changed(path) and not path.endswith(STATE_SUFFIXES))


@pytest.mark.parametrize("strategy", ["head-only", "base-frozen"])
def test_only_head_trained(runs, strategy):
    assert changed_weights(runs(strategy)) == sorted(HEAD_VARIABLES)


def test_prefix_writes_tuned_bn_stats(runs, base):
    expected = bn_stat_paths(base.layers[FINE_TUNE_AT:]) + [SEED_STATE]
    assert sorted(runs("frozen-prefix").state_written) == sorted(expected)


def test_head_only_moves_base_bn_stats(runs, base):
    """head-only leaves the base trainable, so its BatchNormalization layers run in training mode."""
    expected = bn_stat_paths(base.layers) + [SEED_STATE]
    assert sorted(runs("head-only").state_written) == sorted(expected)


def test_base_frozen_keeps_bn_stats(runs):
    assert runs("base-frozen").state_written == [SEED_STATE]


@pytest.mark.parametrize("strategy", ["frozen-prefix", "head-only", "base-frozen"])
def test_step_traced_once(runs, strategy):
    assert runs(strategy).tracing_count == 1
