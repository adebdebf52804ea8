"""The model of TensorFlow's transfer-learning tutorial: MobileNetV2 with a binary head.

inputs -> MobileNetV2 base (`include_top=False`, called with `training=False`)
-> GlobalAveragePooling2D -> Dropout(0.2) -> Dense(1) named "head", which
outputs one logit. The loss is binary cross-entropy from logits.

ImageNet weights are loaded only from Keras' cache, never downloaded, because
the machines that run freezebench have no internet.

NOTE: in Keras 3 (checked with 3.15.1) the `training=False` given to the base
holds only while the whole model is called with `training=None`. A call with
`training=True`, as in every freezebench training step, passes True on to the
base, so each BatchNormalization layer of the base whose `trainable` flag is set
normalizes with batch statistics and updates its moving mean and variance. Only
frozen BatchNormalization layers run in inference mode.
"""

import dataclasses
import os

import keras

from models.datasets import keras_home
from models.errors import ConfigError

DEFAULT_IMAGE_SIZE = 96
# keras.applications.MobileNetV2 rejects smaller inputs.
MIN_IMAGE_SIZE = 32
IMAGENET = "imagenet"
WEIGHTS_CHOICES = (None, IMAGENET)

# Input sizes with published ImageNet weights of MobileNetV2 (width multiplier
# alpha 1.0). For other sizes Keras 3.15 loads the 224x224 weights.
WEIGHTS_IMAGE_SIZES = (96, 128, 160, 192, 224)
FALLBACK_WEIGHTS_SIZE = 224

# len(base.layers) of MobileNetV2 without its top, the InputLayer included;
# it does not depend on the input size.
BASE_LAYER_COUNT = 154
HEAD_NAME = "head"
DROPOUT_RATE = 0.2


@dataclasses.dataclass(frozen=True)
class WeightsSource:
    """The initial weights of a model's base.

    `weights` is the Keras `weights` value the base stands for: "imagenet" or
    None (random initialization). `path` is the cached file loaded for
    "imagenet", and `detail` gives where the weights came from or why no cached
    file was used.
    """

    weights: object
    path: object
    detail: str


def imagenet_weights_file(image_size):
    """Return the file name of the no-top ImageNet weights Keras fetches for `image_size`.

    The name follows `keras.applications.mobilenet_v2` in Keras 3.15.
    """
    rows = image_size if image_size in WEIGHTS_IMAGE_SIZES else FALLBACK_WEIGHTS_SIZE
    return f"mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_{rows}_no_top.h5"


def cached_imagenet_weights(image_size):
    """Return the path of the cached ImageNet weights file for `image_size`, or None.

    Looks only in `<keras home>/models`, the folder `keras.utils.get_file` saves
    to, and makes no network call.
    """
    path = os.path.join(keras_home(), "models", imagenet_weights_file(image_size))
    return path if os.path.isfile(path) else None


def choose_weights(image_size, weights):
    """Return the WeightsSource for a request of `weights` at `image_size`.

    A request for "imagenet" falls back to None (random initialization) when the
    file is not in Keras' cache, so the builder never calls `keras.utils.get_file`,
    which would download it.
    """
    if weights is None:
        return WeightsSource(None, None, "random initialization requested")

    path = cached_imagenet_weights(image_size)
    if path is None:
        missing = os.path.join(keras_home(), "models", imagenet_weights_file(image_size))
        return WeightsSource(None, None, f"random initialization: {missing} not found")
    return WeightsSource(IMAGENET, path, f"ImageNet weights from {path}")


def check_options(image_size, weights):
    """Raise ConfigError for an image size or weights value the builder cannot use."""
    if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < MIN_IMAGE_SIZE:
        raise ConfigError(
            f"image_size={image_size!r} is invalid for mobilenetv2; "
            f"it must be an integer of at least {MIN_IMAGE_SIZE} (pixels per side)"
        )
    if weights not in WEIGHTS_CHOICES:
        raise ConfigError(
            f"weights={weights!r} is invalid for mobilenetv2; valid values are None and 'imagenet'"
        )


def build_mobilenet(image_size=DEFAULT_IMAGE_SIZE, weights=None):
    """Build the transfer-learning model for square RGB images of `image_size` pixels.

    The returned functional model carries two plain attributes: `fine_tune_base`,
    the name of the MobileNetV2 base whose layers `fine_tune_at` counts (see
    models.strategies.fine_tune_base), and `weights_source`, the WeightsSource
    of the base.
    """
    check_options(image_size, weights)
    source = choose_weights(image_size, weights)

    # A cached file is passed by path, so Keras loads it without calling get_file,
    # which would download on a miss.
    base = keras.applications.MobileNetV2(
        input_shape=(image_size, image_size, 3),
        include_top=False,
        weights=source.path,
    )

    inputs = keras.Input(shape=(image_size, image_size, 3), name="images")
    x = base(inputs, training=False)
    x = keras.layers.GlobalAveragePooling2D(name="pooling")(x)
    x = keras.layers.Dropout(DROPOUT_RATE, name="dropout")(x)
    outputs = keras.layers.Dense(1, name=HEAD_NAME)(x)
    model = keras.Model(inputs, outputs, name=f"mobilenetv2_{image_size}_transfer")

    model.fine_tune_base = base.name
    model.weights_source = source
    return model
