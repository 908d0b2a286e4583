"""The NB201 weight-sharing search network, built to compile small and run fast.

It computes what AutoDL-Projects' `TinyNetworkDarts` / `SearchCell` computes (every
candidate op on every edge, mixed by op weights shared by all cells; BN with batch
statistics and no affine parameters, the NB201 search setting), arranged so that XLA gets a
small program of large kernels:

- **one cell body per stage**: the N identical cells of a stage keep their weights stacked
  on a leading axis and run in one `lax.scan`, so the program holds 3 cell bodies, not 15;
- **ops once per node, not once per edge**: ReLU and the 3x3 average pool of a node (and
  its im2col patches, where used) are computed once and shared by every edge leaving it,
  and the convolutions of all those edges are one convolution with their kernels side by
  side (the BN that follows is per channel, so normalising the wide output is the same);
- **convolutions XLA:CPU runs fast inside the scan**: on a CPU (`conv_impl="auto"`, the
  default) XLA's own 3x3 convolution with derivatives written as forward convolutions
  (`canonical_conv`): inside a loop XLA:CPU runs JAX's transposed convolutions through a
  generic loop (jax-ml/jax#12868). Elsewhere im2col patches times the kernels ("patches"),
  which every backend runs as a matrix product. Measured: a DARTS-V1 step (C=16, N=5,
  batch 64, one CPU core) 6.1 s with patches, 4.0 s native; GDAS 2.5 / 1.5 s. On one H200
  (`benchmarks/gpu_flags.py`, XLA's convolution with JAX's own derivatives then) the
  DARTS-V1 step took 24.5 ms either way (patches: 23.6-24.6 ms over three runs) and GDAS
  was slower native, 35 ms against 22.7-24.0 (each cuDNN call inside a `lax.switch` branch
  is launched by the host), so other backends keep the patches. Where they do cost is many
  vmapped seeds: 8 DARTS-V1 seeds spent ~24 of 106 ms a step writing them (the same
  profile); that case with native convolutions was not measured (its compile outran the
  lease). On the same CPU path the 1x1 convolutions' kernel gradient is one product over
  the rows (`canonical_dot`): from JAX's rule XLA:CPU transposed the cotangent and ran
  the product on Eigen's slow path, 9.4 % of a one-core DARTS-V1 step (batch 64).

Each stage draws all its kernels of one op in one call (PyTorch's default init), which
builds and compiles in a fraction of the time a draw per kernel takes.
`tests/nn/test_supernet_nb201.py` checks the network against a per-edge network built from
`nb201_op` and against the discrete NB201 network.
"""

from __future__ import annotations

import functools
import math
from typing import cast

import jax
import jax.numpy as jnp
from flax import nnx
from jax.ad_checkpoint import checkpoint_name

from jnas._checks import check_positive
from jnas.nn._canonical_conv import canonical_conv, canonical_dot, plain_conv, plain_dot
from jnas.nn._ops import (
    ResNetBasicBlock,
    avg_pool_3x3,
    batch_norm,
    batch_stats_norm,
    classifier_head,
    conv,
    conv_patches,
    linear,
    max_pool,
)
from jnas.nn._rngs import init_rngs, init_uniform
from jnas.nn._taps import relu, tap, taps_active

SEARCH_OPS = (
    "none",
    "skip_connect",
    "nor_conv_1x1",
    "nor_conv_3x3",
    "avg_pool_3x3",
    "max_pool_3x3",
)
_KERNEL = {"nor_conv_1x1": 1, "nor_conv_3x3": 3}
# The mixed cell's inner nodes are kept for the backward pass, not recomputed: each feeds
# every op of every edge leaving it, and recomputed inside the backward's fusions XLA:CPU
# evaluated the node's whole sum once per consumer (a DARTS-V1 step 6.4 -> 5.1 s, exact
# DARTS-V2 16.7 -> 13.0 s, 13 % more temporary memory).
_NODE = "nb201_search_node"
# the wide convolutions' outputs, kept too (XLA's convolution and the CPU path's
# `custom_vjp`s are no bare dots, so the dot policy alone would recompute them)
_CONV = "nb201_search_conv"
CONV_IMPLS = ("auto", "patches", "native")


def resolve_conv_impl(conv_impl: str) -> str:
    """ "auto" -> "native" on a CPU (XLA's convolution with forward-form derivatives,
    `canonical_conv`: a DARTS-V1 step 6.1 -> 4.0 s, GDAS 2.5 -> 1.5 s, C=16, N=5, batch
    64, one core), "patches" elsewhere (on one H200 the two tied for DARTS-V1 and XLA's
    own was slower for GDAS: the module docstring)."""
    if conv_impl not in CONV_IMPLS:
        raise ValueError(
            f"NB201Supernet: `conv_impl` must be one of {CONV_IMPLS}; got {conv_impl!r}"
        )
    if conv_impl == "auto":
        return "native" if jax.default_backend() == "cpu" else "patches"
    return conv_impl


def _conv3x3(x: jax.Array, matrix: jax.Array, native: bool, vjp: bool = True) -> jax.Array:
    """The 3x3, stride-1, padding-1 convolution of NHWC `x` by HWIO rows `matrix`
    [9*C, C']: XLA's convolution with forward-form derivatives (`native`,
    `canonical_conv`; `vjp=False`: `plain_conv`, the same numbers with JAX's derivatives)
    or im2col patches times the matrix."""
    if native:
        kernel = matrix.reshape(3, 3, x.shape[-1], matrix.shape[-1])
        return (canonical_conv if vjp else plain_conv)(x, kernel, (1, 1))
    return _dot(conv_patches(x, 3, 1, 1), matrix)


def _dot(x: jax.Array, matrix: jax.Array, native: bool = False, vjp: bool = True) -> jax.Array:
    """`x @ matrix` over x's last axis (a 1x1 convolution of NHWC `x`); `native` (the CPU
    setting) with `canonical_dot`'s kernel gradient unless `vjp=False`."""
    return (canonical_dot if native and vjp else plain_dot)(x, matrix)


class NB201SearchStage(nnx.Module):
    """`num_cells` identical NB201 search cells (C channels in and out) as one scanned cell.

    `scan=False` unrolls the cells (same numbers, a larger program). `conv_impl`: the 3x3
    convolutions as im2col matrix products ("patches") or XLA's own ("native"; measured:
    the module docstring). `remat=True` keeps
    only the mixed cell's matrix products' outputs and nodes for the backward pass and
    recomputes the rest (`jax.checkpoint`): the DARTS-V1 step needs a third of the memory
    and runs faster (5.1 s against 6.1 s without it, C=16, N=5, batch 64, 2 cores). The
    single-path cell needs no checkpoint: its ops' own backward (`_switch_op`) keeps
    their inputs and recomputes the rest.

    `kernels[name][i]`: float32[num_cells, k*k*C, len(out_edges[i]) * C], the kernels of
    op `name` on every edge leaving node i, side by side in edge order (HWIO rows).
    """

    def __init__(
        self,
        edges: tuple[tuple[int, int], ...],
        op_names: tuple[str, ...],
        channels: int,
        num_cells: int,
        *,
        scan: bool = True,
        remat: bool = True,
        conv_impl: str = "auto",
        rngs: nnx.Rngs,
    ):
        self.conv_impl = resolve_conv_impl(conv_impl)
        unknown = [name for name in op_names if name not in SEARCH_OPS]
        if unknown:
            raise ValueError(
                f"NB201SearchStage: unknown `op_names` {unknown}; expected names from {SEARCH_OPS}"
            )
        self.edges, self.op_names = tuple(edges), tuple(op_names)
        self.channels, self.num_cells, self.scan, self.remat = channels, num_cells, scan, remat
        self.num_nodes = max(j for _, j in self.edges) + 1
        self.out_edges = tuple(
            tuple(e for e, (i, _) in enumerate(self.edges) if i == s)
            for s in range(self.num_nodes - 1)
        )
        kernels = {}
        for name in self.op_names:  # one draw per op for all cells and edges: fast to
            if name in _KERNEL:  # build and to compile (a draw per kernel took 40 s)
                fan_in = _KERNEL[name] ** 2 * channels
                bound = 1 / math.sqrt(fan_in)  # PyTorch's default init, as `conv` has
                w = init_uniform(
                    rngs.params(),
                    (num_cells, len(self.edges), fan_in, channels),
                    jnp.float32,
                    -bound,
                    bound,
                )
                kernels[name] = nnx.List(
                    [
                        nnx.Param(jnp.concatenate([w[:, e] for e in out], axis=-1))
                        for out in self.out_edges
                    ]
                )
        self.kernels = nnx.Dict(kernels)

    def __call__(
        self, x: jax.Array, weights: jax.Array, index: jax.Array | None = None
    ) -> jax.Array:
        """The stage's output for NHWC `x` under op weights float[E, K] (and, with `index`
        int[E], only the indexed op of each edge: GDAS, single-path methods)."""
        stacked = {name: [p[...] for p in kernels] for name, kernels in self.kernels.items()}
        cell = functools.partial(
            self._cell, weights=weights, index=index, native=self.conv_impl == "native"
        )
        # one cell a stage: neither the loop nor the recompute pays for its compile time
        # (a second-order MetaNAS step of a 1-cell network compiled in 101 s with, 61 s
        # without the checkpoint)
        tapped = taps_active()  # taps must be traced in this trace: no scan, no remat
        if tapped and index is not None:
            raise ValueError(
                "NB201Supernet: taps (jnas.nn.record_taps) cannot be read inside the "
                "`lax.switch` of `index`; call it with index=None and one-hot `weights`"
            )
        scan = self.scan and self.num_cells > 1 and not tapped
        if self.remat and self.num_cells > 1 and not tapped and index is None:
            # keep the matrix products and the inner nodes (why: at `_NODE`), recompute
            # the rest; the single-path cell saves what its `_switch_op`s keep
            policy = jax.checkpoint_policies.save_from_both_policies(
                jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
                jax.checkpoint_policies.save_only_these_names(_NODE, _CONV),
            )
            cell = jax.checkpoint(cell, prevent_cse=not scan, policy=policy)
        if scan:
            x, _ = jax.lax.scan(lambda h, p: (cell(h, p), None), x, stacked)
            return x
        for c in range(self.num_cells):
            x = cell(x, jax.tree.map(lambda a, c=c: a[c], stacked))
        return x

    def _cell(
        self,
        x: jax.Array,
        kernels: dict,
        *,
        weights: jax.Array,
        index: jax.Array | None,
        native: bool,
    ) -> jax.Array:
        """One cell: node j sums, over its input edges e = (i, j), sum_k w[e, k] op_k(x_i)."""
        incoming: list[list[jax.Array]] = [[] for _ in range(self.num_nodes)]
        for i, out in enumerate(self.out_edges):
            node = x if i == 0 else checkpoint_name(sum(incoming[i][1:], incoming[i][0]), _NODE)
            kern = {name: kernels[name][i].astype(node.dtype) for name in kernels}
            if index is None:
                outs = self._mixed(node, kern, weights, out, native)
            else:
                outs = [
                    self._hard(node, kern, weights[e], index[e], slot, native)
                    for slot, e in enumerate(out)
                ]
            for e, y in zip(out, outs, strict=True):
                incoming[self.edges[e][1]].append(y)
        last = incoming[-1]
        return sum(last[1:], last[0])

    def _mixed(
        self,
        node: jax.Array,
        kern: dict,
        weights: jax.Array,
        out: tuple[int, ...],
        native: bool,
    ) -> list[jax.Array]:
        """Every op on every edge leaving `node`, each op computed once for all edges."""
        c = self.channels
        feats: dict[str, jax.Array] = {}
        if kern:
            # the ReLU is shared by the convolutions of every edge leaving the node: its tap
            # counts how many of them the weights select (one per conv of a one-hot cell)
            uses = 1.0
            if taps_active():  # traced only for a recording: the step's program is unchanged
                conv_ops = [k for k, name in enumerate(self.op_names) if name in _KERNEL]
                uses = jnp.sum(weights[jnp.asarray(out)][:, jnp.asarray(conv_ops)])
            act = jax.nn.relu(tap("relu", node, uses))
            if "nor_conv_1x1" in kern:
                wide = _dot(act, kern["nor_conv_1x1"], native)
                wide = tap("layer", checkpoint_name(wide, _CONV))
                feats["nor_conv_1x1"] = batch_stats_norm(wide)
            if "nor_conv_3x3" in kern:
                wide = _conv3x3(act, kern["nor_conv_3x3"], native)
                wide = tap("layer", checkpoint_name(wide, _CONV))
                feats["nor_conv_3x3"] = batch_stats_norm(wide)
        if "skip_connect" in self.op_names:
            feats["skip_connect"] = node
        if "avg_pool_3x3" in self.op_names:
            feats["avg_pool_3x3"] = avg_pool_3x3(node)
        if "max_pool_3x3" in self.op_names:
            feats["max_pool_3x3"] = max_pool(node, 3, 1, 1)
        outs = []
        for slot, e in enumerate(out):
            terms = []
            for k, name in enumerate(self.op_names):
                if name == "none":
                    continue
                f = feats[name]
                if name in _KERNEL:
                    f = f[..., slot * c : (slot + 1) * c]
                terms.append(weights[e, k].astype(f.dtype) * f)
            outs.append(sum(terms[1:], terms[0]) if terms else jnp.zeros_like(node))
        return outs

    def _hard(
        self,
        node: jax.Array,
        kern: dict,
        w: jax.Array,
        index: jax.Array,
        slot: int,
        native: bool,
    ) -> jax.Array:
        """Only op `index` of one edge (`lax.switch`), scaled by `w[index]`, plus the other
        weights' zero-valued straight-through sum (GDAS). Under `vmap` over `index` the
        switch becomes a select and every op runs."""
        c = self.channels
        kernels = {name: k[:, slot * c : (slot + 1) * c] for name, k in kern.items()}
        # cast: custom_vjp's call is typed as returning its rule's generic value
        y = cast(jax.Array, _switch_op(self.op_names, native, index, node, kernels))
        return w[index].astype(y.dtype) * y + (jnp.sum(w) - w[index]).astype(y.dtype)


def _single_op(name: str, native: bool, x: jax.Array, kernels: dict, vjp: bool = True) -> jax.Array:
    """Op `name` of one edge on NHWC `x` (`kernels`: that edge's kernel of each conv;
    `native`: XLA's convolution for the 3x3 one, else im2col patches; `vjp`: `_conv3x3`'s)."""
    if name == "none":
        return jnp.zeros_like(x)
    if name == "skip_connect":
        return x
    if name == "avg_pool_3x3":
        return avg_pool_3x3(x)
    if name == "max_pool_3x3":
        return max_pool(x, 3, 1, 1)
    if _KERNEL[name] == 3:
        return batch_stats_norm(_conv3x3(relu(x), kernels[name], native, vjp))
    return batch_stats_norm(_dot(relu(x), kernels[name], native, vjp))


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _switch_op(
    names: tuple[str, ...], native: bool, index: jax.Array, x: jax.Array, kernels: dict
) -> jax.Array:
    """Op `names[index]` of `x`, differentiated by a backward `lax.switch` that recomputes
    only that op from (x, kernels).

    Why: autodiff of a `lax.switch` makes every branch return the residuals of all of them
    (zeros where not its own), so each GDAS edge kept and zero-filled both convolutions'
    products whichever op it ran, and `jax.checkpoint` had to partially evaluate every
    branch again (GDAS, NB201 C=16 N=5, batch 64, 2 cores: trace 5.7 -> 1.8 s, compile
    18.5 -> 15.5 s, temporary memory 717 -> 547 MB, peak RSS 1.38 -> 1.15 GB, a step
    1.65 -> 1.55 s). `jax.grad` and forward-over-reverse both go through it; `jax.jvp` of
    the network itself does not (a `custom_vjp`).
    """
    return jax.lax.switch(index, _branches(names, native), x, kernels)


@functools.cache  # one function object per op, so JAX traces a branch once per shape
def _branches(names: tuple[str, ...], native: bool) -> tuple:
    # the forward branches are never differentiated (`_switch_op`'s backward recomputes
    # the op), and a `custom_vjp` inside them would meet forward-over-reverse's jvp
    return tuple(functools.partial(_single_op, n, native, vjp=False) for n in names)


def _vjp_branch(name: str, native: bool, x: jax.Array, kernels: dict, g: jax.Array) -> tuple:
    """(d x, d kernels) of op `name` along the output cotangent `g`."""
    _, vjp = jax.vjp(functools.partial(_single_op, name, native), x, kernels)
    return vjp(g)


@functools.cache
def _vjp_branches(names: tuple[str, ...], native: bool) -> tuple:
    return tuple(functools.partial(_vjp_branch, n, native) for n in names)


def _switch_op_fwd(
    names: tuple[str, ...], native: bool, index: jax.Array, x: jax.Array, kernels: dict
) -> tuple[jax.Array, tuple]:
    return jax.lax.switch(index, _branches(names, native), x, kernels), (index, x, kernels)


def _switch_op_bwd(names: tuple[str, ...], native: bool, res: tuple, g: jax.Array) -> tuple:
    index, x, kernels = res
    dx, dk = jax.lax.switch(index, _vjp_branches(names, native), x, kernels, g)
    return None, dx, dk


_switch_op.defvjp(_switch_op_fwd, _switch_op_bwd)


class NB201Supernet(nnx.Module):
    """The NB201 search network: C-channel stem, 3 stages of N search cells, residual
    reductions, BN-ReLU-pool-linear head (C=16, N=5 in the NB201 search runs).
    `stem_stride=2` halves the resolution in the stem (the benchmark's network has 1), so
    small images such as 28x28 Omniglot cost about what MAML's conv4 costs.

    `model(x, weights, index=None)`: `weights` float[E, K] op weights shared by all cells
    (E edges, K ops); `index` int[E] runs only the indexed op per edge. `scan`, `remat`,
    `conv_impl`: each stage's (`NB201SearchStage`).

    Parameters: AutoDL-Projects' search network has 1,692,826 at C=16, N=5 and this one
    1,686,106. The 6,720 more are biases of the cells' convolutions (PyTorch's
    `bias=not affine` in `ReLUConvBN`); each feeds a BN without affine parameters, whose
    mean subtraction cancels it, so it never changes an output and its gradient is zero.
    """

    def __init__(
        self,
        edges: tuple[tuple[int, int], ...],
        op_names: tuple[str, ...],
        *,
        channels: int = 16,
        cells_per_stage: int = 5,
        num_classes: int = 10,
        in_channels: int = 3,
        stem_stride: int = 1,
        scan: bool = True,
        remat: bool = True,
        conv_impl: str = "auto",
        rngs: nnx.Rngs | None = None,
    ):
        check_positive(
            "NB201Supernet",
            channels=channels,
            cells_per_stage=cells_per_stage,
            num_classes=num_classes,
            in_channels=in_channels,
            stem_stride=stem_stride,
        )
        rngs = rngs or init_rngs(0)
        self.num_edges, self.num_ops = len(edges), len(op_names)
        self.stem_conv = conv(in_channels, channels, 3, stem_stride, 1, matmul=True, rngs=rngs)
        self.stem_bn = batch_norm(channels, track_stats=False, rngs=rngs)
        stages, reductions = [], []
        for s in range(3):
            width = channels * 2**s
            if s:
                reductions.append(
                    ResNetBasicBlock(
                        width // 2, width, 2, track_stats=False, matmul=True, rngs=rngs
                    )
                )
            stages.append(
                NB201SearchStage(
                    edges,
                    op_names,
                    width,
                    cells_per_stage,
                    scan=scan,
                    remat=remat,
                    conv_impl=conv_impl,
                    rngs=rngs,
                )
            )
        self.stages = nnx.List(stages)
        self.reductions = nnx.List(reductions)
        self.head_bn = batch_norm(4 * channels, track_stats=False, rngs=rngs)
        self.classifier = linear(4 * channels, num_classes, rngs=rngs)

    def __call__(
        self, x: jax.Array, weights: jax.Array, index: jax.Array | None = None
    ) -> jax.Array:
        """Logits for NHWC images under the given op weights (and sampled ops)."""
        if weights.shape != (self.num_edges, self.num_ops):
            raise ValueError(
                f"NB201Supernet: `weights` must have shape "
                f"{(self.num_edges, self.num_ops)}; got {weights.shape}"
            )
        x = self.stem_bn(self.stem_conv(x))
        x = self.stages[0](x, weights, index)
        for reduction, stage in zip(self.reductions, self.stages[1:], strict=True):
            x = stage(reduction(x), weights, index)
        return classifier_head(x, self.head_bn, self.classifier)
