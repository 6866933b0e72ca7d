"""Runs onnx.checker (full check, shapes inferred) on an ONNX export and prints its outputs and metadata as JSON."""
import json
import sys

import onnx

model = onnx.load(sys.argv[1])
onnx.checker.check_model(model, full_check=True)
print(json.dumps({
    "outputs": [o.name for o in model.graph.output],
    "input_dims": [d.dim_param or d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim],
    "metadata": {p.key: p.value for p in model.metadata_props},
    "ops": sorted({n.op_type for n in model.graph.node}),
}))
