"""Network morphisms: function-preserving changes of an architecture *and its weights*
(Chen, Goodfellow & Shlens, "Net2Net", ICLR 2016; Wei et al., "Network Morphism", ICML 2016;
Elsken, Metzen & Hutter, "NASH", 2017; Cai et al., "EAS", AAAI 2018).

Each morphism takes a `jnas.spaces.Sequential` architecture and its trained network, and
returns the changed architecture with a network of it that computes the same function in
evaluation mode (batch norm on its running statistics, dropout off), so a child inherits its
parent's training instead of starting from scratch:

- `widen`: a conv layer's filters or an FC layer's units grow to a larger width of the space;
  new units copy randomly chosen old ones (`key`) and the next layer divides each copied
  unit's outgoing weights by its number of copies (Net2WiderNet). Batch-norm parameters and
  statistics are copied with their channel.
- `deepen`: an identity layer is inserted after layer `after`: a conv whose kernel is the
  identity at its centre and whose batch norm is the identity (scale 1, shift 0, mean 0,
  variance 1 - eps), or an FC layer with an identity matrix; the ReLU that follows is the
  identity because its input is already non-negative (Net2DeeperNet).
- `grow_kernel`: a conv kernel is zero-padded to a larger odd size ("same" padding keeps
  the alignment).
- `replace_none` (NB201 cells): a `none` edge becomes a ReLU-conv-BN op whose batch norm has
  scale 0 and shift 0, so it adds exactly zero (in training mode too) until it learns.

Host-side functions (they build a new network); the weights are copied, not traced.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jnas.spaces import NB201, Sequential

_EPS = 1e-5  # jnas' batch-norm epsilon (PyTorch's)


def _string(layers: list[tuple]) -> str:
    parts = []
    for t in layers:
        if t[0] == "conv":
            parts.append(f"C({t[1]},{t[2]},{t[3]})")
        elif t[0] == "pool":
            parts.append(f"P({t[1]},{t[2]})")
        else:
            parts.append(f"FC({t[1]})")
    return "-".join(parts)


def _check(where: str, space: Any, model: Any, layers: list[tuple]) -> None:
    if not isinstance(space, Sequential):
        raise ValueError(f"{where}: `space` must be jnas.spaces.Sequential; got {type(space)}")
    if len(model.layers) != len(layers):
        raise ValueError(
            f"{where}: `model` has {len(model.layers)} layers but `arch` has {len(layers)}: "
            "pass the network built from this architecture"
        )


def _rebuild(space: Sequential, layers: list[tuple], model: Any, **build: Any) -> tuple[Any, Any]:
    arch = space.from_string(_string(layers))  # validates the new architecture
    new = space.build(arch, rngs=nnx.Rngs(0), **build)
    new.eval()
    return arch, new


def _copy_layer(dst: Any, src: Any) -> None:
    """Copy every variable of `src` into `dst` (same shapes)."""
    nnx.update(dst, nnx.state(src))


def _next_param(model: Any, layers: list[tuple], i: int) -> tuple[Any, int]:
    """The module whose kernel reads layer i's output (next conv / FC, else the classifier)
    and the axis of that kernel indexed by layer i's units."""
    for j in range(i + 1, len(layers)):
        if layers[j][0] == "conv":
            return model.layers[j].conv, 2
        if layers[j][0] == "fc":
            return model.layers[j].linear, 0
    return model.classifier, 0


def _set(var: Any, value: np.ndarray) -> None:
    """Replace a variable's value (the shape may change: it was copied from the parent)."""
    var.set_value(jnp.asarray(value, jnp.asarray(var[...]).dtype))


def widen(
    key: jax.Array, space: Sequential, arch: Any, model: Any, layer: int, width: int, **build: Any
) -> tuple[Any, Any]:
    """Net2WiderNet on layer `layer` (a conv or FC layer) to `width` units; `build` are the
    keywords the network was built with (batch_norm, dropout, num_classes)."""
    layers = space.layers(arch)
    _check("widen", space, model, layers)
    if not 0 <= layer < len(layers) or layers[layer][0] not in ("conv", "fc"):
        raise ValueError(f"widen: `layer` {layer} is not a conv or FC layer of {layers}")
    t = layers[layer]
    old = t[2] if t[0] == "conv" else t[1]
    if width <= old:
        raise ValueError(f"widen: `width` must exceed the layer's {old} units; got {width}")
    new_layers = list(layers)
    new_layers[layer] = ("conv", t[1], width, t[3]) if t[0] == "conv" else ("fc", width)
    new_arch, new = _rebuild(space, new_layers, model, **build)
    extra = np.asarray(jax.random.randint(key, (width - old,), 0, old))
    g = np.concatenate([np.arange(old), extra])  # unit j of the new layer copies unit g[j]
    counts = np.bincount(g, minlength=old)
    for i, (src, dst) in enumerate(zip(model.layers, new.layers, strict=True)):
        if i != layer:
            _copy_layer(dst, src)
    src, dst = model.layers[layer], new.layers[layer]
    if t[0] == "conv":
        _set(dst.conv.kernel, np.asarray(src.conv.kernel[...])[..., g])
        if src.conv.bias is not None:
            _set(dst.conv.bias, np.asarray(src.conv.bias[...])[g])
        if src.bn is not None:
            for name in ("scale", "bias", "mean", "var"):
                _set(getattr(dst.bn, name), np.asarray(getattr(src.bn, name)[...])[g])
    else:
        _set(dst.linear.kernel, np.asarray(src.linear.kernel[...])[:, g])
        _set(dst.linear.bias, np.asarray(src.linear.bias[...])[g])
    _copy_layer(new.classifier, model.classifier)
    reader_old, axis = _next_param(model, layers, layer)
    reader_new, _ = _next_param(new, new_layers, layer)
    w = np.take(np.asarray(reader_old.kernel[...]), g, axis=axis)
    shape = [1] * w.ndim
    shape[axis] = -1
    _set(reader_new.kernel, w / counts[g].reshape(shape))
    if reader_old.bias is not None:
        _set(reader_new.bias, np.asarray(reader_old.bias[...]))
    return new_arch, new


def deepen(
    space: Sequential, arch: Any, model: Any, after: int, *, kernel: int = 3, **build: Any
) -> tuple[Any, Any]:
    """Net2DeeperNet: an identity conv (after a conv or pool layer; `kernel` x `kernel`) or an
    identity FC layer (after an FC layer) inserted after layer `after`."""
    layers = space.layers(arch)
    _check("deepen", space, model, layers)
    if not 0 <= after < len(layers):
        raise ValueError(f"deepen: `after` must index a layer of {layers}; got {after}")
    width = None
    for t in layers[: after + 1]:
        if t[0] == "conv":
            width = t[2]
        elif t[0] == "fc":
            width = t[1]
    if width is None:  # only happens for a pool before any conv: the input may be negative
        raise ValueError("deepen: the layers up to `after` produce no ReLU output")
    fc = layers[after][0] == "fc"
    new_layers = list(layers)
    new_layers.insert(after + 1, ("fc", width) if fc else ("conv", kernel, width, 1))
    new_arch, new = _rebuild(space, new_layers, model, **build)
    mapping = [i if i <= after else i + 1 for i in range(len(layers))]
    for i, j in enumerate(mapping):
        _copy_layer(new.layers[j], model.layers[i])
    _copy_layer(new.classifier, model.classifier)
    ins = new.layers[after + 1]
    if fc:
        _set(ins.linear.kernel, np.eye(width))
        _set(ins.linear.bias, np.zeros(width))
    else:
        k = np.zeros((kernel, kernel, width, width))
        k[kernel // 2, kernel // 2] = np.eye(width)
        _set(ins.conv.kernel, k)
        if ins.conv.bias is not None:
            _set(ins.conv.bias, np.zeros(width))
        if ins.bn is not None:
            _set(ins.bn.scale, np.ones(width))
            _set(ins.bn.bias, np.zeros(width))
            _set(ins.bn.mean, np.zeros(width))
            _set(ins.bn.var, np.full(width, 1.0 - _EPS))
    return new_arch, new


def grow_kernel(
    space: Sequential, arch: Any, model: Any, layer: int, kernel: int, **build: Any
) -> tuple[Any, Any]:
    """A conv layer's kernel zero-padded from k x k to `kernel` x `kernel` (both odd)."""
    layers = space.layers(arch)
    _check("grow_kernel", space, model, layers)
    if not 0 <= layer < len(layers) or layers[layer][0] != "conv":
        raise ValueError(f"grow_kernel: `layer` {layer} is not a conv layer of {layers}")
    _, k, f, s = layers[layer]
    if kernel <= k or kernel % 2 == 0 or k % 2 == 0:
        raise ValueError(f"grow_kernel: `kernel` must be odd and > {k} (odd); got {kernel}")
    new_layers = list(layers)
    new_layers[layer] = ("conv", kernel, f, s)
    new_arch, new = _rebuild(space, new_layers, model, **build)
    for i, (src, dst) in enumerate(zip(model.layers, new.layers, strict=True)):
        if i != layer:
            _copy_layer(dst, src)
    _copy_layer(new.classifier, model.classifier)
    src, dst = model.layers[layer], new.layers[layer]
    pad = (kernel - k) // 2
    w = np.pad(np.asarray(src.conv.kernel[...]), ((pad, pad), (pad, pad), (0, 0), (0, 0)))
    _set(dst.conv.kernel, w)
    if src.conv.bias is not None:
        _set(dst.conv.bias, np.asarray(src.conv.bias[...]))
    if src.bn is not None:
        _copy_layer(dst.bn, src.bn)
    return new_arch, new


def replace_none(
    space: NB201, arch: Any, model: Any, edge: int, op: str = "nor_conv_3x3", **build: Any
) -> tuple[Any, Any]:
    """An NB201 cell's `none` edge `edge` replaced by `op` (a ReLU-conv-BN op) initialised to
    output zero, in every cell of the network; `build` are the keywords it was built with."""
    if not isinstance(space, NB201):
        raise ValueError(f"replace_none: `space` must be jnas.spaces.NB201; got {type(space)}")
    ops = np.asarray(arch.ops).astype(np.int64)
    if not 0 <= edge < ops.shape[0] or space.ops[ops[edge]] != "none":
        raise ValueError(f"replace_none: edge {edge} of {space.to_string(arch)} is not `none`")
    if op not in ("nor_conv_1x1", "nor_conv_3x3"):
        raise ValueError(f"replace_none: `op` must be nor_conv_1x1 or nor_conv_3x3; got {op!r}")
    ops[edge] = space.ops.index(op)
    new_arch = type(arch)(jnp.asarray(ops, jnp.asarray(arch.ops).dtype))
    new = space.build(new_arch, rngs=nnx.Rngs(0), **build)
    for name in ("stem_conv", "stem_bn", "head_bn", "classifier"):
        _copy_layer(getattr(new, name), getattr(model, name))
    for src, dst in zip(model.layers, new.layers, strict=True):
        if not hasattr(src, "ops"):  # a residual reduction block
            _copy_layer(dst, src)
            continue
        for e, (a, b) in enumerate(zip(src.ops, dst.ops, strict=True)):
            if e != edge:
                _copy_layer(b, a)
        bn = dst.ops[edge].bn
        _set(bn.scale, np.zeros(bn.scale[...].shape))
        _set(bn.bias, np.zeros(bn.bias[...].shape))
    new.eval()
    return new_arch, new
