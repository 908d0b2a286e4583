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
  (NB201 has no function-preserving skip insertion: a `skip_connect` edge adds its input.)
- `Chain` networks (ProxylessNAS / MobileNetV2): `insert_block` turns a skipped block (the
  identity) into an MBConv block on a residual path whose projection's batch norm has scale
  0 and shift 0 (skip-connection insertion as EAS and NASH do it: the new branch starts at
  zero beside the identity); `widen_block` raises a block's expansion ratio (Net2WiderNet on
  its hidden channels: expansion conv, depthwise conv and their batch norms copied per
  channel, the projection's inputs divided by the copies); `grow_block_kernel` zero-pads a
  block's depthwise kernel to a larger size.

Host-side functions (they build a new network); the weights are copied, not traced.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from jnas.spaces import NB201, Chain, Sequential

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


def _chain_blocks(where: str, space: Any, arch: Any, model: Any, block: int) -> list:
    if not isinstance(space, Chain):
        raise ValueError(f"{where}: `space` must be jnas.spaces.Chain; got {type(space)}")
    blocks = space.blocks(arch)
    if len(model.blocks) != sum(b is not None for b in blocks):
        raise ValueError(f"{where}: `model` is not the network of `arch`")
    if not 0 <= block < len(blocks):
        raise ValueError(f"{where}: `block` must be in [0, {len(blocks)}); got {block}")
    return blocks


def _chain_rebuild(
    space: Chain, blocks: list, model: Any, block: int, **build: Any
) -> tuple[Any, Any, int]:
    """The new architecture and network, every layer but block `block`'s copied from
    `model`; returns the position of `block` among the new network's blocks."""
    string = "-".join("skip" if b is None else f"k{b[0]}e{b[1]}" for b in blocks)
    arch = space.from_string(string)
    new = space.build(arch, rngs=nnx.Rngs(0), **build)
    for name in ("stem", "first", "head", "classifier"):
        _copy_layer(getattr(new, name), getattr(model, name))
    position = sum(b is not None for b in blocks[:block])
    old = iter(model.blocks)
    for j, dst in enumerate(new.blocks):
        if j == position:
            if len(model.blocks) == len(new.blocks):
                next(old)  # the changed block replaces its parent's
            continue
        _copy_layer(dst, next(old))
    new.eval()
    return arch, new, position


def insert_block(
    space: Chain,
    arch: Any,
    model: Any,
    block: int,
    kernel: int,
    expansion: int,
    **build: Any,
) -> tuple[Any, Any]:
    """A skipped block `block` becomes a `kernel` x `expansion` MBConv block whose output
    starts at zero beside its residual path; `build` are the keywords the network was built
    with (num_classes, dropout, stem_stride)."""
    blocks = _chain_blocks("insert_block", space, arch, model, block)
    if blocks[block] is not None:
        raise ValueError(f"insert_block: block {block} is not skipped ({blocks[block]})")
    if kernel not in space.kernels or expansion not in space.expansions:
        raise ValueError(
            f"insert_block: (kernel, expansion) must be in {space.kernels} x "
            f"{space.expansions}; got ({kernel}, {expansion})"
        )
    blocks[block] = (kernel, expansion)
    new_arch, new, position = _chain_rebuild(space, blocks, model, block, **build)
    bn = new.blocks[position].project.bn
    _set(bn.scale, np.zeros(bn.scale[...].shape))
    _set(bn.bias, np.zeros(bn.bias[...].shape))
    return new_arch, new


def widen_block(
    key: jax.Array, space: Chain, arch: Any, model: Any, block: int, expansion: int, **build: Any
) -> tuple[Any, Any]:
    """Block `block`'s expansion ratio raised to `expansion`: each new hidden channel copies
    a random old one (`key`) through the expansion conv, the depthwise conv and their batch
    norms, and the projection divides each copied channel's weights by its copies."""
    blocks = _chain_blocks("widen_block", space, arch, model, block)
    if blocks[block] is None:
        raise ValueError(f"widen_block: block {block} is skipped: insert it first")
    kernel, old_e = blocks[block]
    if old_e == 1:
        raise ValueError("widen_block: an expansion-1 block has no hidden layer to widen")
    if expansion not in space.expansions or expansion <= old_e:
        raise ValueError(
            f"widen_block: `expansion` must be one of {space.expansions} above {old_e}; "
            f"got {expansion}"
        )
    blocks[block] = (kernel, expansion)
    new_arch, new, position = _chain_rebuild(space, blocks, model, block, **build)
    src, dst = model.blocks[position], new.blocks[position]
    old = np.asarray(src.expand.conv.kernel[...]).shape[-1]
    width = np.asarray(dst.expand.conv.kernel[...]).shape[-1]
    extra = np.asarray(jax.random.randint(key, (width - old,), 0, old))
    g = np.concatenate([np.arange(old), extra])
    counts = np.bincount(g, minlength=old)
    _set(dst.expand.conv.kernel, np.asarray(src.expand.conv.kernel[...])[..., g])
    _set(dst.depthwise.conv.kernel, np.asarray(src.depthwise.conv.kernel[...])[..., g])
    for layer in ("expand", "depthwise"):
        for name in ("scale", "bias", "mean", "var"):
            value = np.asarray(getattr(getattr(src, layer).bn, name)[...])[g]
            _set(getattr(getattr(dst, layer).bn, name), value)
    w = np.asarray(src.project.conv.kernel[...])[:, :, g, :]
    _set(dst.project.conv.kernel, w / counts[g][None, None, :, None])
    _copy_layer(dst.project.bn, src.project.bn)
    return new_arch, new


def grow_block_kernel(
    space: Chain, arch: Any, model: Any, block: int, kernel: int, **build: Any
) -> tuple[Any, Any]:
    """Block `block`'s depthwise kernel zero-padded to `kernel` x `kernel`."""
    blocks = _chain_blocks("grow_block_kernel", space, arch, model, block)
    if blocks[block] is None:
        raise ValueError(f"grow_block_kernel: block {block} is skipped: insert it first")
    k, e = blocks[block]
    if kernel not in space.kernels or kernel <= k:
        raise ValueError(
            f"grow_block_kernel: `kernel` must be one of {space.kernels} above {k}; got {kernel}"
        )
    blocks[block] = (kernel, e)
    new_arch, new, position = _chain_rebuild(space, blocks, model, block, **build)
    src, dst = model.blocks[position], new.blocks[position]
    _copy_layer(dst.project, src.project)
    if src.expand is not None:
        _copy_layer(dst.expand, src.expand)
    pad = (kernel - k) // 2
    w = np.pad(np.asarray(src.depthwise.conv.kernel[...]), ((pad, pad), (pad, pad), (0, 0), (0, 0)))
    _set(dst.depthwise.conv.kernel, w)
    _copy_layer(dst.depthwise.bn, src.depthwise.bn)
    return new_arch, new
