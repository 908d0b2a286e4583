"""What every one-shot method shares: the state, the supernet's pure apply, optimisers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from flax import nnx

Batch = tuple[jax.Array, jax.Array]  # (images NHWC, int labels)


class OneShotState(NamedTuple):
    """The whole state of a supernet search: a pytree of fixed shapes (a scan carry)."""

    params: Any  # supernet weights (an nnx.State)
    alpha: jax.Array  # architecture parameters float32[E, K] (zeros for alpha-free methods)
    w_opt: Any
    alpha_opt: Any
    step: jax.Array  # int32[]: steps taken


class OneShot(NamedTuple):
    """A one-shot method as pure functions (see `jnas.oneshot.darts`).

    - `init(key) -> state`
    - `step(state, train_batch, val_batch, key) -> (state, metrics)`: one search step;
      metrics are float32 scalars (`w_loss`, `w_acc`, and `alpha_loss` where α is trained).
    - `derive(state, key=None, batch=None) -> arch`: the discrete architecture found;
      sampling-based methods rank candidates on `batch` with key `key`.
    - `apply(params, x, weights, index=None) -> logits`: the supernet as a pure function.
    """

    init: Callable[[jax.Array], OneShotState]
    step: Callable[[OneShotState, Batch, Batch, jax.Array], tuple[OneShotState, dict]]
    derive: Callable[..., Any]
    apply: Callable[..., jax.Array]


class Supernet(NamedTuple):
    """A space's supernet split into a static graph and a pure apply over its weights."""

    init_params: Callable[[jax.Array], Any]
    apply: Callable[..., jax.Array]


def make_supernet(space: Any, config: dict) -> Supernet:
    """Pure `init_params(key)` and `apply(params, x, weights, index)` for `space.supernet`."""
    if not callable(getattr(space, "supernet", None)):
        raise ValueError(f"one-shot search needs a space with a supernet; "
                         f"{type(space).__name__} has none")
    try:
        graphdef, _ = nnx.split(nnx.eval_shape(lambda: space.supernet(**config,
                                                                      rngs=nnx.Rngs(0))))
    except TypeError as e:
        raise ValueError(f"bad `supernet` config {config!r} for {type(space).__name__}: "
                         f"{e}") from e

    def init_params(key: jax.Array) -> Any:
        return nnx.split(space.supernet(**config, rngs=nnx.Rngs(key)))[1]

    def apply(params: Any, x: jax.Array, weights: jax.Array,
              index: jax.Array | None = None) -> jax.Array:
        return nnx.merge(graphdef, params)(x, weights, index)

    return Supernet(init_params, apply)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()


def accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
    return jnp.mean(jnp.argmax(logits, -1) == labels)


def nb201_w_lr(epochs: int, steps_per_epoch: int, lr: float = 0.025,
               min_lr: float = 0.001) -> optax.Schedule:
    """The NB201 search runs' weight learning rate: cosine from 0.025 to 0.001 per step."""
    return optax.cosine_decay_schedule(lr, epochs * steps_per_epoch, alpha=min_lr / lr)


def nb201_w_optimizer(lr: optax.ScalarOrSchedule, weight_decay: float = 5e-4,
                      clip: float = 5.0) -> optax.GradientTransformation:
    """SGD, Nesterov momentum 0.9, weight decay 5e-4, gradient-norm clip 5 (NB201)."""
    return optax.chain(optax.clip_by_global_norm(clip), optax.add_decayed_weights(weight_decay),
                       optax.sgd(lr, momentum=0.9, nesterov=True))


def nb201_alpha_optimizer(lr: float = 3e-4, weight_decay: float = 1e-3
                          ) -> optax.GradientTransformation:
    """Adam 3e-4, betas (0.5, 0.999), weight decay 1e-3 (PyTorch's L2 form) (NB201)."""
    return optax.chain(optax.add_decayed_weights(weight_decay),
                       optax.adam(lr, b1=0.5, b2=0.999))


def check_config(where: str, *, epochs: int, steps_per_epoch: int) -> None:
    for name, v in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{where}: `{name}` must be an integer >= 1; got {v!r}")


def alpha_shape(space: Any) -> tuple[int, int]:
    return (space.num_edges, space.num_ops)


def argmax_arch(space: Any, alpha: jax.Array) -> Any:
    """The cell taking the highest-weighted op on every edge (DARTS/GDAS derivation).

    For NB201, as the benchmark's authors derive, `none` competes like any other op.
    """
    return space.from_decisions(jnp.argmax(alpha, -1))


def w_update(loss_of_params: Callable[[Any], tuple[jax.Array, jax.Array]],
             optimizer: optax.GradientTransformation, params: Any,
             opt_state: Any) -> tuple[Any, Any, jax.Array, jax.Array]:
    """One optimiser step on the supernet weights; returns (params, opt_state, loss, acc)."""
    (loss, acc), grads = jax.value_and_grad(loss_of_params, has_aux=True)(params)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss, acc
