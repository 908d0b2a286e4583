"""Q-learning over a space's decisions with an ε-greedy schedule and experience replay
(MetaQNN: Baker, Gupta, Naik & Raskar, "Designing Neural Network Architectures using
Reinforcement Learning", ICLR 2017).

An architecture is an episode: at step t the agent is in state (t, previous decision) and
its action is decision t; the reward, the architecture's fitness, comes at the end. After
each `tell` the new episodes join a replay memory, and `replay` episodes drawn from it are
replayed, each updating its transitions from the last to the first (MetaQNN's order):
    Q[t, s, a] <- (1 - lr) Q[t, s, a] + lr * (r if t is last else discount * max Q[t+1, a, .]).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jnas._checks import check_positive
from jnas.search._base import (
    Searcher,
    clean_fitness,
    update_incumbent,
)
from jnas.spaces import Decisions, DecisionSpace, Space, require


class QLearningState(NamedTuple):
    q: jax.Array  # float32[T, K + 1, K]: Q[t, previous decision (K = start), decision]
    memory: jax.Array  # int32[M, T]: replayed episodes' decisions (a ring buffer)
    rewards: jax.Array  # float32[M]
    stored: jax.Array  # int32[]: episodes ever stored (the ring's write position mod M)
    num_told: jax.Array  # int32[]: episodes told (drives the ε schedule)
    key: jax.Array  # uint32 key data of the replay sampler's key, refreshed by every `ask`
    best: Any
    best_fitness: jax.Array  # float32[]


def metaqnn_epsilon(
    explore: int = 100, per_step: int = 20, floor: float = 0.1
) -> Callable[[jax.Array], jax.Array]:
    """MetaQNN's schedule, scaled to a budget of a few hundred evaluations: ε = 1 for the
    first `explore` episodes, then 0.9, 0.8, ... down to `floor`, `per_step` episodes each
    (the paper: 1,500 episodes at ε = 1, then 100 to 200 per step)."""
    check_positive("metaqnn_epsilon", explore=explore, per_step=per_step)

    def epsilon(count: jax.Array) -> jax.Array:
        steps = (count - explore) // per_step
        return jnp.where(count < explore, 1.0, jnp.maximum(floor, 0.9 - 0.1 * steps))

    return epsilon


def q_settings(
    where: str,
    learning_rate: float,
    discount: float,
    epsilon: float | Callable[[jax.Array], jax.Array] | None,
) -> Callable[[jax.Array], jax.Array]:
    """Check the Q-learning settings; return the ε schedule (`metaqnn_epsilon()` by
    default, a constant as a schedule)."""
    if not 0 < learning_rate <= 1:
        raise ValueError(f"{where}: `learning_rate` must be in (0, 1]; got {learning_rate!r}")
    if not 0 <= discount <= 1:
        raise ValueError(f"{where}: `discount` must be in [0, 1]; got {discount!r}")
    if epsilon is None:
        return metaqnn_epsilon()
    if callable(epsilon):
        return epsilon
    if not 0 <= epsilon <= 1:
        raise ValueError(f"{where}: `epsilon` must be in [0, 1] or a schedule; got {epsilon!r}")
    constant = float(epsilon)
    return lambda count: jnp.full((), constant)


def replay_tell(
    state: Any,
    archs: Any,
    episodes: jax.Array,
    fitness: jax.Array,
    replay_one: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
    replay: int,
    memory: int,
) -> Any:
    """The `tell` of the tabular Q-learners (`QLearningState`, `MetaQNNState`): Q starts
    at the first batch's mean reward; the batch's episodes (int32[B, T]) with finite
    rewards join the ring buffer; `replay` stored episodes drawn with the state's key are
    replayed by `replay_one(q, episode, reward)`; the incumbent is updated."""
    fitness = jnp.asarray(fitness, jnp.float32)
    ok = ~jnp.isnan(fitness)
    mean = jnp.sum(jnp.where(ok, fitness, 0.0)) / jnp.maximum(jnp.sum(ok), 1)
    q = jnp.where((state.stored == 0) & jnp.any(ok), mean, state.q)

    def store(carry, item):
        mem, rewards, stored = carry
        d, r, good = item
        slot = stored % memory
        mem = jnp.where(good, mem.at[slot].set(d), mem)
        rewards = jnp.where(good, rewards.at[slot].set(r), rewards)
        return (mem, rewards, stored + good.astype(jnp.int32)), None

    (mem, rewards, stored), _ = jax.lax.scan(
        store, (state.memory, state.rewards, state.stored), (episodes, fitness, ok)
    )
    picks = jax.random.randint(
        jax.random.wrap_key_data(state.key),
        (replay,),
        0,
        jnp.maximum(jnp.minimum(stored, memory), 1),
    )

    def replay_step(q, i):
        return replay_one(q, mem[i], rewards[i]), None

    q, _ = jax.lax.cond(
        stored > 0, lambda q: jax.lax.scan(replay_step, q, picks), lambda q: (q, None), q
    )
    best, best_fitness = update_incumbent(
        state.best, state.best_fitness, archs, clean_fitness(fitness)
    )
    return state._replace(
        q=q,
        memory=mem,
        rewards=rewards,
        stored=stored,
        num_told=state.num_told + fitness.shape[0],
        best=best,
        best_fitness=best_fitness,
    )


def q_learning(
    space: DecisionSpace,
    batch_size: int = 1,
    learning_rate: float = 0.01,
    discount: float = 1.0,
    epsilon: float | Callable[[jax.Array], jax.Array] | None = None,
    replay: int = 100,
    memory: int = 1000,
) -> Searcher:
    """MetaQNN's tabular Q-learning over the space's categorical decisions.

    `epsilon`: a constant or a schedule of the number of episodes told (default
    `metaqnn_epsilon()`); greedy choices break ties at random. Q starts at the first
    batch's mean reward (MetaQNN starts at 0.5 for accuracies in [0, 1], the same idea
    for any fitness scale). `replay` episodes are drawn uniformly from the last `memory`
    after each `tell`. NaN rewards are never stored, replayed or made the incumbent.
    Needs `decision_sizes`, `to_decisions` and `from_decisions` (NB201, NATSSize, Chain).
    """
    where = "q_learning"
    check_positive(where, batch_size=batch_size, replay=replay, memory=memory)
    require(where, space, Space, Decisions)
    epsilon = q_settings(where, learning_rate, discount, epsilon)
    sizes = jnp.asarray(space.decision_sizes)
    steps, width = len(space.decision_sizes), int(max(space.decision_sizes))
    valid = jnp.arange(width)[None, :] < sizes[:, None]  # [T, K]

    def init(key: jax.Array) -> QLearningState:
        return QLearningState(
            jnp.zeros((steps, width + 1, width), jnp.float32),
            jnp.zeros((memory, steps), jnp.int32),
            jnp.zeros((memory,), jnp.float32),
            jnp.zeros((), jnp.int32),
            jnp.zeros((), jnp.int32),
            jax.random.key_data(key),
            space.sample(key),
            jnp.full((), -jnp.inf, jnp.float32),
        )

    def episode(q: jax.Array, eps: jax.Array, key: jax.Array) -> jax.Array:
        def step(prev, inputs):
            t, k = inputs
            k_explore, k_random, k_greedy = jax.random.split(k, 3)
            values = jnp.where(valid[t], q[t, prev], -jnp.inf)
            best = values == jnp.max(values)
            greedy = jax.random.categorical(k_greedy, jnp.where(best, 0.0, -jnp.inf))
            uniform = jax.random.categorical(k_random, jnp.where(valid[t], 0.0, -jnp.inf))
            choice = jnp.where(jax.random.uniform(k_explore) < eps, uniform, greedy)
            return choice, choice

        _, choices = jax.lax.scan(
            step, jnp.int32(width), (jnp.arange(steps), jax.random.split(key, steps))
        )
        return choices.astype(jnp.int32)

    def ask(key: jax.Array, state: QLearningState) -> tuple[Any, QLearningState]:
        k_episodes, k_replay = jax.random.split(key)
        eps = epsilon(state.num_told)
        decisions = jax.vmap(episode, in_axes=(None, None, 0))(
            state.q, eps, jax.random.split(k_episodes, batch_size)
        )
        return jax.vmap(space.from_decisions)(decisions), state._replace(
            key=jax.random.key_data(k_replay)
        )

    def replay_one(q: jax.Array, decisions: jax.Array, reward: jax.Array) -> jax.Array:
        prev = jnp.concatenate([jnp.array([width], jnp.int32), decisions[:-1]])

        def update(t, q):
            t = steps - 1 - t  # last transition first
            nxt = jnp.minimum(t + 1, steps - 1)
            future = jnp.max(jnp.where(valid[nxt], q[nxt, decisions[t]], -jnp.inf))
            target = jnp.where(t == steps - 1, reward, discount * future)
            old = q[t, prev[t], decisions[t]]
            return q.at[t, prev[t], decisions[t]].set(old + learning_rate * (target - old))

        return jax.lax.fori_loop(0, steps, update, q)

    def tell(state: QLearningState, archs: Any, fitness: jax.Array) -> QLearningState:
        episodes = jax.vmap(space.to_decisions)(archs).astype(jnp.int32)
        return replay_tell(state, archs, episodes, fitness, replay_one, replay, memory)

    return Searcher(init, ask, tell, batch_size)
