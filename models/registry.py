"""Model registry: maps the model names used on the command line to builders and specs."""

import dataclasses
import inspect
import typing

import keras

from models import mobilenet
from models.datasets import load_training_data, synthetic_image_dataset
from models.errors import ConfigError
from models.mlp import IMAGE_SHAPE, build_sequential_mlp, build_subclassed_mlp

# Label kinds: class indices for sparse categorical cross-entropy (int32 in a
# batch), or 0/1 targets for binary cross-entropy (float32 in a batch).
SPARSE_LABELS = "sparse"
BINARY_LABELS = "binary"

# Values of ModelSpec.fine_tune_layers: the layers that fine_tune_at counts.
MODEL_LAYERS = "model.layers"
BASE_LAYERS = "base.layers"

MLP_LAYER_COUNT = 4
MLP_FINE_TUNE_AT = 2
# TensorFlow's transfer-learning tutorial fine-tunes MobileNetV2 from layer 100 on.
MOBILENET_FINE_TUNE_AT = 100

# The models that `pytest bench/` runs by default. Each builder returns a new,
# built model with fresh variables, so no benchmark case inherits another's
# weights. mobilenetv2 is not listed because one of its steps at batch 32 takes
# hundreds of times as long as an MLP step. Build it with build_model("mobilenetv2").
MODEL_BUILDERS = {
    "mlp-sequential": build_sequential_mlp,
    "mlp-subclassed": build_subclassed_mlp,
}
DEFAULT_MODELS = tuple(MODEL_BUILDERS)


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """The facts the benchmark needs about a registered model, for one set of options.

    `build()` returns a new, built model with fresh variables. `make_loss()`
    returns the loss of the model's output. `input_shape` is one sample's shape,
    without the batch axis. `fine_tune_layers` names the layers that fine_tune_at
    counts (MODEL_LAYERS or BASE_LAYERS), and frozen-prefix accepts 0 to
    `fine_tune_layer_count`, the number of those layers. `options` are the
    (name, value) pairs the spec was made with, a tuple so that the spec stays hashable.
    """

    name: str
    build: typing.Callable[[], keras.Model]
    make_loss: typing.Callable[[], keras.losses.Loss]
    input_shape: tuple
    label_kind: str
    fine_tune_layers: str
    fine_tune_layer_count: int
    default_fine_tune_at: int
    options: tuple = ()


def _mlp_spec(name, builder):
    def make_spec():
        return ModelSpec(
            name=name,
            build=builder,
            # The MLPs end in a softmax, so the loss takes probabilities.
            make_loss=keras.losses.SparseCategoricalCrossentropy,
            input_shape=IMAGE_SHAPE,
            label_kind=SPARSE_LABELS,
            fine_tune_layers=MODEL_LAYERS,
            fine_tune_layer_count=MLP_LAYER_COUNT,
            default_fine_tune_at=MLP_FINE_TUNE_AT,
        )

    return make_spec


def _mobilenet_spec(image_size=mobilenet.DEFAULT_IMAGE_SIZE, weights=None):
    mobilenet.check_options(image_size, weights)
    return ModelSpec(
        name="mobilenetv2",
        build=lambda: mobilenet.build_mobilenet(image_size, weights),
        # The head outputs one logit, not a probability.
        make_loss=lambda: keras.losses.BinaryCrossentropy(from_logits=True),
        input_shape=(image_size, image_size, 3),
        label_kind=BINARY_LABELS,
        fine_tune_layers=BASE_LAYERS,
        fine_tune_layer_count=mobilenet.BASE_LAYER_COUNT,
        default_fine_tune_at=MOBILENET_FINE_TUNE_AT,
        options=(("image_size", image_size), ("weights", weights)),
    )


# Each factory takes the model's options as keyword arguments and returns its ModelSpec.
SPEC_FACTORIES = {
    **{name: _mlp_spec(name, builder) for name, builder in MODEL_BUILDERS.items()},
    "mobilenetv2": _mobilenet_spec,
}
MODEL_NAMES = tuple(SPEC_FACTORIES)


def model_spec(name, **options):
    """Return the ModelSpec of model `name` built with `options`.

    The MLPs take no options. mobilenetv2 takes `image_size` (pixels per side,
    at least 32, default 96) and `weights` (None or "imagenet"). Raises
    ConfigError for an unknown name, an option the model does not take, or an
    invalid option value.
    """
    try:
        factory = SPEC_FACTORIES[name]
    except KeyError:
        valid = ", ".join(MODEL_NAMES)
        raise ConfigError(f"unknown model {name!r}; valid models: {valid}") from None

    accepted = list(inspect.signature(factory).parameters)
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ConfigError(
            f"model {name!r} does not take option(s) {', '.join(unknown)}; "
            f"its options are: {', '.join(accepted) or 'none'}"
        )
    return factory(**options)


def build_model(name, **options):
    """Build the registered model `name` with `options`; raise ConfigError for an invalid request."""
    return model_spec(name, **options).build()


def training_data(spec, data_dir=None, min_samples=1, seed=0):
    """Return training data that fits `spec`'s input shape and labels.

    The MLPs get Fashion-MNIST from local files, or synthetic data of its shape
    (models.datasets.load_training_data). mobilenetv2 gets synthetic color
    images, because it supports no local image data set. For it a `data_dir`
    raises ConfigError, so a run never benchmarks other data than requested.
    """
    if spec.label_kind == SPARSE_LABELS:
        return load_training_data(data_dir, min_samples, seed)

    if data_dir is not None:
        raise ConfigError(
            f"model {spec.name!r} accepts no data directory (got {data_dir!r}): only the MLPs "
            f"read Fashion-MNIST files, and {spec.name} runs on synthetic images; leave out --data-dir"
        )
    image_size = spec.input_shape[0]
    reason = f"synthetic {image_size}x{image_size} RGB images; {spec.name} has no real data source"
    return synthetic_image_dataset(max(min_samples, 1), image_size, seed, reason)
