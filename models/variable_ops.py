"""Graph op types that write a resource variable; importable without TensorFlow."""

# Keras 3 optimizers on the TensorFlow backend update variables with the
# Assign* ops. Other optimizers and sparse updates emit ResourceApply* and
# ResourceScatter* kernels.
VARIABLE_WRITE_OPS = ("AssignVariableOp", "AssignSubVariableOp", "AssignAddVariableOp")
VARIABLE_WRITE_PREFIXES = ("ResourceApply", "ResourceScatter", "ResourceSparseApply")


def is_variable_write_type(op_type):
    """Return True if ops of type `op_type` write a resource variable."""
    return op_type in VARIABLE_WRITE_OPS or op_type.startswith(VARIABLE_WRITE_PREFIXES)
