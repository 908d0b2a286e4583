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

from jnas.nn import count_apply_flops, record_taps

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


def _ce(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def nwot(apply: Apply, params: Any, batch: Batch) -> jax.Array:
    """NASWOT v2 (Mellor et al., ICML 2021; NASLib's `nwot`): each example's binary code
    c = [input > 0] at every ReLU, K = sum over ReLUs of c c' + (1 - c)(1 - c)' (examples x
    examples: how many units agree), score = log |det K|. High when examples fall into
    different linear regions. Reads the `"relu"` taps (`jnas.nn.record_taps`)."""
    x = batch[0]
    n = x.shape[0]
    with record_taps("relu") as rec:
        apply(params, x)
    if not rec["relu"]:
        raise ValueError("nwot: the network has no jnas ReLU (no `relu` tap was recorded)")
    dtype = jnp.result_type(float)
    k = jnp.zeros((n, n), dtype)
    for t in rec["relu"]:
        c = (t.value.reshape(n, -1) > 0).astype(jnp.float32)
        agree = c @ c.T + (1.0 - c) @ (1.0 - c).T
        k = k + jnp.asarray(t.weight, dtype) * agree.astype(dtype)
    return jnp.linalg.slogdet(k)[1]


def fisher(apply: Apply, params: Any, batch: Batch) -> jax.Array:
    """Fisher pruning saliency (Theis et al. 2018; Turner et al., BlockSwap, ICLR 2020; as
    NASLib sums it): for every channel of every convolution / linear output a,
    0.5 * mean over examples of (sum over positions a * dL/da)^2, summed. Reads the
    `"layer"` taps, offset by zeros to get dL/da."""
    x, labels = batch

    def probe(p):
        with record_taps("layer") as rec:
            apply(p, x)
        return [t.value for t in rec["layer"]]

    shapes = jax.eval_shape(probe, params)
    if not shapes:
        raise ValueError("fisher: the network has no jnas conv / linear (no `layer` tap)")

    def loss(offsets):
        with record_taps("layer", offsets={"layer": offsets}) as rec:
            logits = apply(params, x)
        return _ce(logits, labels), [t.value for t in rec["layer"]]

    zeros = [jnp.zeros(s.shape, s.dtype) for s in shapes]
    grads, acts = jax.grad(loss, has_aux=True)(zeros)
    terms = []
    for a, g in zip(acts, grads, strict=True):
        prod = a * g
        per = jnp.sum(prod, axis=tuple(range(1, prod.ndim - 1))) if prod.ndim > 2 else prod
        terms.append(jnp.sum(0.5 * jnp.mean(per**2, axis=0)))
    return _total(terms)


def epe_nas(
    apply: Apply, params: Any, batch: Batch, *, num_classes: int, k: float = 1e-5
) -> jax.Array:
    """EPE-NAS (Lopes et al., ICANN 2021; NASLib's `epe_nas`): input Jacobians J (as
    `jacob_cov`), per class c the correlation matrix of its examples' J and
    s_c = sum log(|corr| + k); score = sum_c |s_c| for up to 100 classes, else (s_c divided by
    the class size) sum over class pairs |s_c - s_c'| / classes seen (with two examples or
    more). Classes absent from the batch count nothing."""
    x, labels = batch
    jac = jax.grad(lambda inp: jnp.sum(apply(params, inp)))(x).reshape(x.shape[0], -1)
    logs = jnp.log(jnp.abs(jnp.corrcoef(jac)) + k)
    onehot = jax.nn.one_hot(labels, num_classes, dtype=logs.dtype)  # [N, C]
    s = jnp.einsum("ic,ij,jc->c", onehot, logs, onehot)
    count = jnp.sum(onehot, axis=0)
    if num_classes <= 100:
        return jnp.sum(jnp.abs(s))
    seen = count > 1  # NASLib skips a class seen once here (its len() of a 0-d array fails)
    s = jnp.where(seen, s / jnp.maximum(count, 1), 0.0)
    pair = seen[:, None] & seen[None, :]
    total = jnp.sum(jnp.where(pair, jnp.abs(s[:, None] - s[None, :]), 0.0))
    return total / jnp.maximum(jnp.sum(seen), 1)


def zen(
    key: jax.Array,
    apply: Apply,
    params: Any,
    input_shape: tuple[int, ...],
    *,
    mixup: float = 1e-2,
    select: Select = kernels,
) -> jax.Array:
    """Zen-score (Lin et al., "Zen-NAS", ICCV 2021): the selected weights redrawn from
    N(0, 1) and biases zeroed (their Gaussian network), x and e ~ N(0, 1) of `input_shape`,
    Delta = mean over examples of sum |f(x) - f(x + mixup * e)| with f the feature map before
    global pooling (the `"features"` tap), score = log Delta + sum over batch norms of
    log sqrt(mean over channels of the batch variance of its input) (the `"norm"` taps, the
    paper's definition; NASLib uses running variances, which adds a constant per norm).
    Data-free; run the network with batch statistics (training mode)."""
    k_w, k_x, k_e = jax.random.split(key, 3)
    paths = _paths(params)
    leaves, treedef = jax.tree.flatten(params)
    keys = jax.random.split(k_w, len(leaves))
    gaussian = []
    for leaf, path, k in zip(leaves, paths, keys, strict=True):
        if select(path):
            leaf = jax.random.normal(k, jnp.shape(leaf), jnp.result_type(leaf))
        elif path.split("/")[-1] == "bias" or path.endswith("bias/value"):
            leaf = jnp.zeros_like(leaf)
        gaussian.append(leaf)
    p = treedef.unflatten(gaussian)
    x = jax.random.normal(k_x, input_shape)
    e = jax.random.normal(k_e, input_shape)

    def run(inp):
        with record_taps("features", "norm") as rec:
            apply(p, inp)
        if not rec["features"]:
            raise ValueError("zen: the network records no `features` tap (a jnas classifier head)")
        return rec["features"][-1].value, rec["norm"]

    f1, norms = run(x)
    f2, _ = run(x + mixup * e)
    delta = jnp.mean(jnp.sum(jnp.abs(f1 - f2).reshape(f1.shape[0], -1), axis=1))
    bn = [
        0.5 * jnp.log(jnp.mean(jnp.var(t.value, axis=tuple(range(t.value.ndim - 1)))))
        for t in norms
    ]
    return jnp.log(delta) + (_total(bn) if bn else 0.0)


def flops(apply: Apply, params: Any, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on `input_shape` (data-free; NASLib's
    `flops`, the benchmarks' convention: `jnas.nn.count_flops`). On a supernet it counts
    every candidate op: score a cell on `space.build(arch)`."""
    return count_apply_flops(apply, params, input_shape)


def l2_norm(params: Any, *, select: Select = kernels) -> jax.Array:
    """Sum over weight tensors of ||w||_2 (data-free)."""
    return _total(jnp.linalg.norm(w.ravel()) for w in _scored(params, select))


def num_params(params: Any) -> int:
    """The number of trainable scalars (NASLib's `params`)."""
    return int(sum(a.size for a in jax.tree.leaves(params)))


# What `score_architectures` must know about a proxy: the ones that read taps run the
# supernet without `index` (no `lax.switch`), the ones that read the weights' structure
# rather than gradients count every candidate op of a supernet and need `space.build`.
READS_TAPS = frozenset({nwot, fisher})
NOT_ON_SUPERNET = frozenset({flops, l2_norm, num_params, zen})  # zen: wide norms
