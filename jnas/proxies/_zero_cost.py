"""Zero-cost proxies: scores of an untrained network that rank architectures without
training them (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021;
Mellor et al., "Neural Architecture Search without Training", ICML 2021), as NASLib and
NAS-Bench-Suite-Zero compute them.

Each proxy is a pure function of the network's `apply(params, x) -> logits`, its
`params` (a pytree, e.g. from `jnas.nn.functional`) and, where it reads data, a `batch`
(images, integer labels). The scored weights are those of convolutions and linear layers
(leaves named `kernel`, NASLib's `layer.weight` of `Conv2d` / `Linear`); `select`
chooses others. Results depend on the initialisation, the batch and its size: they are
arguments, never hidden defaults.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import optax

Apply = Callable[[Any, jax.Array], jax.Array]
Batch = tuple[jax.Array, jax.Array]
Select = Callable[[str], bool]  # leaf path "a/b/kernel" -> scored?


def kernels(path: str) -> bool:
    """Convolution and linear weights: the leaves named `kernel` (biases, batch-norm
    scales and architecture parameters are not scored)."""
    parts = path.split("/")
    return parts[-1] == "kernel" or parts[-2:] == ["kernel", "value"]


def _paths(tree: Any) -> list[str]:
    return [
        jax.tree_util.keystr(p, simple=True, separator="/")
        for p, _ in jax.tree_util.tree_flatten_with_path(tree)[0]
    ]


def _scored(tree: Any, select: Select) -> list[jax.Array]:
    """The leaves of `tree` that `select` keeps, in tree order."""
    leaves = jax.tree.leaves(tree)
    chosen = [leaf for leaf, p in zip(leaves, _paths(tree), strict=True) if select(p)]
    if not chosen:
        raise ValueError(f"no parameter selected for scoring (leaf paths: {_paths(tree)[:6]}...)")
    return chosen


def _total(terms: Any) -> jax.Array:
    return jnp.sum(jnp.stack(list(terms)))


def _loss_grad(apply: Apply, params: Any, batch: Batch) -> Any:
    def loss(p):
        return optax.softmax_cross_entropy_with_integer_labels(apply(p, batch[0]), batch[1]).mean()

    return jax.grad(loss)(params)


def grad_norm(apply: Apply, params: Any, batch: Batch, *, select: Select = kernels) -> jax.Array:
    """Sum over weight tensors of ||dL/dw||_2 (cross-entropy on `batch`)."""
    grads = _scored(_loss_grad(apply, params, batch), select)
    return _total(jnp.linalg.norm(g.ravel()) for g in grads)


def snip(apply: Apply, params: Any, batch: Batch, *, select: Select = kernels) -> jax.Array:
    """SNIP's connection sensitivity summed: sum |w * dL/dw| (Lee et al., ICLR 2019)."""
    grads = _scored(_loss_grad(apply, params, batch), select)
    weights = _scored(params, select)
    return _total(jnp.sum(jnp.abs(w * g)) for w, g in zip(weights, grads, strict=True))


def plain(apply: Apply, params: Any, batch: Batch, *, select: Select = kernels) -> jax.Array:
    """sum w * dL/dw (the first-order Taylor term, no absolute value)."""
    grads = _scored(_loss_grad(apply, params, batch), select)
    weights = _scored(params, select)
    return _total(jnp.sum(w * g) for w, g in zip(weights, grads, strict=True))


def grasp(apply: Apply, params: Any, batch: Batch, *, select: Select = kernels) -> jax.Array:
    """GraSP (Wang et al., ICLR 2020) as NASLib scores it: -sum w * (H g), with g = dL/dw
    held constant and H the Hessian of the loss in the scored weights (an exact
    Hessian-vector product)."""
    leaves, treedef = jax.tree.flatten(params)
    mask = [select(p) for p in _paths(params)]

    def loss_of(sel):
        it = iter(sel)
        full = treedef.unflatten([next(it) if m else x for x, m in zip(leaves, mask, strict=True)])
        return optax.softmax_cross_entropy_with_integer_labels(
            apply(full, batch[0]), batch[1]
        ).mean()

    sel = [x for x, m in zip(leaves, mask, strict=True) if m]
    if not sel:
        raise ValueError(f"no parameter selected for scoring (leaf paths: {_paths(params)[:6]}...)")
    g = jax.lax.stop_gradient(jax.grad(loss_of)(sel))
    hg = jax.jvp(jax.grad(loss_of), (sel,), (g,))[1]
    return -_total(jnp.sum(w * h) for w, h in zip(sel, hg, strict=True))


def synflow(
    apply: Apply, params: Any, input_shape: tuple[int, ...], *, select: Select = kernels
) -> jax.Array:
    """SynFlow (Tanaka et al., NeurIPS 2020) as Abdelfattah et al. score networks: every
    parameter replaced by its absolute value, an all-ones input of `input_shape` (batch
    axis included), R = sum of the outputs, score = sum |w| * dR/d|w|. Data-free. Run it
    in float64 (`jax.enable_x64`) and on a network without batch norm, as they do: the
    product over layers overflows float32 on deep networks."""
    dtype = jnp.result_type(float)  # float64 under jax.enable_x64, else float32
    positive = jax.tree.map(
        lambda a: jnp.abs(a.astype(dtype)) if jnp.issubdtype(a.dtype, jnp.floating) else a,
        params,
    )
    ones = jnp.ones(input_shape, dtype)
    grads = jax.grad(lambda p: jnp.sum(apply(p, ones)))(positive)
    weights = _scored(positive, select)
    return _total(jnp.sum(w * g) for w, g in zip(weights, _scored(grads, select), strict=True))


def jacob_cov(apply: Apply, params: Any, batch: Batch, *, k: float = 1e-5) -> jax.Array:
    """NASWOT v1 (Mellor et al. 2020, the "jacob_cov" of NASLib): J[b] = d sum_c y[b, c] /
    d x[b] per example, C = corrcoef(J), score = -sum_i log(λ_i + k) + 1 / (λ_i + k)
    over C's eigenvalues: high when the examples' input gradients are uncorrelated."""
    x = batch[0]
    jac = jax.grad(lambda inp: jnp.sum(apply(params, inp)))(x).reshape(x.shape[0], -1)
    corr = jnp.corrcoef(jac)
    eig = jnp.linalg.eigvalsh(corr)
    return -jnp.sum(jnp.log(eig + k) + 1.0 / (eig + k))


def l2_norm(params: Any, *, select: Select = kernels) -> jax.Array:
    """Sum over weight tensors of ||w||_2 (data-free)."""
    return _total(jnp.linalg.norm(w.ravel()) for w in _scored(params, select))


def num_params(params: Any) -> int:
    """The number of trainable scalars (NASLib's `params`)."""
    return int(sum(a.size for a in jax.tree.leaves(params)))
