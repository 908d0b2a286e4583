"""Two searchers run on the same keys and rewards, for the tests that a factory's defaults
ask and learn exactly what the same settings written out do."""

import jax
import jax.numpy as jnp
import numpy as np


def told(searcher, key, rewards):
    """(state, asked): `searcher`'s state after one jitted ask and tell per reward (a batch
    of one, ask keys split from `key`), and the architectures it asked."""
    state, ask, tell = searcher.init(key), jax.jit(searcher.ask), jax.jit(searcher.tell)
    asked = []
    for k, reward in zip(jax.random.split(key, len(rewards)), rewards, strict=True):
        archs, state = ask(k, state)
        asked.append(archs)
        state = tell(state, archs, jnp.asarray([reward], jnp.float32))
    return state, asked


def assert_same_asks(searchers, states, keys):
    """Each searcher asks, from its own state, the same architectures for every key."""
    first, second = (
        jax.vmap(lambda k, s=s, state=state: s.ask(k, state)[0])(keys)
        for s, state in zip(searchers, states, strict=True)
    )
    for a, b in zip(jax.tree.leaves(first), jax.tree.leaves(second), strict=True):
        np.testing.assert_array_equal(a, b)
