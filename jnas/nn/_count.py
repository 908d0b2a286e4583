"""Parameter and FLOP counts in the benchmarks' conventions.

`count_flops` traces the forward pass once (no compilation, no arithmetic) and counts,
as NAS-Bench-201 and the DARTS papers do, the multiply-accumulates of convolutions and
matrix products, plus one addition per output element of each bias that is added to
one of their results. Batch norm, activations, pooling and residual sums are free.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
from flax import nnx

_PASS_THROUGH = {"reshape", "broadcast_in_dim", "convert_element_type", "squeeze", "expand_dims"}


def count_params(model: nnx.Module, *, exclude: tuple[str, ...] = ()) -> int:
    """Trainable parameters (`nnx.Param` leaves), skipping paths that contain `exclude`.

    Batch-norm running statistics are not parameters, as in PyTorch's `parameters()`.
    `exclude=("aux",)` leaves out the DARTS auxiliary head, as the DARTS papers count.
    """
    total = 0
    for path, value in nnx.iter_graph(model):
        if isinstance(value, nnx.Param):
            names = [str(p) for p in path]
            if not any(any(e in n for n in names) for e in exclude):
                total += int(np.prod(np.shape(value.get_value())))
    return total


def count_flops(model: nnx.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on an input of `input_shape` (NHWC).

    Run it on a batch of one, as the benchmarks do. The model is traced in eval mode
    and left in the mode it was in.
    """
    graphdef, state = nnx.split(model)

    def forward(state, x):
        m = nnx.merge(graphdef, state)
        m.eval()
        return m(x)

    closed = jax.make_jaxpr(forward)(state, jax.ShapeDtypeStruct(input_shape, jnp.float32))
    num_state = len(jax.tree.leaves(state))
    params = set(closed.jaxpr.invars[:num_state])
    return _count_jaxpr(closed.jaxpr, params)


def count_apply_flops(apply: Any, params: Any, input_shape: tuple[int, ...]) -> int:
    """`count_flops` for a pure `apply(params, x)` (e.g. from `jnas.nn.functional`):
    multiply-accumulates of one call on an input of `input_shape`, traced, never run."""
    closed = jax.make_jaxpr(apply)(params, jax.ShapeDtypeStruct(input_shape, jnp.float32))
    num_params = len(jax.tree.leaves(params))
    return _count_jaxpr(closed.jaxpr, set(closed.jaxpr.invars[:num_params]))


def _count_jaxpr(jaxpr: Any, params: set) -> int:
    """MACs of conv / dot_general eqns plus bias additions, recursing into sub-jaxprs."""
    total = 0
    products = set()  # vars holding the result of a conv or a matrix product
    params = set(params)
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            lhs, rhs = eqn.invars[0].aval, eqn.invars[1].aval
            out = eqn.outvars[0].aval
            dn = eqn.params["dimension_numbers"]
            kernel_spatial = [rhs.shape[d] for d in dn.rhs_spec[2:]]
            in_per_group = rhs.shape[dn.rhs_spec[1]]
            del lhs
            total += int(np.prod(out.shape)) * in_per_group * int(np.prod(kernel_spatial))
            products.add(eqn.outvars[0])
        elif name == "dot_general":
            (contract, _), _ = eqn.params["dimension_numbers"]
            lhs = eqn.invars[0].aval
            k = int(np.prod([lhs.shape[d] for d in contract]))
            total += int(np.prod(eqn.outvars[0].aval.shape)) * k
            products.add(eqn.outvars[0])
        elif name == "add" and len(eqn.invars) == 2:
            a, b = eqn.invars
            if (_in(a, products) and _in(b, params)) or (_in(b, products) and _in(a, params)):
                total += int(np.prod(eqn.outvars[0].aval.shape))
        elif name in _PASS_THROUGH:
            if eqn.invars and _in(eqn.invars[0], params):
                params.add(eqn.outvars[0])
            if eqn.invars and _in(eqn.invars[0], products) and name != "broadcast_in_dim":
                products.add(eqn.outvars[0])
        for sub in _subjaxprs(eqn):
            inner = sub.jaxpr if hasattr(sub, "jaxpr") else sub
            inner_params = {
                v for v, o in zip(inner.invars, eqn.invars, strict=False) if _in(o, params)
            }
            total += _count_jaxpr(inner, inner_params)
    return total


def _in(var: Any, group: set) -> bool:
    """Membership that treats literals (unhashable constants) as members of nothing."""
    return isinstance(var, jax.extend.core.Var) and var in group


def _subjaxprs(eqn: Any) -> list:
    out = []
    for value in eqn.params.values():
        values = value if isinstance(value, tuple | list) else (value,)
        for v in values:
            if isinstance(v, jax.extend.core.ClosedJaxpr | jax.extend.core.Jaxpr):
                out.append(v)
    return out
