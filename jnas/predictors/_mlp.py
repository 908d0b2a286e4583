"""An ensemble of small MLP regressors (BANANAS' predictor), trained by Adam inside jit.

`ensemble_fit(key, x, y, mask)` trains `members` independently initialised MLPs on the
masked rows (full-batch Adam for `steps` steps, one `lax.scan`); `ensemble_predict` gives
every member's prediction, whose spread is BANANAS' uncertainty.

A search's history is a fixed-size buffer filled from the front, mostly empty early on: the
full-batch gradient is summed over blocks of rows up to the last unmasked one (a loop whose
trip count is that row's block), so a fit costs what the history holds, not its capacity.
"""

from __future__ import annotations

import itertools
from typing import Any

import jax
import jax.numpy as jnp
import optax

from jnas.predictors._blocks import blocked_grad, used_rows


def _init_mlp(key: jax.Array, sizes: tuple[int, ...]) -> list[dict]:
    params = []
    for k, (fin, fout) in zip(
        jax.random.split(key, len(sizes) - 1), itertools.pairwise(sizes), strict=True
    ):
        bound = 1.0 / jnp.sqrt(fin)
        params.append(
            {
                "w": jax.random.uniform(k, (fin, fout), minval=-bound, maxval=bound),
                "b": jnp.zeros(fout),
            }
        )
    return params


def _mlp(params: list[dict], x: jax.Array) -> jax.Array:
    for layer in params[:-1]:
        x = jax.nn.relu(x @ layer["w"] + layer["b"][None, :])
    return (x @ params[-1]["w"] + params[-1]["b"][None, :])[..., 0]


def ensemble_fit(
    key: jax.Array,
    x: jax.Array,
    y: jax.Array,
    mask: jax.Array,
    *,
    members: int = 5,
    hidden: tuple[int, ...] = (32, 32),
    steps: int = 200,
    learning_rate: float = 0.01,
) -> dict[str, Any]:
    """Train the ensemble on (x[mask], y[mask]) with a mean absolute error loss (as
    BANANAS); targets are standardised, the statistics kept for `ensemble_predict`."""
    x = jnp.asarray(x, jnp.float32)
    m = mask.astype(jnp.float32)
    n = jnp.maximum(jnp.sum(m), 1.0)
    mean = jnp.sum(y * m) / n
    scale = jnp.sqrt(jnp.sum(jnp.square(y - mean) * m) / n) + 1e-6
    z = jnp.where(mask, (y - mean) / scale, 0.0)
    sizes = (x.shape[-1], *hidden, 1)
    tx = optax.adam(learning_rate)
    used = used_rows(mask)

    def block_loss(p, xb, zb, mb):
        return jnp.sum(jnp.abs(_mlp(p, xb) - zb) * mb) / n

    def grad(p):  # the full-batch MAE gradient, block by block over the rows in use
        return blocked_grad(block_loss, p, (x, z, m), used)

    def train_one(k):
        params = _init_mlp(k, sizes)

        def body(carry, _):
            p, s = carry
            g = grad(p)
            u, s = tx.update(g, s, p)
            return (optax.apply_updates(p, u), s), None

        (params, _), _ = jax.lax.scan(body, (params, tx.init(params)), None, length=steps)
        return params

    return {
        "members": jax.vmap(train_one)(jax.random.split(key, members)),
        "mean": mean,
        "scale": scale,
    }


def ensemble_predict(model: dict[str, Any], x: jax.Array) -> jax.Array:
    """float32[members, N]: each member's prediction at rows `x` (original units)."""
    preds = jax.vmap(lambda p: _mlp(p, jnp.asarray(x, jnp.float32)))(model["members"])
    return model["mean"] + model["scale"] * preds
