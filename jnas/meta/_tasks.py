"""Few-shot tasks as pure functions of a key: sinusoid regression and N-way K-shot
classification from classes of images. Same key, same task; `vmap` gives a task batch."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jnas._checks import check_positive


class Task(NamedTuple):
    """One task (or, with a leading axis, a batch): a support set to adapt on and a query
    set to measure the adapted model on."""

    support_x: jax.Array
    support_y: jax.Array
    query_x: jax.Array
    query_y: jax.Array


TaskSampler = Callable[[jax.Array], Task]  # key -> one task


def sinusoid(
    shots: int = 10,
    queries: int = 10,
    *,
    amplitude: tuple[float, float] = (0.1, 5.0),
    phase: tuple[float, float] = (0.0, float(np.pi)),
    x_range: tuple[float, float] = (-5.0, 5.0),
) -> TaskSampler:
    """Finn et al. (2017)'s sinusoid regression: y = A sin(x - phase), A ~ U[0.1, 5],
    phase ~ U[0, pi], x ~ U[-5, 5]; `shots` support and `queries` query points, x and y
    shaped [n, 1]."""
    check_positive("sinusoid", shots=shots, queries=queries)

    def sample(key: jax.Array) -> Task:
        k_a, k_p, k_x = jax.random.split(key, 3)
        a = jax.random.uniform(k_a, (), minval=amplitude[0], maxval=amplitude[1])
        p = jax.random.uniform(k_p, (), minval=phase[0], maxval=phase[1])
        x = jax.random.uniform(k_x, (shots + queries, 1), minval=x_range[0], maxval=x_range[1])
        y = a * jnp.sin(x - p)
        return Task(x[:shots], y[:shots], x[shots:], y[shots:])

    return sample


def few_shot(
    images: np.ndarray | jax.Array, ways: int = 5, shots: int = 1, queries: int = 15
) -> TaskSampler:
    """N-way K-shot classification tasks from `images[classes, examples, ...]`.

    A task draws `ways` distinct classes and, per class, `shots + queries` distinct
    examples; labels 0..ways-1 follow the random class order. Support and query are
    ordered class by class (`[ways * shots]`, `[ways * queries]`).
    """
    check_positive("few_shot", ways=ways, shots=shots, queries=queries)
    images = jnp.asarray(images)
    if images.ndim < 3:
        raise ValueError(
            f"few_shot: `images` must be [classes, examples, ...]; got shape {images.shape}"
        )
    num_classes, per_class = images.shape[:2]
    if ways > num_classes:
        raise ValueError(
            f"few_shot: `ways`={ways} needs >= {ways} classes; `images` has {num_classes}"
        )
    if shots + queries > per_class:
        raise ValueError(
            f"few_shot: `shots + queries` = {shots + queries} exceeds the "
            f"{per_class} examples per class"
        )

    def sample(key: jax.Array) -> Task:
        k_c, k_e = jax.random.split(key)
        classes = jax.random.permutation(k_c, num_classes)[:ways]
        picks = jax.vmap(lambda k: jax.random.permutation(k, per_class)[: shots + queries])(
            jax.random.split(k_e, ways)
        )
        x = images[classes[:, None], picks]  # [ways, shots + queries, ...]
        y = jnp.broadcast_to(jnp.arange(ways)[:, None], (ways, shots + queries))
        flat = lambda a: a.reshape((-1, *a.shape[2:]))
        return Task(flat(x[:, :shots]), flat(y[:, :shots]), flat(x[:, shots:]), flat(y[:, shots:]))

    return sample


def task_batch(sample: TaskSampler, key: jax.Array, num_tasks: int) -> Task:
    """`num_tasks` independent tasks (a leading axis), task i from `fold_in(key, i)`."""
    return jax.vmap(lambda i: sample(jax.random.fold_in(key, i)))(jnp.arange(num_tasks))
