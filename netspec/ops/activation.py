"""The activation family: elementwise functions (and softmax), each one nn module that keeps the shape."""

from __future__ import annotations

from netspec.ops.base import Example, Family, Op, Param as P, same_shape
from netspec.ops.torch_build import ModuleSpec, nn

FAMILY = Family("activation", "activation", "#dcefd9", "#5c9a55")

# Works on features and on images alike; small enough to run anywhere.
_EXAMPLE = Example([(3, 4, 4)])


def _activation(name: str, doc: str, nn_class: str, params=None, label=None, torch_args=(), **entry) -> Op:
    """An activation op: same-shape rule, no weights, a label that is its name unless given, and a module of
    class torch.nn.`nn_class` (named, not read, so that torch is not imported here) whose constructor gets
    `torch_args`: (torch name, op arg name) pairs."""
    def module(args, ins):
        return ModuleSpec(getattr(nn, nn_class), (), tuple((torch_name, args[arg]) for torch_name, arg in torch_args))
    return Op(name, doc, "activation", params or {}, same_shape, label or (lambda a: name), _EXAMPLE,
              module=module, **entry)


OPS = [
    # Built out of place; the fx backend switches it to inplace=True where its input may be overwritten.
    _activation("relu", "max(x, 0).", "ReLU", in_place=True),
    _activation("relu6", "min(max(x, 0), 6), as in MobileNet.", "ReLU6"),
    _activation("leaky_relu", "x if x > 0 else slope·x.", "LeakyReLU", {
        "slope": P("float", 0.01, "negative slope"),
    }, lambda a: f"leaky_relu {a['slope']}", (("negative_slope", "slope"),)),
    _activation("sigmoid", "1 / (1 + exp(−x)).", "Sigmoid"),
    _activation("tanh", "Hyperbolic tangent.", "Tanh"),
    _activation("gelu", "Gaussian error linear unit.", "GELU", {
        "approximate": P("str", "none", "none or tanh", choices=("none", "tanh")),
    }, torch_args=(("approximate", "approximate"),)),
    _activation("silu", "x·sigmoid(x) (swish).", "SiLU"),
    _activation("hardswish", "x·relu6(x + 3)/6, as in MobileNetV3.", "Hardswish"),
    _activation("hardsigmoid", "relu6(x + 3)/6, as in MobileNetV3's squeeze-excitation.", "Hardsigmoid"),
    # dim 1 of the batched tensor: features or channels.
    Op("softmax", "Softmax over the features/channels (dim 1 of the batched tensor).", "activation", {},
       same_shape, lambda a: "softmax", _EXAMPLE, module=lambda a, i: ModuleSpec(nn.Softmax, (), {"dim": 1})),
]
