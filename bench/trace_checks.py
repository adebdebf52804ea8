"""Structural checks of profiled training steps: which ops a freezing strategy runs.

The checks read trace summaries from bench.breakdown and never compare times,
so they give the same result on any machine and under any load. Each returns
(ok, message), where the message names the offending ops or the counts seen.
"""

import re

from bench.breakdown import BACKWARD, OPTIMIZER, ops_per_step
from models.variable_ops import is_variable_write_type


def layer_scope_pattern(layer):
    """Return a regex that matches the name-scope component of Keras layer `layer`.

    Inside a traced step Keras 3 scopes a layer's ops as `<layer>_<n>`, for
    example `dense1_1` for the layer `dense1`.
    """
    # NOTE: a layer named "dense" also matches "dense_1", the scope of a layer
    # named "dense_1". The MLPs here name their layers dense1 to dense3.
    return re.compile(rf"{re.escape(layer)}(_\d+)?")


def ops_under_layers(summary, layers, phase):
    """Return the names of `phase` ops whose name scopes include one of `layers`."""
    patterns = [layer_scope_pattern(layer) for layer in layers]
    names = []
    for entry in summary["ops"].values():
        if entry["phase"] != phase:
            continue
        scopes = entry["name"].split("/")[:-1]
        if any(p.fullmatch(scope) for p in patterns for scope in scopes):
            names.append(entry["name"])
    return sorted(names)


def check_no_frozen_gradients(summary, frozen_layers):
    """Check that the trace runs no gradient op under a frozen layer's scope.

    A frozen-prefix step with `fine_tune_at=2` freezes flatten and dense1, so
    `gradient_tape/<model>/dense1_1/MatMul/MatMul` must not run. The check
    fails too if the trace has no gradient ops at all, because then it would
    pass for any step.
    """
    if ops_per_step(summary, BACKWARD) == 0:
        return False, "the trace has no gradient ops (gradient_tape/...), so it cannot show which layers are frozen"

    offending = ops_under_layers(summary, frozen_layers, BACKWARD)
    if offending:
        return False, f"gradient ops ran for frozen layers {list(frozen_layers)}: {offending}"
    return True, f"no gradient op ran for frozen layers {list(frozen_layers)}"


def variable_writes(train_step, model, images, labels):
    """Return {op name: model variable path, or None} for each variable write in the step's graph.

    The value is None for a write to a variable that is not the model's, such
    as the optimizer's `iterations` or its slots. The op names are those of the
    traced `tf.function` graph, which the profiler reports for the executed ops.
    """
    graph = train_step.get_concrete_function(images, labels).graph
    captured = {id(internal): external for external, internal in graph.captures}
    # A Keras 3 variable on the TensorFlow backend wraps a tf.Variable in `.value`.
    paths = {id(getattr(v, "value", v).handle): v.path for v in model.variables}

    writes = {}
    for op in graph.get_operations():
        if is_variable_write_type(op.type):
            external = captured.get(id(op.inputs[0]))
            writes[op.name] = paths.get(id(external)) if external is not None else None
    return writes


def check_optimizer_updates_only(summary, writes, layers):
    """Check that the optimizer's traced variable writes update only `layers`' variables.

    `writes` maps op names to model variable paths, as variable_writes returns.
    A write op in the trace that is missing from `writes` fails the check,
    because the variable it updates is then unknown. So does a trace without
    any optimizer write to a model variable, because then it would pass for
    any step.
    """
    updated, unknown = {}, []
    for entry in summary["ops"].values():
        if entry["phase"] != OPTIMIZER or not is_variable_write_type(entry["type"]):
            continue
        if entry["name"] not in writes:
            unknown.append(entry["name"])
        elif writes[entry["name"]] is not None:
            updated[entry["name"]] = writes[entry["name"]]

    if unknown:
        return False, f"traced optimizer writes not found in the step's graph, so their variables are unknown: {sorted(unknown)}"
    if not updated:
        return False, "the trace has no optimizer op that writes a model variable"

    outside = {op: path for op, path in updated.items() if not _in_layers(path, layers)}
    if outside:
        return False, f"the optimizer updated variables outside {list(layers)}: {outside}"
    return True, f"the optimizer updated only {sorted(set(updated.values()))}"


def _in_layers(variable_path, layers):
    # A Keras 3 variable path is "<model>/<layer>/<variable>", e.g. "mlp_sequential/dense2/kernel".
    return any(layer in variable_path.split("/")[:-1] for layer in layers)


def check_backward_matmuls_decrease(summaries, op_type="MatMul"):
    """Check that backward `op_type` ops per step fall strictly along `summaries`.

    `summaries` is a list of (strategy name, summary) pairs in the expected
    order, for example full, frozen-prefix, dense2-only. With TensorFlow 2.21
    and Keras 3.15 the traced graph of each MLP step contains the same 5 gradient
    MatMuls, but Grappler prunes those that no trained variable needs, so the
    trace shows 5, 3 and 2 per step.
    """
    counts = [(name, ops_per_step(summary, BACKWARD, op_type)) for name, summary in summaries]
    text = ", ".join(f"{name} {count:g}" for name, count in counts)
    for (_, before), (_, after) in zip(counts, counts[1:]):
        if not after < before:
            return False, f"backward {op_type} ops per step do not fall strictly: {text}"
    return True, f"backward {op_type} ops per step: {text}"
