"""Task suites, zero-shot portfolios (against a NumPy re-derivation of Wistuba et al.'s
greedy rule) and warm starts in front of a searcher, on the real NB201 table."""

import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jnas import bench, nn, search, transfer
from jnas.spaces import NB201


def _greedy_numpy(scores, size):
    hi, lo = np.nanmax(scores, 1, keepdims=True), np.nanmin(scores, 1, keepdims=True)
    regret = np.where(np.isnan(scores), np.inf, (hi - scores) / (hi - lo))
    best, chosen = np.ones(scores.shape[0]), []
    for _ in range(size):
        cand = [
            (np.mean(np.minimum(regret[:, j], best)), np.mean(regret[:, j]), j)
            for j in range(scores.shape[1])
            if j not in chosen
        ]
        m = min(c[0] for c in cand)
        j = min((c for c in cand if c[0] <= m + 1e-7), key=lambda c: (c[1], c[2]))[2]
        chosen.append(j)
        best = np.minimum(best, regret[:, j])
    return chosen


def test_portfolio_is_the_greedy_choice():
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(3, 40)).astype(np.float32)
    scores[1, 5] = np.nan
    got = transfer.portfolio(jnp.asarray(scores), 8)
    assert [int(r) for r in got] == _greedy_numpy(scores, 8)
    assert len(set(np.asarray(got).tolist())) == 8  # no row twice
    with pytest.raises(ValueError, match="tasks, rows"):
        transfer.portfolio(jnp.ones(4), 2)


def test_warm_start_asks_the_given_architectures_first_then_the_searcher():
    space = NB201()
    rows = jnp.asarray([7, 11, 13], jnp.int32)
    inner = search.regularized_evolution(space, population_size=4, sample_size=2)
    s = search.warm_start(inner, space, space.from_index(rows))
    state = s.init(jax.random.key(0))
    asked = []
    for i in range(6):
        archs, state = s.ask(jax.random.key(i), state)
        asked.append(int(jax.vmap(space.index)(archs)[0]))
        state = s.tell(state, archs, jnp.asarray([float(i)]))
    assert asked[:3] == [7, 11, 13]
    assert len(set(asked[3:]) - {7, 11, 13}) >= 1  # then evolution's own random population
    # told to the inner searcher: its ring of 4 holds asks 4, 5, 2, 3 after six tells
    held = [int(r) for r in jax.vmap(space.index)(state.inner.population)]
    assert held == [asked[4], asked[5], 13, asked[3]]
    with pytest.raises(ValueError, match="batch"):
        search.warm_start(inner, space, space.from_index(7))


def test_leave_one_out_and_task_checks():
    assert transfer.leave_one_out(["a", "b", "c"]) == [
        (("b", "c"), "a"),
        (("a", "c"), "b"),
        (("a", "b"), "c"),
    ]
    with pytest.raises(ValueError, match=">= 2"):
        transfer.leave_one_out(["a"])
    with pytest.raises(ValueError, match="12 or 200"):
        transfer.nb201_tasks(50)


def test_portfolio_from_two_datasets_beats_evolution_on_the_third(nasbench_dir):
    """ImageNet16-120 as the unseen target, CIFAR-10 and CIFAR-100's tables as the sources:
    evolution warm-started by their portfolio, at a quarter of the budget, beats plain
    evolution at the whole budget (the acceptance of #19 §2, 20 seeds here)."""
    table = bench.load_nb201(nasbench_dir)
    tasks, sources = transfer.nb201_tasks(12), transfer.nb201_tasks(200)
    scores = transfer.suite_scores(table, [sources["cifar10"], sources["cifar100"]])
    rows = transfer.portfolio(scores, 10)
    target = tasks["ImageNet16-120"]
    obj = target.objective(table)
    rea = search.regularized_evolution(table.space)
    key = jax.random.key(0)
    plain = bench.simulate(rea, obj, key=key, num_seeds=20, budget_s=12_000)
    warm = bench.simulate(
        search.warm_start(rea, table.space, table.space.from_index(rows)),
        obj,
        key=key,
        num_seeds=20,
        budget_s=3_000,
    )
    report = {"dataset": "ImageNet16-120", "metric": "test_acc", "epochs": 200}
    a = warm.report(table, **report)[:, -1]
    b = plain.report(table, **report)[:, -1]
    assert np.nanmean(a) > np.nanmean(b) + 1.0
    # the portfolio's cells were chosen without the target: its table was not read
    truth = np.asarray(target.truth(table))
    assert np.mean(truth[np.asarray(rows)]) > np.nanpercentile(truth, 99)


LSTM16 = {"controller": "lstm", "hidden": 16}


@pytest.mark.parametrize(
    "method",
    [
        {"method": "reptile", "seeds_per_task": 4},
        {"method": "maml", "meta_steps": 20},
        pytest.param(
            {"method": "maml", "inner_evals": 20, "inner_lr": 0.01, **LSTM16},
            # the same meta-training through the LSTM controller, whose objective and exact
            # MAML meta-gradient test_lstm_policy_objective_... checks; 45 s of compile
            marks=pytest.mark.slow,
            id="maml-lstm",
        ),
    ],
)
def test_meta_learned_policy_beats_plain_reinforce_on_the_unseen_dataset(nasbench_dir, method):
    table = bench.load_nb201(nasbench_dir)
    sources = transfer.nb201_tasks(200)
    scores = transfer.suite_scores(table, [sources["cifar10"], sources["cifar100"]])
    policy = transfer.meta_train_policy(
        jax.random.key(0), table.space, scores, **{"meta_steps": 10, **method}
    )
    controller = {k: method[k] for k in ("controller", "hidden") if k in method}
    # the policy moved towards the sources' good cells: its likeliest cell is far above
    # the target's median, which was never read
    truth = np.asarray(transfer.nb201_tasks(12)["ImageNet16-120"].truth(table))
    mode = int(jnp.argmax(transfer.row_log_probs(table.space, **controller)(policy)))
    assert truth[mode] > np.nanpercentile(truth, 95)
    obj = transfer.nb201_tasks(12)["ImageNet16-120"].objective(table)
    report = {"dataset": "ImageNet16-120", "metric": "test_acc", "epochs": 200}
    final = {}
    for name, s in (
        ("plain", search.reinforce(table.space, **controller)),
        ("meta", search.reinforce(table.space, initial_policy=policy, **controller)),
    ):
        sim = bench.simulate(s, obj, key=jax.random.key(1), num_seeds=20, budget_s=6_000)
        final[name] = np.nanmean(sim.report(table, **report)[:, -1])
    assert final["meta"] > final["plain"] + 1.0
    with pytest.raises(ValueError, match="initial_policy"):
        search.reinforce(table.space, initial_policy=jnp.zeros((6, 4)), **controller)


def test_decision_box_holds_the_sources_best_and_searchers_stay_inside(nasbench_dir):
    table = bench.load_nb201(nasbench_dir)
    sources = transfer.nb201_tasks(200)
    scores = transfer.suite_scores(table, [sources["cifar10"], sources["cifar100"]])
    box = transfer.decision_box(table.space, scores, top=5)
    # by hand: the ops each edge takes among each source's 5 best cells
    ops = np.asarray(
        jax.vmap(table.space.from_index)(np.argsort(-np.asarray(scores), 1)[:, :5].ravel()).ops
    )
    want = np.zeros((6, 5), bool)
    for row in ops:
        want[np.arange(6), row] = True
    assert np.array_equal(np.asarray(box.allowed), want)
    assert box.size == int(np.prod(want.sum(1))) < 15_625
    keys = jax.random.split(jax.random.key(0), 200)
    cells = jax.vmap(box.sample)(keys)
    assert bool(jax.vmap(box.contains)(cells).all())
    moved = jax.vmap(box.mutate)(keys, cells)
    assert bool(jax.vmap(box.contains)(moved).all())
    assert bool(jnp.any(jax.vmap(table.space.index)(moved) != jax.vmap(table.space.index)(cells)))
    batch, mask = box.neighbors(jax.tree.map(lambda a: a[0], cells))
    assert bool(jnp.all(jax.vmap(box.contains)(batch) == mask))
    # any searcher runs on it and proposes only cells of the box; the target gains
    obj = transfer.nb201_tasks(12)["ImageNet16-120"].objective(table)
    report = {"dataset": "ImageNet16-120", "metric": "test_acc", "epochs": 200}
    plain = bench.simulate(
        search.random_search(table.space), obj, key=jax.random.key(1), num_seeds=20, budget_s=6_000
    )
    boxed = bench.simulate(
        search.random_search(box), obj, key=jax.random.key(1), num_seeds=20, budget_s=6_000
    )
    assert (
        np.nanmean(boxed.report(table, **report)[:, -1])
        > np.nanmean(plain.report(table, **report)[:, -1]) + 1.0
    )


def test_quantile_prior_draws_as_often_as_the_sources_top_cells_choose(nasbench_dir):
    table = bench.load_nb201(nasbench_dir)
    sources = transfer.nb201_tasks(200)
    scores = transfer.suite_scores(table, [sources["cifar10"], sources["cifar100"]])
    prior = transfer.quantile_prior(table.space, scores, quantile=0.01, smoothing=1.0)
    # by hand: per edge, op counts among each source's best 156 cells, + 1 each
    top = np.argsort(-np.nan_to_num(np.asarray(scores), nan=-np.inf), 1)[:, :156].ravel()
    ops = np.asarray(jax.vmap(table.space.from_index)(top).ops)
    counts = np.stack([np.bincount(ops[:, e], minlength=5) for e in range(6)]) + 1.0
    want = counts / counts.sum(1, keepdims=True)
    np.testing.assert_allclose(np.exp(np.asarray(prior.logits)), want, rtol=1e-6)
    assert prior.size == 15_625  # smoothing keeps every cell reachable
    draws = np.asarray(jax.vmap(prior.sample)(jax.random.split(jax.random.key(0), 20_000)).ops)
    freq = np.stack([np.bincount(draws[:, e], minlength=5) for e in range(6)]) / 20_000
    np.testing.assert_allclose(freq, want, atol=0.015)
    with pytest.raises(ValueError, match="quantile"):
        transfer.quantile_prior(table.space, scores, quantile=0.0)


def test_shaped_spaces_judge_cells_by_every_decision_and_never_rank_a_missing_score(
    nasbench_dir,
):
    """`contains` holds a cell only when every edge's op is allowed (NumPy on 2,000 cells of
    the box with one edge moved, most outside); a NaN score (a run missing from the table)
    ranks last, not first; the smallest quantile keeps each source's single best row; a
    quantile of 1 is the uniform prior; the defaults (5 rows, 10%, one pseudo-count) hold; a
    quantile above 1 and no smoothing are refused."""
    table = bench.load_nb201(nasbench_dir)
    sources = transfer.nb201_tasks(200)
    scores = np.asarray(
        transfer.suite_scores(table, [sources["cifar10"], sources["cifar100"]]), np.float64
    )
    box = transfer.decision_box(table.space, scores, top=2)
    allowed = np.asarray(box.allowed)
    keys = jax.random.split(jax.random.key(3), 2_000)
    inside = jax.vmap(box.sample)(keys)
    cells = jax.vmap(table.space.mutate)(keys, inside)  # one edge moved: in or out
    ops = np.asarray(cells.ops)
    want = allowed[np.arange(6), ops].all(1)
    assert 100 < want.sum() < 1_900
    np.testing.assert_array_equal(np.asarray(jax.vmap(box.contains)(cells)), want)
    # NaN on 300 rows that are not the best: the box is the one of the finite scores
    holes = scores.copy()
    holes[:, np.argsort(-np.nan_to_num(scores, nan=-np.inf), 1)[:, 500:800]] = np.nan
    with_holes = transfer.decision_box(table.space, holes, top=2)
    np.testing.assert_array_equal(np.asarray(with_holes.allowed), allowed)
    # the smallest quantile is each source's best row: the top-1 box's choices, + smoothing
    best = np.asarray(transfer.decision_box(table.space, scores, top=1).allowed)
    prior = transfer.quantile_prior(table.space, scores, quantile=1e-9, smoothing=0.5)
    counts = np.zeros((6, 5))
    best_rows = jax.vmap(table.space.from_index)(np.nanargmax(scores, 1)).ops  # one a source
    for row in np.asarray(best_rows):
        counts[np.arange(6), row] += 1
    np.testing.assert_allclose(np.exp(np.asarray(prior.logits)), (counts + 0.5) / 4.5, rtol=1e-6)
    assert np.array_equal(counts > 0, best)
    # quantile 1 (accepted: every row, once per source) is the uniform prior
    uniform = transfer.quantile_prior(table.space, scores, quantile=1.0, smoothing=3.0)
    np.testing.assert_allclose(np.exp(np.asarray(uniform.logits)), 0.2, rtol=1e-6)
    # the defaults: each source's 5 best rows; its best 10% with one pseudo-count per choice
    ranked = -np.arange(15_625.0)[None]  # rows 0..5 best: the 6th moves a second edge
    five = transfer.decision_box(table.space, ranked, top=5).allowed
    assert not np.array_equal(five, transfer.decision_box(table.space, ranked, top=6).allowed)
    np.testing.assert_array_equal(transfer.decision_box(table.space, ranked).allowed, five)
    np.testing.assert_array_equal(
        transfer.quantile_prior(table.space, scores).logits,
        transfer.quantile_prior(table.space, scores, quantile=0.1, smoothing=1.0).logits,
    )
    with pytest.raises(ValueError, match="quantile"):
        transfer.quantile_prior(table.space, scores, quantile=1.5)
    with pytest.raises(ValueError, match="smoothing"):
        transfer.quantile_prior(table.space, scores, smoothing=0.0)


def test_maml_policy_objective_is_the_table_sum_and_its_meta_gradient_is_exact(nasbench_dir):
    """J(θ) = Σ_rows Π_d softmax(θ_d)[op] z(row) against a NumPy product over the table's
    ops; the meta-gradient through 3 inner Adam steps against central finite differences
    (float64), and unlike the first-order gradient (∇J at the adapted logits)."""
    table = bench.load_nb201(nasbench_dir)
    ops = np.asarray(jax.vmap(table.space.from_index)(jnp.arange(table.num_rows)).ops)
    rng = np.random.default_rng(0)
    theta = rng.normal(size=(6, 5))
    reward = rng.normal(size=table.num_rows)
    p = np.exp(theta) / np.exp(theta).sum(1, keepdims=True)
    want = np.sum(np.prod(p[np.arange(6), ops], 1) * reward)
    got = transfer.expected_reward(jnp.asarray(theta), transfer.row_decisions(table.space),
                                   jnp.asarray(reward))  # fmt: skip
    assert float(got) == pytest.approx(want, rel=1e-5)
    sources = transfer.nb201_tasks(200)
    scores = np.asarray(transfer.suite_scores(table, [sources["cifar10"], sources["cifar100"]]))
    z = (scores - np.nanmean(scores, 1, keepdims=True)) / np.nanstd(scores, 1, keepdims=True)
    z = np.nan_to_num(z, nan=-3.0)
    with jax.enable_x64(True):
        loss = transfer.maml_policy_loss(table.space, jnp.asarray(z), inner_steps=3, inner_lr=0.3)
        x = jnp.asarray(theta * 0.3)
        grad = np.asarray(jax.jit(jax.grad(loss))(x))
        eps = 1e-5
        for d, k in ((0, 0), (2, 3), (5, 1)):
            e = np.zeros((6, 5))
            e[d, k] = eps
            fd = (float(loss(x + e)) - float(loss(x - e))) / (2 * eps)
            assert grad[d, k] == pytest.approx(fd, rel=1e-4, abs=1e-9)
        # first-order MAML (the gradient at the adapted logits) is a different number
        decisions = transfer.row_decisions(table.space)
        tx = optax.adam(0.3, eps_root=1e-12)

        def adapted(r):
            t, s = x, tx.init(x)
            for _ in range(3):
                g = jax.grad(lambda t: -transfer.expected_reward(t, decisions, r))(t)
                u, s = tx.update(g, s, t)
                t = optax.apply_updates(t, u)
            return jax.grad(lambda t: -transfer.expected_reward(t, decisions, r))(t)

        first = np.mean([np.asarray(adapted(jnp.asarray(r))) for r in z], 0)
        assert np.abs(first - grad).max() > 0.05 * np.abs(grad).max()  # measured: 0.095
    with pytest.raises(ValueError, match="method"):
        transfer.meta_train_policy(jax.random.key(0), table.space, jnp.asarray(z), method="x")


def test_lstm_policy_objective_and_its_maml_meta_gradient_are_exact(nasbench_dir):
    """The LSTM controller's row probabilities (one pass over the prefix tree) against its
    teacher-forced scoring of sampled rows; the MAML meta-gradient through 2 inner Adam steps
    against central finite differences along random directions (float64)."""
    table = bench.load_nb201(nasbench_dir)
    lstm = nn.lstm_controller(table.space.decision_sizes, hidden=4)
    rows = jnp.asarray([0, 7, 1234, 15624])
    decisions = transfer.row_decisions(table.space)[rows]
    params = jax.tree.map(lambda a: a * 10, lstm.init(jax.random.key(3)))
    got = transfer.row_log_probs(table.space, controller="lstm", hidden=4)(params)[rows]
    want = jax.vmap(lambda d: lstm.log_prob(params, d)[0])(decisions)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), atol=2e-6)
    sources = transfer.nb201_tasks(200)
    scores = np.asarray(transfer.suite_scores(table, [sources["cifar10"], sources["cifar100"]]))
    z = np.nan_to_num((scores - np.nanmean(scores, 1, keepdims=True)) / np.nanstd(scores, 1, keepdims=True), nan=-3.0)  # fmt: skip
    with jax.enable_x64(True):
        loss = transfer.maml_policy_loss(table.space, jnp.asarray(z), inner_steps=2, inner_lr=0.3, controller="lstm", hidden=4)  # fmt: skip
        x = jax.tree.map(lambda a: jnp.asarray(a, jnp.float64), params)
        grad, loss = jax.jit(jax.grad(loss))(x), jax.jit(loss)
        flat, unravel = jax.flatten_util.ravel_pytree(x)
        g = np.asarray(jax.flatten_util.ravel_pytree(grad)[0])
        rng, eps = np.random.default_rng(0), 1e-5
        for v in rng.normal(size=(3, flat.size)):
            fd = (float(loss(unravel(flat + eps * v))) - float(loss(unravel(flat - eps * v)))) / (2 * eps)  # fmt: skip
            assert g @ v == pytest.approx(fd, rel=1e-4, abs=1e-9)
    with pytest.raises(ValueError, match="controller"):
        transfer.meta_train_policy(jax.random.key(0), table.space, jnp.asarray(z), controller="gru")


def test_reptile_moves_the_logits_towards_the_mean_of_each_tasks_adapted_searches(nb201_table):
    """Two Reptile meta-steps against a Python loop of plain REINFORCE searches: per task and
    seed, `inner_evals` ask/tell steps from the current logits on the task's standardised
    scores (NaN rows score the task's minimum first), then θ += meta_lr (mean adapted - θ).
    Half of the rows are NaN, so the searches read them."""
    space = nb201_table.space
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(2, nb201_table.num_rows)).astype(np.float32)
    scores[:, rng.random(nb201_table.num_rows) < 0.5] = np.nan
    lo = np.nanmin(scores, 1, keepdims=True)
    z = np.where(np.isnan(scores), lo, scores)
    z = jnp.asarray((z - z.mean(1, keepdims=True)) / z.std(1, keepdims=True), jnp.float32)
    key, evals, seeds, meta_lr = jax.random.key(5), 3, 2, 0.7
    got = transfer.meta_train_policy(
        key, space, jnp.asarray(scores), meta_steps=2, inner_evals=evals, seeds_per_task=seeds,
        inner_lr=0.3, meta_lr=meta_lr,
    )  # fmt: skip

    @jax.jit
    def adapt(theta, column, k):
        searcher = search.reinforce(space, learning_rate=0.3, initial_policy=theta)
        k_init, k_run = jax.random.split(k)
        state = searcher.init(k_init)
        for kk in jax.random.split(k_run, evals):
            archs, state = searcher.ask(kk, state)
            state = searcher.tell(state, archs, column[jax.vmap(space.index)(archs)])
        return state.policy

    theta = np.zeros((6, 5), np.float32)
    for step in range(2):
        keys = jax.random.split(jax.random.fold_in(key, step), (2, seeds))
        adapted = [np.asarray(adapt(theta, z[t], keys[t, s])) for t in range(2) for s in range(seeds)]  # fmt: skip
        theta = theta + meta_lr * (np.mean(adapted, 0) - theta)
    assert np.abs(theta).max() > 0.05  # the searches moved the logits
    np.testing.assert_allclose(np.asarray(got), theta, rtol=1e-5, atol=1e-6)


def test_maml_meta_training_takes_adam_steps_on_the_exact_meta_objective(nb201_table):
    """Two outer steps against optax's Adam (default meta_lr 0.05, as the docstring says) on
    `maml_policy_loss` of the scores standardised here, `inner_evals` inner steps."""
    space = nb201_table.space
    rng = np.random.default_rng(1)
    scores = rng.normal(size=(2, nb201_table.num_rows)).astype(np.float32)
    scores[:, rng.random(nb201_table.num_rows) < 0.3] = np.nan
    z = np.where(np.isnan(scores), np.nanmin(scores, 1, keepdims=True), scores)
    z = jnp.asarray((z - z.mean(1, keepdims=True)) / z.std(1, keepdims=True), jnp.float32)
    got = transfer.meta_train_policy(
        jax.random.key(0), space, jnp.asarray(scores), method="maml", meta_steps=2,
        inner_evals=2, inner_lr=0.2,
    )  # fmt: skip
    grad = jax.jit(jax.grad(transfer.maml_policy_loss(space, z, inner_steps=2, inner_lr=0.2)))
    theta, tx = jnp.zeros((6, 5)), optax.adam(0.05)
    state = tx.init(theta)
    for _ in range(2):
        updates, state = tx.update(grad(theta), state, theta)
        theta = optax.apply_updates(theta, updates)
    assert float(jnp.abs(theta).max()) > 0.05
    np.testing.assert_allclose(np.asarray(got), np.asarray(theta), rtol=1e-5, atol=1e-6)


def test_tasks_search_and_judge_the_columns_of_the_protocol(nb201_table, nasbench_dir):
    """NB201 (Dong & Yang 2020): search CIFAR-10 on `cifar10-valid`, the others on their own
    validation accuracy, at 12 (or 200) epochs, charged that training time; judge by the
    200-epoch test accuracy. NATS size: 90-epoch validation accuracy both ways, one unit a
    query."""
    for epochs in (12, 200):
        tasks = transfer.nb201_tasks(epochs)
        assert list(tasks) == ["cifar10", "cifar100", "ImageNet16-120"]
        for name, searched in (("cifar10", "cifar10-valid"), ("cifar100", "cifar100"),
                               ("ImageNet16-120", "ImageNet16-120")):  # fmt: skip
            task = tasks[name]
            col = lambda *c: np.asarray(nb201_table.column(*c))
            np.testing.assert_array_equal(task.scores(nb201_table), col(searched, "valid_acc", epochs))  # fmt: skip
            np.testing.assert_array_equal(task.truth(nb201_table), col(name, "test_acc", 200))
            obj = task.objective(nb201_table)
            np.testing.assert_array_equal(obj.fitness, col(searched, "valid_acc", epochs))
            np.testing.assert_array_equal(obj.cost_s, col(searched, "train_time_s", epochs))
    with pytest.raises(ValueError, match="12 or 200"):
        transfer.nb201_tasks(90)
    path = nasbench_dir / "nats_sss.npz"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    sss = bench.load_nats_sss(nasbench_dir)
    for name, ds in (("cifar10", "cifar10-valid"), ("cifar100", "cifar100"),
                     ("ImageNet16-120", "ImageNet16-120")):  # fmt: skip
        task = transfer.nats_size_tasks()[name]
        want = np.asarray(sss.column(ds, "valid_acc", 90))
        np.testing.assert_array_equal(task.scores(sss), want)
        np.testing.assert_array_equal(task.truth(sss), want)
        np.testing.assert_array_equal(task.objective(sss).cost_s, np.ones_like(want))


def test_policy_meta_training_defaults_written_out(monkeypatch):
    """`meta_train_policy`'s defaults, captured as the run is handed to the resumable loop:
    100 meta-steps checkpointed every 10, 50 evaluations per inner search at REINFORCE's
    learning rate 0.05, 8 seeds per task, a 64-unit LSTM where asked; the meta step 0.5 for
    Reptile and 0.05 (Adam) for MAML, as the docstring says; a run shorter than 10 steps is
    one chunk. `initial_policy` starts uniform logits, or an LSTM of 64 units as
    `nn.lstm_controller` does."""
    from jnas.transfer import _policy

    captured = []

    def capture(name, step, init, key, *, steps, chunk, settings, **kw):
        captured.append({**settings, "steps": steps, "chunk": chunk})
        raise StopIteration

    monkeypatch.setattr(_policy, "run_steps", capture)
    space = NB201()
    scores = jnp.asarray(np.random.default_rng(0).normal(size=(2, space.size)), jnp.float32)
    for kw in ({}, {"method": "maml"}, {"controller": "lstm"}, {"meta_steps": 4}):
        with pytest.raises(StopIteration):
            transfer.meta_train_policy(jax.random.key(0), space, scores, **kw)
    reptile, maml, lstm, short = captured
    want = {"steps": 100, "chunk": 10, "inner_evals": 50, "inner_lr": 0.05, "seeds_per_task": 8}
    assert {k: reptile[k] for k in want} == want
    assert (reptile["method"], reptile["controller"], reptile["meta_lr"]) == (
        "reptile",
        "logits",
        0.5,
    )
    assert (maml["method"], maml["meta_lr"]) == ("maml", 0.05)
    assert (lstm["controller"], lstm["hidden"]) == ("lstm", 64)
    assert (short["steps"], short["chunk"]) == (4, 4)
    key = jax.random.key(1)
    lstm = transfer.initial_policy(space, controller="lstm")(key)
    jax.tree.map(
        np.testing.assert_array_equal, lstm, nn.lstm_controller(space.decision_sizes, 64).init(key)
    )
    # by default the policy is REINFORCE's logits: uniform, every cell 5^-6 likely
    uniform = transfer.initial_policy(space)(key)
    np.testing.assert_array_equal(uniform, np.zeros((6, 5)))
    log_p = transfer.row_log_probs(space)(uniform)
    np.testing.assert_allclose(log_p, np.full(space.size, -6 * np.log(5)), rtol=1e-6)
    lstm_log_p = transfer.row_log_probs(space, controller="lstm")(lstm)  # 64 units by default
    assert float(jax.scipy.special.logsumexp(lstm_log_p)) == pytest.approx(0.0, abs=1e-4)
