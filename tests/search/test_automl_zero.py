"""AutoML-Zero's register machine and evolution: the SGD program the paper rediscovers
against the same SGD in NumPy, the mutations, and evolution from empty programs."""

import jax
import jax.numpy as jnp
import numpy as np

from jnas.search import automl_zero as amz


def test_sgd_program_runs_as_numpy_sgd_and_its_notation_round_trips():
    tasks = amz.linear_tasks(jax.random.key(0), 3)
    program = amz.parse_program(amz.SGD_LINEAR, 6)
    text = amz.to_text(program)
    assert amz.to_text(amz.parse_program(text, 6)) == text
    fitness = jax.jit(amz.evaluate)(program, tasks, jax.random.key(1))
    expected = []
    for t in range(3):
        xt, yt, xv, yv = (np.asarray(a[t], np.float64) for a in tasks)
        w = np.zeros(4)
        for x, y in zip(xt, yt, strict=True):
            w = w + 0.1 * (y - w @ x) * x
        expected.append(np.mean((xv @ w - yv) ** 2))
    np.testing.assert_allclose(-fitness, np.mean(expected), rtol=1e-3, atol=1e-9)
    empty = amz.evaluate(amz.empty_program(6), tasks, jax.random.key(1))
    np.testing.assert_allclose(-empty, np.mean(np.asarray(tasks.y_valid) ** 2), rtol=1e-5)


def test_mutations_change_one_component_and_keep_registers_in_range(key):
    program = amz.parse_program(amz.SGD_LINEAR, 6)
    kids = jax.vmap(lambda k: amz.mutate(k, program))(jax.random.split(key, 200))
    ops, args = np.asarray(kids.ops), np.asarray(kids.args)
    assert ops.min() >= 0
    assert ops.max() < len(amz.OPS)
    assert args.min() >= 0
    assert args[..., 2].max() < 4
    changed = (
        np.any(ops != np.asarray(program.ops)[None], axis=2)
        | np.any(np.asarray(kids.consts) != np.asarray(program.consts)[None], axis=2)
        | np.any(args != np.asarray(program.args)[None], axis=(2, 3))
    )
    assert (changed.sum(1) <= 1).all()  # one component at a time
    assert changed.any(1).mean() > 0.8
    lengths = (ops != 0).sum(2)
    assert (lengths > (np.asarray(program.ops) != 0).sum(1)).any()  # insertions
    assert (lengths < (np.asarray(program.ops) != 0).sum(1)).any()  # removals


def test_evolution_from_empty_programs_improves(key):
    def tasks(k):
        return amz.linear_tasks(k, 2, train=20, valid=20)

    state = amz.evolve(
        key, tasks, generations=1, population=20, tournament=4, children=20, length=4
    )
    start = float(state.best_fitness)
    state = amz.evolve(
        key, tasks, generations=8, population=20, tournament=4, children=20, length=4, state=state
    )
    assert int(state.evaluations) == 20 + 9 * 20
    assert float(state.best_fitness) > start
    assert float(jnp.max(state.fitness)) <= float(state.best_fitness)
    accuracy = amz.evaluate(
        amz.parse_program({"predict": ["s1 = dot(v0, v0)"]}, 2),
        amz.digit_pair_tasks(jax.random.key(0), 2, features=8),
        key,
        metric="accuracy",
    )
    assert 0.0 <= float(accuracy) <= 1.0
