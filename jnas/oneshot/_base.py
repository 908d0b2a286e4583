"""What every one-shot method shares: the state, the supernet's pure apply, optimisers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, NamedTuple, TypeVar, cast

import jax
import jax.numpy as jnp
import optax

from jnas._checks import check_positive
from jnas._execution import cpu_compiler_options
from jnas.nn import functional, init_normal
from jnas.spaces import HasSupernet, require

Batch = tuple[jax.Array, jax.Array]  # (images NHWC, int labels)


class OneShotState(NamedTuple):
    """The state of a search with architecture parameters α (DARTS, GDAS, SNAS, DrNAS,
    ProxylessNAS, SETN): a pytree of fixed shapes (a scan carry)."""

    params: Any  # supernet weights (an nnx.State)
    alpha: jax.Array  # architecture parameters float32[E, K]
    w_opt: Any
    alpha_opt: Any
    step: jax.Array  # int32[]: steps taken


class SharedWeightsState(NamedTuple):
    """The state of an α-free search (RSWS, SPOS, one-shot dropout): only the shared
    weights train; the cell is searched for afterwards with them."""

    params: Any
    w_opt: Any
    step: jax.Array


S = TypeVar("S")


class OneShot(NamedTuple, Generic[S]):
    """A one-shot method as pure functions over a state `S` (`OneShotState`,
    `SharedWeightsState`, `ENASState`).

    - `init(key) -> state`
    - `step(key, state, train_batch, val_batch) -> (state, metrics)`: one search step
      (the PRNG key first, as in `Searcher.ask`; methods that draw nothing accept None);
      metrics are float32 scalars (`w_loss`, `w_acc`, and `alpha_loss` where α is trained).
    - `derive(state, key=None, batch=None) -> arch`: the discrete architecture found;
      sampling-based methods rank candidates on `batch` with key `key`.
    - `apply(params, x, weights, index=None) -> logits`: the supernet as a pure function.
    - `cpu_compiler_options`: XLA:CPU options for compiling `step` (`jit_step`).
    """

    init: Callable[[jax.Array], S]
    step: Callable[[jax.Array, S, Batch, Batch], tuple[S, dict]]
    derive: Callable[..., Any]
    apply: Callable[..., jax.Array]
    # (name, value) pairs, hashable as `epoch_fn`'s cache needs; `jit_step` and the epoch
    # loop apply them on CPU (DARTS-V1: `jnas._execution.CLASSIC_EMITTERS`, why there)
    cpu_compiler_options: tuple[tuple[str, Any], ...] = ()


def jit_step(method: OneShot, **jit_kwargs: Any) -> Callable[..., Any]:
    """`jax.jit(method.step, **jit_kwargs)` with the method's CPU compiler options."""
    options = cpu_compiler_options(method.cpu_compiler_options)
    return jax.jit(method.step, compiler_options=options, **jit_kwargs)


class Supernet(NamedTuple):
    """A space's supernet split into a static graph and a pure apply over its weights."""

    init_params: Callable[[jax.Array], Any]
    apply: Callable[..., jax.Array]


def make_supernet(space: HasSupernet, config: dict) -> Supernet:
    """Pure `init_params(key)` and `apply(params, x, weights, index)` for `space.supernet`.

    `config` goes to `space.supernet`, except `compute_dtype` (e.g. `jnp.bfloat16`): mixed
    precision, where the parameters stay float32 (the optimiser's master copy) and are
    cast with the inputs and op weights for the forward and backward pass; batch-norm
    statistics and the logits are float32.
    """
    config = dict(config)
    compute_dtype = config.pop("compute_dtype", None)
    require("one-shot search", space, HasSupernet)
    try:
        net = functional(lambda rngs: space.supernet(**config, rngs=rngs), compute_dtype)
    except TypeError as e:
        raise ValueError(f"bad `supernet` config {config!r} for {type(space).__name__}: {e}") from e

    def apply(
        params: Any, x: jax.Array, weights: jax.Array, index: jax.Array | None = None
    ) -> jax.Array:
        return net.apply(params, x, weights, index)

    return Supernet(net.init, apply)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(logits, -1) == labels)


def nb201_w_lr(
    epochs: int, steps_per_epoch: int, lr: float = 0.025, min_lr: float = 0.001
) -> optax.Schedule:
    """The NB201 search runs' weight learning rate: cosine from 0.025 to 0.001 per step."""
    return optax.cosine_decay_schedule(lr, epochs * steps_per_epoch, alpha=min_lr / lr)


def nb201_w_optimizer(
    lr: optax.ScalarOrSchedule, weight_decay: float = 5e-4, clip: float = 5.0
) -> optax.GradientTransformation:
    """SGD, Nesterov momentum 0.9, weight decay 5e-4, gradient-norm clip 5 (NB201)."""
    return optax.chain(
        optax.clip_by_global_norm(clip),
        optax.add_decayed_weights(weight_decay),
        optax.sgd(lr, momentum=0.9, nesterov=True),
    )


def nb201_alpha_optimizer(
    lr: float = 3e-4, weight_decay: float = 1e-3
) -> optax.GradientTransformation:
    """Adam 3e-4, betas (0.5, 0.999), weight decay 1e-3 (PyTorch's L2 form) (NB201)."""
    return optax.chain(optax.add_decayed_weights(weight_decay), optax.adam(lr, b1=0.5, b2=0.999))


def darts_rnn_optimizers(
    lr: float = 20.0, weight_decay: float = 5e-7, clip: float = 0.25, alpha_lr: float = 3e-3
) -> dict[str, Any]:
    """DARTS' recurrent search settings (`rnn/train_search.py`): SGD 20 with weight decay
    5e-7 and gradient clip 0.25 on the weights, Adam 3e-3 with weight decay 1e-3 on α. A
    dict of `w_lr`, `w_optimizer`, `alpha_optimizer` for any method's config."""
    w = optax.chain(
        optax.clip_by_global_norm(clip), optax.add_decayed_weights(weight_decay), optax.sgd(lr)
    )
    a = optax.chain(optax.add_decayed_weights(1e-3), optax.adam(alpha_lr, b1=0.9, b2=0.999))
    return {"w_lr": lr, "w_optimizer": w, "alpha_optimizer": a}


def check_config(where: str, *, epochs: int, steps_per_epoch: int) -> None:
    check_positive(where, epochs=epochs, steps_per_epoch=steps_per_epoch)


def alpha_shape(space: Any) -> tuple[int, int]:
    """(E, K): slots x candidates of the space's supernet (`space.supernet_shape`)."""
    return tuple(space.supernet_shape)


def sample_from_alpha(space: Any, key: jax.Array, alpha: jax.Array) -> Any:
    """An architecture drawn from α: `space.derive` of Gumbel-perturbed softmax(α) (the
    Gumbel-max trick: for NB201 each edge's op ~ softmax(α[e]) independently)."""
    scores = jax.nn.log_softmax(alpha, -1) + jax.random.gumbel(key, alpha.shape)
    return space.derive(jax.nn.softmax(scores, -1))


def argmax_derive(
    space: Any, transform: Callable[[jax.Array], jax.Array] | None = None
) -> Callable[..., Any]:
    """`derive(state, key=None, batch=None)`: `space.derive` of the op weights
    `transform(state.alpha)` (softmax by default): the highest-weighted op on every edge
    for NB201 (where, as the benchmark's authors derive, `none` competes like any other
    op), DARTS' top-2 strongest inputs per node for DARTS (DARTS/GDAS/SNAS/DrNAS/
    ProxylessNAS derivation).
    """
    transform = transform or (lambda a: jax.nn.softmax(a, -1))

    def derive(state: OneShotState, key: jax.Array | None = None, batch: Any = None) -> Any:
        return space.derive(transform(state.alpha))

    return derive


def w_update(
    loss_of_params: Callable[[Any], tuple[jax.Array, jax.Array]],
    optimizer: optax.GradientTransformation,
    params: Any,
    opt_state: Any,
) -> tuple[Any, Any, jax.Array, jax.Array]:
    """One optimiser step on the supernet weights; returns (params, opt_state, loss, acc)."""
    (loss, acc), grads = jax.value_and_grad(loss_of_params, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, acc


def alpha_init_fn(
    net: Supernet,
    space: Any,
    w_opt: optax.GradientTransformation,
    a_opt: optax.GradientTransformation,
    scale: float,
) -> Callable[[jax.Array], OneShotState]:
    """`init(key)`: fresh supernet weights and α = scale * N(0, 1) of shape [E, K]."""

    def init(key: jax.Array) -> OneShotState:
        k_w, k_a = jax.random.split(key)
        params = net.init_params(k_w)
        alpha = scale * init_normal(k_a, alpha_shape(space))
        return OneShotState(
            params, alpha, w_opt.init(params), a_opt.init(alpha), jnp.zeros((), jnp.int32)
        )

    return init


def alpha_update(
    a_opt: optax.GradientTransformation, alpha: jax.Array, opt_state: Any, grad: jax.Array
) -> tuple[jax.Array, Any]:
    updates, opt_state = a_opt.update(grad, opt_state, alpha)
    return cast(jax.Array, optax.apply_updates(alpha, updates)), opt_state


def optimizers(
    epochs: int, steps_per_epoch: int, w_lr: Any, w_optimizer: Any, alpha_optimizer: Any
) -> tuple[Any, optax.GradientTransformation, optax.GradientTransformation]:
    """(w learning rate, w optimiser, α optimiser), the NB201 defaults where None."""
    lr = nb201_w_lr(epochs, steps_per_epoch) if w_lr is None else w_lr
    return lr, w_optimizer or nb201_w_optimizer(lr), alpha_optimizer or nb201_alpha_optimizer()


def supernet_accuracy(
    net: Supernet, space: Any, params: Any, archs: Any, batch: tuple[jax.Array, jax.Array]
) -> jax.Array:
    """Accuracy on `batch` of each of a batch of cells with the shared weights, one cell
    at a time (`lax.map`, so each runs only its own ops)."""

    def one(arch):
        index = space.supernet_index(arch)
        logits = net.apply(params, batch[0], jax.nn.one_hot(index, alpha_shape(space)[1]), index)
        return accuracy(logits, batch[1])

    return jax.lax.map(one, archs)


def best_of(
    net: Supernet, space: Any, params: Any, archs: Any, batch: tuple[jax.Array, jax.Array]
) -> Any:
    """The cell of `archs` with the highest supernet accuracy on `batch`."""
    best = jnp.argmax(supernet_accuracy(net, space, params, archs, batch))
    return jax.tree.map(lambda a: a[best], archs)


def need_data(where: str, key: jax.Array | None, batch: Batch | None) -> tuple[jax.Array, Batch]:
    """(key, batch) for a `derive` that ranks cells with the supernet, or a clear error."""
    if key is None or batch is None:
        raise ValueError(
            f"{where}.derive ranks cells with the supernet: pass `key` and a validation `batch`"
        )
    return key, batch
