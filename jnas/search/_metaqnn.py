"""MetaQNN as published (Baker, Gupta, Naik & Raskar, "Designing Neural Network
Architectures using Reinforcement Learning", ICLR 2017, Section 3-4).

The agent's state is the current layer: its depth, its type and parameters (the layer
token) and the representation size it leaves, binned as the paper does ((inf, 8], (8, 4],
(4, 1] for CIFAR-sized inputs: `size_bins=(8, 4)`). Its actions are the next layers the
paper's rules allow from that state (`space.allowed_next`: no pooling after pooling, no
convolution or pooling after a fully-connected layer, at most `max_fc` fully-connected
layers and only at a small representation, terminate at any depth after the first layer).
The episode ends at `terminal` (or the maximum depth); its reward, the architecture's
fitness, comes at the end. Q-learning with an ε schedule and experience replay, each
replayed episode updated from its last transition to its first:
    Q[s_t, a_t] <- (1 - lr) Q[s_t, a_t] + lr * (r if a_t ends it else max_a' Q[s_t+1, a'])
with the max over the actions allowed in s_t+1. (`q_learning` is the generic form over any
space's decisions, whose state is only (step, previous decision).)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jnas._checks import check_positive
from jnas.search._base import Searcher
from jnas.search._qlearning import q_settings, replay_tell
from jnas.spaces import LayerRules, Space, require


class MetaQNNState(NamedTuple):
    q: jax.Array  # float32[depth, tokens + 1 (start), bins, tokens]: Q[state, next layer]
    memory: jax.Array  # int32[M, depth]: replayed episodes' layer tokens
    rewards: jax.Array  # float32[M]
    stored: jax.Array  # int32[]
    num_told: jax.Array  # int32[]
    key: jax.Array  # uint32 key data of the replay sampler
    best: Any
    best_fitness: jax.Array


def metaqnn(
    space: Any,
    batch_size: int = 1,
    learning_rate: float = 0.01,
    discount: float = 1.0,
    epsilon: float | Callable[[jax.Array], jax.Array] | None = None,
    replay: int = 100,
    memory: int = 1000,
    size_bins: Sequence[int] = (8, 4),
) -> Searcher:
    """MetaQNN's agent on a layer-rule space (`Sequential`); see the module docstring.
    `epsilon` as in `q_learning` (default `metaqnn_epsilon()`); Q starts at the first
    batch's mean reward (the paper's 0.5 for accuracies in [0, 1])."""
    where = "metaqnn"
    require(where, space, Space, LayerRules)
    check_positive(where, batch_size=batch_size, replay=replay, memory=memory)
    epsilon = q_settings(where, learning_rate, discount, epsilon)
    bins = tuple(int(b) for b in size_bins)
    if list(bins) != sorted(bins, reverse=True) or any(b < 1 for b in bins):
        raise ValueError(
            f"{where}: `size_bins` must be decreasing positive sizes; got {size_bins!r}"
        )
    depth, tokens = space.max_layers, space.num_tokens
    start = tokens  # the "previous layer" of the first layer

    def bin_of(state: Any) -> jax.Array:
        size = space.state_size(state)
        return jnp.sum(jnp.stack([(size <= b).astype(jnp.int32) for b in bins]))

    def states(layers: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Per step of an episode, the state it acts in: (previous token, size bin,
        allowed actions)."""

        def step(carry, token):
            rules, prev = carry
            here = (prev, bin_of(rules), space.allowed_next(rules))
            rules = space.next_state(rules, token)
            return (rules, token), here

        (_, _), (prev, b, allowed) = jax.lax.scan(
            step, (space.start_state(), jnp.int32(start)), layers
        )
        return prev, b, allowed

    def init(key: jax.Array) -> MetaQNNState:
        return MetaQNNState(
            jnp.zeros((depth, tokens + 1, len(bins) + 1, tokens), jnp.float32),
            jnp.zeros((memory, depth), jnp.int32),
            jnp.zeros((memory,), jnp.float32),
            jnp.zeros((), jnp.int32),
            jnp.zeros((), jnp.int32),
            jax.random.key_data(key),
            space.sample(key),
            jnp.full((), -jnp.inf, jnp.float32),
        )

    def episode(q: jax.Array, eps: jax.Array, key: jax.Array) -> jax.Array:
        def step(carry, inputs):
            rules, prev = carry
            t, k = inputs
            k_explore, k_random, k_greedy = jax.random.split(k, 3)
            allowed = space.allowed_next(rules)
            values = jnp.where(allowed, q[t, prev, bin_of(rules)], -jnp.inf)
            best = values == jnp.max(values)
            greedy = jax.random.categorical(k_greedy, jnp.where(best, 0.0, -jnp.inf))
            uniform = jax.random.categorical(k_random, jnp.where(allowed, 0.0, -jnp.inf))
            token = jnp.where(jax.random.uniform(k_explore) < eps, uniform, greedy)
            token = token.astype(jnp.int32)
            return (space.next_state(rules, token), token), token

        _, layers = jax.lax.scan(
            step,
            (space.start_state(), jnp.int32(start)),
            (jnp.arange(depth), jax.random.split(key, depth)),
        )
        return layers

    def ask(key: jax.Array, state: MetaQNNState) -> tuple[Any, MetaQNNState]:
        k_episodes, k_replay = jax.random.split(key)
        eps = epsilon(state.num_told)
        layers = jax.vmap(episode, in_axes=(None, None, 0))(
            state.q, eps, jax.random.split(k_episodes, batch_size)
        )
        archs = jax.vmap(space.from_decisions)(layers)  # valid already: unchanged
        return archs, state._replace(key=jax.random.key_data(k_replay))

    def replay_one(q: jax.Array, layers: jax.Array, reward: jax.Array) -> jax.Array:
        prev, b, allowed = states(layers)
        # the episode's length: its steps up to and including the first terminal
        ends = layers == 0
        length = jnp.where(jnp.any(ends), jnp.argmax(ends) + 1, depth)

        def update(i, q):
            t = length - 1 - i  # last transition first
            nxt = jnp.minimum(t + 1, depth - 1)
            future = jnp.max(jnp.where(allowed[nxt], q[nxt, prev[nxt], b[nxt]], -jnp.inf))
            target = jnp.where(t == length - 1, reward, discount * future)
            old = q[t, prev[t], b[t], layers[t]]
            new = q.at[t, prev[t], b[t], layers[t]].set(old + learning_rate * (target - old))
            return jnp.where(t >= 0, new, q)

        return jax.lax.fori_loop(0, depth, update, q)

    def tell(state: MetaQNNState, archs: Any, fitness: jax.Array) -> MetaQNNState:
        episodes = jax.vmap(space.to_decisions)(archs).astype(jnp.int32)
        return replay_tell(state, archs, episodes, fitness, replay_one, replay, memory)

    return Searcher(init, ask, tell, batch_size)
