"""Op counts of a training step's graph after Grappler optimization.

The traced `FuncGraph` is the wrong thing to count: the MatMul gradient emits
gradients for both inputs, so every strategy's traced step of the reference MLP
holds 8 MatMul ops. Grappler prunes the gradients nothing consumes only when it
optimizes the graph for execution. Optimizing a MetaGraph of the step, with the
variable updates and the loss as fetches, gives the counts that run: 8, 6 and 5
MatMul ops for full, frozen-prefix (fine_tune_at=2) and dense2-only.
"""

import collections

from tensorflow.core.protobuf import config_pb2, meta_graph_pb2
from tensorflow.python.framework import meta_graph
from tensorflow.python.grappler import tf_optimizer

from models.train_step import is_variable_write

# oneDNN and fused kernels rename MatMul; all of these are one matrix product.
MATMUL_OPS = ("MatMul", "_FusedMatMul", "_MklMatMul", "_MklFusedMatMul",
              "_MklNativeMatMul", "_MklNativeFusedMatMul", "BatchMatMulV2")


def optimized_op_counts(train_step, images, labels):
    """Return a Counter of op types in the Grappler-optimized graph of the step."""
    concrete = train_step.get_concrete_function(images, labels)
    graph = concrete.graph
    meta_graph_def = meta_graph.create_meta_graph_def(graph=graph)

    # Grappler keeps only what the "train_op" collection fetches, like a Session would.
    fetches = meta_graph_pb2.CollectionDef()
    for op in graph.get_operations():
        if is_variable_write(op):
            fetches.node_list.value.append(op.name)
    for tensor in concrete.outputs:
        fetches.node_list.value.append(tensor.name)
    meta_graph_def.collection_def["train_op"].CopyFrom(fetches)

    optimized = tf_optimizer.OptimizeGraph(config_pb2.ConfigProto(), meta_graph_def)
    return collections.Counter(node.op for node in optimized.node)


def matmul_count(op_counts):
    """Return the number of matrix-product ops in an op Counter."""
    return sum(op_counts[op] for op in MATMUL_OPS)
