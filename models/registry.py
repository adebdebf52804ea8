"""Model registry: maps the model names used on the command line to builders."""

from models.errors import ConfigError
from models.mlp import build_sequential_mlp, build_subclassed_mlp

# Each builder returns a new, built model with fresh variables, so no benchmark
# case inherits another's weights.
MODEL_BUILDERS = {
    "mlp-sequential": build_sequential_mlp,
    "mlp-subclassed": build_subclassed_mlp,
}


def build_model(name):
    """Build the registered model `name`; raise ConfigError for an unknown name."""
    try:
        builder = MODEL_BUILDERS[name]
    except KeyError:
        valid = ", ".join(MODEL_BUILDERS)
        raise ConfigError(f"unknown model {name!r}; valid models: {valid}") from None
    return builder()
