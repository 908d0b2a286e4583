"""AutoML-Zero's register machine and evolution: the SGD program the paper rediscovers
against the same SGD in NumPy, the mutations, and evolution from empty programs."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

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
    kids = jax.jit(jax.vmap(lambda k: amz.mutate(k, program)))(jax.random.split(key, 200))
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
    # randomizing a component keeps its size: only insert / remove change it, by one
    assert np.abs(lengths - (np.asarray(program.ops) != 0).sum(1)).max() == 1


def test_evolution_selects_on_fixed_search_tasks_and_continues(key):
    """Tournament selection is what moves the population: on the same fixed search tasks
    (the paper's T_search), tournaments of 10 lift the population's median fitness above
    the empty programs' while tournaments of 1 (parents at random) do not."""
    tasks = amz.linear_tasks(jax.random.key(2), 3, train=20, valid=20)
    empty = float(amz.evaluate(amz.empty_program(6), tasks, key))
    config = dict(population=60, children=30, length=6, op_set=amz.LINEAR_OPS)
    medians = {}
    for tournament in (1, 10):
        state = amz.evolve(key, tasks, generations=1, tournament=tournament, **config)
        state = amz.evolve(key, tasks, generations=29, tournament=tournament, state=state, **config)
        assert int(state.evaluations) == 60 + 30 * 30
        assert float(jnp.max(state.fitness)) <= float(state.best_fitness)
        medians[tournament] = float(jnp.median(state.fitness))
    assert medians[10] > empty + 0.01 * abs(empty)
    assert medians[1] <= empty + 1e-6
    assert medians[10] > medians[1]


def test_evolution_on_fresh_tasks_and_the_accuracy_metric(key):
    def tasks(k):
        return amz.linear_tasks(k, 2, train=10, valid=10)

    state = amz.evolve(
        key, tasks, generations=2, population=20, tournament=4, children=20, length=4
    )
    assert int(state.evaluations) == 20 + 2 * 20
    accuracy = amz.evaluate(
        amz.parse_program({"predict": ["s1 = dot(v0, v0)"]}, 2),
        amz.digit_pair_tasks(jax.random.key(0), 2, features=8),
        key,
        metric="accuracy",
    )
    assert 0.0 <= float(accuracy) <= 1.0
    with pytest.raises(ValueError, match="op_set"):
        amz.evolve(key, tasks, generations=1, population=20, children=20, op_set=("s=c", "jump"))


def _numpy_fitness(ops, args, consts, tasks, key, metric="mse"):
    """A per-program NumPy register machine (float64), the paper's semantics written out
    instruction by instruction (the authors' `Executor`: memory carries on through
    validation; for "rms", 1 - 2/pi arctan(RMSE) per task, 0 once an error exceeds 100):
    the independent reference for `evaluate_many`."""
    t_count, _, f = np.asarray(tasks.x_train).shape
    keys = jax.random.split(key, t_count)
    length = ops.shape[1]

    def gauss(k):
        return [
            np.asarray(jax.random.normal(jax.random.fold_in(k, i), (f,))) for i in range(length)
        ]

    def run(c, g, s, v):
        for i in range(length):
            op, (a, b, o), const = int(ops[c, i]), (int(x) for x in args[c, i]), consts[c, i]
            sa, sb, va, vb = s[a % 4], s[b % 4], v[a % 4], v[b % 4]
            name = amz.OPS[op][0]
            if name == "s=c":
                s[o % 4] = const
            elif name == "s=s+s":
                s[o % 4] = sa + sb
            elif name == "s=s-s":
                s[o % 4] = sa - sb
            elif name == "s=s*s":
                s[o % 4] = sa * sb
            elif name == "s=s/s":
                s[o % 4] = 0.0 if sb == 0 else sa / sb
            elif name == "s=dot(v,v)":
                s[o % 4] = va @ vb
            elif name == "s=mean(v)":
                s[o % 4] = va.mean()
            elif name == "v=v+v":
                v[o % 4] = va + vb
            elif name == "v=v-v":
                v[o % 4] = va - vb
            elif name == "v=v*v":
                v[o % 4] = va * vb
            elif name == "v=s*v":
                v[o % 4] = sa * vb
            elif name == "v=gauss*c":
                v[o % 4] = g[i] * const
        return s, v

    scores = []
    for t in range(t_count):
        xt, yt, xv, yv = (np.asarray(a[t], np.float64) for a in tasks)
        g_setup, g_run = gauss(jax.random.fold_in(keys[t], 0)), gauss(keys[t])
        s, v = run(0, g_setup, np.zeros(4), np.zeros((4, f)))
        stopped = False
        for x, y in zip(xt, yt, strict=True):
            v[0], s[0] = x, 0.0
            s, v = run(1, g_run, s, v)
            stopped = stopped or not abs(y - s[1]) <= 100
            s[0] = y
            s, v = run(2, g_run, s, v)
        pred = []
        for x in xv:
            v[0], s[0] = x, 0.0
            s, v = run(1, g_run, s, v)
            pred.append(s[1])
        errors = np.asarray(pred) - yv
        if metric == "rms":
            stopped = stopped or not np.all(np.abs(errors) <= 100)
            rms = np.sqrt(np.mean(errors**2))
            ok = not stopped and np.isfinite(rms)
            scores.append(1 - 2 / np.pi * np.arctan(rms) if ok else 0.0)
        else:
            scores.append(-np.mean(errors**2))
    fitness = np.mean(scores)
    return fitness if np.isfinite(fitness) else -np.inf


def test_batched_register_machine_equals_a_numpy_interpreter_on_random_programs():
    rng = np.random.default_rng(0)
    count, length = 24, 5
    ops = rng.integers(0, len(amz.OPS), (count, 3, length))
    args = rng.integers(0, 4, (count, 3, length, 3))
    consts = rng.uniform(-1, 1, (count, 3, length)).astype(np.float32)
    # one that errs by 400 on its first training example only, then predicts 0: the
    # authors' early stopping scores it 0 (without it, an ordinary finite fitness)
    stop = amz.parse_program(
        {"setup": ["s2 = 200"], "predict": ["s1 = s2 + s2"], "learn": ["s2 = 0"]}, length
    )
    ops[-1], args[-1], consts[-1] = (np.asarray(a) for a in stop)
    programs = amz.Program(
        jnp.asarray(ops, jnp.int8), jnp.asarray(args, jnp.int8), jnp.asarray(consts)
    )
    tasks = amz.linear_tasks(jax.random.key(3), 2, train=4, valid=3)
    key = jax.random.key(5)
    for metric in ("mse", "rms"):
        got = np.asarray(
            jax.jit(amz.evaluate_many, static_argnames="metric")(
                programs, tasks, key, metric=metric
            )
        )
        want = np.asarray(
            [_numpy_fitness(ops[p], args[p], consts[p], tasks, key, metric) for p in range(count)]
        )
        assert np.isfinite(want).sum() >= count // 2  # the comparison is not all -inf
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
        if metric == "rms":  # the squashing and the early stop are both exercised
            assert ((want > 0.05) & (want < 0.95)).sum() >= 4
            assert want[-1] == 0


def test_fixed_size_programs_start_random_and_keep_their_sizes(key):
    """The authors' demo: random programs of sizes (setup, predict, learn) whose
    mutations keep every component's size and draw only ops of the op set."""
    sizes = (4, 2, 3)
    program = amz.random_program(key, sizes, 5, op_set=amz.LINEAR_OPS)
    allowed = {i for i, (name, _, _) in enumerate(amz.OPS) if name in amz.LINEAR_OPS}
    ops = np.asarray(program.ops)
    assert [int((row != 0).sum()) for row in ops] == list(sizes)
    assert set(ops[ops != 0].tolist()) <= allowed
    kids = jax.jit(jax.vmap(lambda k: amz.mutate(k, program, op_set=amz.LINEAR_OPS, sizes=sizes)))(
        jax.random.split(key, 300)
    )
    kid_ops = np.asarray(kids.ops)
    assert ((kid_ops != 0).sum(2) == np.asarray(sizes)).all()
    assert set(kid_ops[kid_ops != 0].tolist()) <= allowed
    assert (np.any(kid_ops != ops[None], axis=(1, 2))).mean() > 0.5
    unsized = jax.jit(jax.vmap(lambda k: amz.mutate(k, program, op_set=amz.LINEAR_OPS)))(
        jax.random.split(key, 300)
    )
    assert ((np.asarray(unsized.ops) != 0).sum(2) != np.asarray(sizes)).any()  # they grow
    with pytest.raises(ValueError, match="sizes"):
        amz.mutate(key, program, sizes=(4, 0, 3))
    tasks = amz.linear_tasks(key, 2, train=4, valid=4)
    state = amz.evolve(
        key,
        tasks,
        generations=3,
        population=20,
        children=10,
        length=5,
        sizes=sizes,
        op_set=amz.LINEAR_OPS,
    )
    assert ((np.asarray(state.population.ops) != 0).sum(2) == np.asarray(sizes)).all()
    full = amz.evaluate_many(state.population, tasks, key, metric="rms")
    sliced = amz.evaluate_many(state.population, tasks, key, metric="rms", sizes=sizes)
    np.testing.assert_allclose(sliced, full, rtol=1e-5)
    with pytest.raises(ValueError, match="sizes"):
        amz.evaluate_many(state.population, tasks, key, sizes=(4, 2, 6))  # past length 5


def test_parameter_mutation_scales_constants_log_normally_and_never_writes_inputs(key):
    """The authors' AlterParam on a constant: negated with probability 0.1, else scaled by
    exp(N(0, 1)) (a fresh uniform draw would fail both checks); and no new instruction
    writes the label s0 or the features v0."""
    from scipy import stats

    program = amz.parse_program({"setup": ["s2 = 0.1"]}, 4)
    ops, args, consts = (a[0] for a in program)  # the setup row: one constant, then nops
    alter = jax.vmap(lambda k: amz._alter_param(k, ops, args, consts, scalars=4, vectors=4))
    new_ops, new_args, new_consts = (np.asarray(a) for a in alter(jax.random.split(key, 4000)))
    assert (new_ops == np.asarray(ops)).all()  # the parameter mutation keeps the op
    assert (new_consts[:, 1:] == 0).all()
    assert (new_args[:, 1:] == 0).all()
    ratio = new_consts[:, 0] / 0.1
    moved = ratio != 1.0  # the kids whose constant was altered (else the output was)
    assert 0.35 < moved.mean() < 0.65  # two parameters, one chosen uniformly
    assert (new_args[~moved, 0, 2] >= 1).all()
    assert (new_args[moved] == np.asarray(args)).all()
    ratio = ratio[moved]
    flipped = np.isclose(ratio, -1.0)
    assert abs(flipped.mean() - 0.1) < 0.03
    assert (ratio[~flipped] > 0).all()
    assert stats.kstest(np.log(ratio[~flipped]), "norm").pvalue > 1e-3
    random = jax.vmap(lambda k: amz.random_program(k, (4, 4, 4), 4, scalars=4, vectors=3))(
        jax.random.split(key, 200)
    )
    ops, out = np.asarray(random.ops), np.asarray(random.args)[..., 2]
    assert (out[ops != 0] >= 1).all()
    assert out[ops != 0].max() == 3
    writes_vector = np.isin(ops, [i for i, (_, w, _) in enumerate(amz.OPS) if w == "v"])
    assert out[writes_vector].max() == 2  # three vector registers: v1, v2 written


def test_children_are_copies_of_their_parents_with_probability_one_minus_mutate_prob(key):
    tasks = amz.linear_tasks(key, 2, train=4, valid=4)
    config = dict(generations=3, population=20, children=10, length=4, sizes=(2, 2, 2))
    first = amz.evolve(key, tasks, **{**config, "generations": 1}, mutate_prob=0.0)
    state = amz.evolve(key, tasks, **config, mutate_prob=0.0, state=first)
    initial = {np.asarray(a).tobytes() for a in first.population.ops}
    assert {np.asarray(a).tobytes() for a in state.population.ops} <= initial
    mutated = amz.evolve(key, tasks, **config, mutate_prob=1.0, state=first)
    assert not {np.asarray(a).tobytes() for a in mutated.population.ops} <= initial
    with pytest.raises(ValueError, match="mutate_prob"):
        amz.evolve(key, tasks, **config, mutate_prob=1.5)


def test_op_sets_per_component_as_the_papers_restricted_linear_search(key):
    """`LINEAR_OPS_BY_COMPONENT` (the authors' restricted linear search): constants only
    in setup, a dot product only in predict, the update's arithmetic only in learn, for
    random programs and every mutation of them."""
    names = [name for name, _, _ in amz.OPS]
    allowed = [{names.index(op) for op in ops} for ops in amz.LINEAR_OPS_BY_COMPONENT]
    sizes = (5, 1, 4)
    programs = jax.vmap(
        lambda k: amz.random_program(k, sizes, 5, vectors=3, op_set=amz.LINEAR_OPS_BY_COMPONENT)
    )(jax.random.split(key, 50))
    kids = jax.vmap(
        lambda k, p: amz.mutate(k, p, vectors=3, op_set=amz.LINEAR_OPS_BY_COMPONENT, sizes=sizes)
    )(jax.random.split(key, 50), programs)
    for batch in (programs, kids):
        ops = np.asarray(batch.ops)
        for c in range(3):
            assert set(ops[:, c][ops[:, c] != 0].tolist()) <= allowed[c]
            assert ((ops[:, c] != 0).sum(1) == sizes[c]).all()
    learn_ops = set(np.asarray(programs.ops)[:, 2].ravel().tolist()) - {0}
    assert learn_ops == allowed[2]  # every allowed op is drawn
    with pytest.raises(ValueError, match="op_set"):
        amz.mutate(key, amz.empty_program(4), op_set=(("s=c",), ("s=dot(v,v)",)))


def test_dead_instructions_change_no_prediction_and_the_found_sgd_is_six_live_lines():
    """`live_instructions` against the register machine itself: random programs of every
    op with their dead instructions replaced by nops score exactly as before (fails if a
    live instruction is called dead), and a good share is dead (fails if all are kept);
    the program seed 1 found from empty programs (the published result's JSON) reduces
    to the six lines of SGD the README reports."""
    import json
    import pathlib

    keys = jax.random.split(jax.random.key(3), 64)
    programs = jax.vmap(lambda k: amz.random_program(k, (8, 8, 8), 8))(keys)
    live = np.stack(
        [amz.live_instructions(jax.tree.map(lambda a, i=i: a[i], programs)) for i in range(64)]
    )
    pruned = programs._replace(ops=jnp.where(live, programs.ops, 0))
    tasks = amz.linear_tasks(jax.random.key(4), 3, train=12, valid=12)
    score = jax.jit(lambda p: amz.evaluate_many(p, tasks, jax.random.key(5)))
    before, after = np.asarray(score(programs)), np.asarray(score(pruned))
    assert np.isfinite(before).mean() > 0.5
    np.testing.assert_array_equal(after, before)
    assert 0.2 < 1.0 - live.mean() < 0.9
    sgd = amz.parse_program(amz.SGD_LINEAR, 8)
    assert amz.to_text(sgd, live_only=True) == amz.to_text(sgd)  # every SGD line counts

    path = pathlib.Path(__file__).parents[2] / "benchmarks/results"
    found = json.loads((path / "automl_zero_linear_by_component_empty_seed1.json").read_text())
    program = amz.parse_program(found["linear"]["best_program"], 8, vectors=3)
    assert amz.to_text(program, live_only=True, vectors=3) == {
        "setup": ["s3 = 0.2462"],
        "predict": ["s1 = dot(v0,v1)"],
        "learn": ["s2 = s0-s1", "v2 = s2*v0", "v2 = s3*v2", "v1 = v2+v1"],
    }
