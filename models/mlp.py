"""The reference Fashion-MNIST MLP, as a Sequential and as a subclassed model.

Both have the same four layers and 266,610 parameters:
Flatten (28x28 -> 784), Dense 300 relu, Dense 100 relu, Dense 10 softmax.
"""

import keras

IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10


def build_sequential_mlp():
    """Build the MLP as a `keras.Sequential` model, built for 28x28 input."""
    return keras.Sequential(
        [
            keras.Input(shape=IMAGE_SHAPE),
            keras.layers.Flatten(name="flatten"),
            keras.layers.Dense(300, activation="relu", name="dense1"),
            keras.layers.Dense(100, activation="relu", name="dense2"),
            keras.layers.Dense(NUM_CLASSES, activation="softmax", name="dense3"),
        ],
        name="mlp_sequential",
    )


class SubclassedMLP(keras.Model):
    """The MLP as a subclassed model with layers `flatten`, `dense1`, `dense2`, `dense3`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.flatten = keras.layers.Flatten(name="flatten")
        self.dense1 = keras.layers.Dense(300, activation="relu", name="dense1")
        self.dense2 = keras.layers.Dense(100, activation="relu", name="dense2")
        self.dense3 = keras.layers.Dense(NUM_CLASSES, activation="softmax", name="dense3")

    def build(self, input_shape):
        # Building each layer from its computed input shape creates every variable
        # before the first call, so a training step traced later creates none, and
        # `summary()` shows real output shapes instead of "multiple".
        for layer in (self.flatten, self.dense1, self.dense2, self.dense3):
            layer.build(input_shape)
            input_shape = layer.compute_output_shape(input_shape)

    def call(self, inputs, training=None):
        x = self.flatten(inputs)
        x = self.dense1(x)
        x = self.dense2(x)
        return self.dense3(x)


def build_subclassed_mlp():
    """Build the subclassed MLP for 28x28 input, with all variables created."""
    model = SubclassedMLP(name="mlp_subclassed")
    model.build((None, *IMAGE_SHAPE))
    return model
