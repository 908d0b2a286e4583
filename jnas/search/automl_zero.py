"""AutoML-Zero (Real, Liang, So & Le, ICML 2020): learning algorithms evolved from empty
programs, as fixed-length integer arrays run by a register machine inside `jit`.

An algorithm is three components, `setup` (run once per task), `predict` (per example:
the input is in `v0`, the prediction must end in `s1`) and `learn` (per training example,
after `predict`, with the label in `s0`), each `length` instructions `(op, in1, in2, out,
constant)` over scalar registers `s*` and vector registers `v*` of the task's feature
size; `nop` pads; s0 and v0 are read-only. Evaluation runs a batch of programs on a batch
of tasks in one compiled call (`vmap` over programs and tasks, `lax.scan` over examples
and instructions, every op computed and one selected: no data-dependent control flow).
Fitness (`evaluate_many`): the paper's 1 - (2 / pi) arctan(RMSE) per task with the
authors' early stopping (`metric="rms"`), minus the MSE, or accuracy, averaged over tasks.

Evolution is regularized evolution (aging, tournament selection) with the paper's
mutations: insert a random instruction or remove one, randomize a whole component,
or alter one parameter of one instruction (constants on a log scale). `linear_tasks`
are the paper's linear regression tasks (a random weight vector per task, Gaussian
features); `SGD_LINEAR` is the program the paper reports rediscovering (the learned
weights in `v1`). The semantics follow the authors' C++ (`executor.h`, `instruction.cc`,
`run_demo.sh` in google-research/automl_zero); functional-equivalence caching is not
implemented (a batch of fixed shape gains nothing from skipping some of its members).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jnas._checks import check_positive

# (name, writes: "s" or "v", reads: kinds of in1 and in2)
OPS = (
    ("nop", "", ""),
    ("s=c", "s", ""),  # a constant (setup: learning rates, initial weights)
    ("s=s+s", "s", "ss"),
    ("s=s-s", "s", "ss"),
    ("s=s*s", "s", "ss"),
    ("s=s/s", "s", "ss"),
    ("v=v+v", "v", "vv"),
    ("v=v-v", "v", "vv"),
    ("v=v*v", "v", "vv"),
    ("v=s*v", "v", "sv"),
    ("s=dot(v,v)", "s", "vv"),
    ("s=mean(v)", "s", "v"),
    ("v=gauss*c", "v", ""),  # a random vector scaled by the constant
)
COMPONENTS = ("setup", "predict", "learn")
# Linear regression by SGD, as AutoML-Zero rediscovers it (the paper's Figure 5 form):
# weights in v1, learning rate in s2
SGD_LINEAR = {
    "setup": ["s2 = 0.1"],
    "predict": ["s1 = dot(v1, v0)"],
    "learn": ["s3 = s0 - s1", "s3 = s2 * s3", "v2 = s3 * v0", "v1 = v1 + v2"],
}


class Program(NamedTuple):
    """A batch of programs has a leading axis; each component is `length` slots."""

    ops: jax.Array  # int8[3, length]: op index per slot (0 = nop)
    args: jax.Array  # int8[3, length, 3]: in1, in2, out register indices
    consts: jax.Array  # float32[3, length]


class Tasks(NamedTuple):
    """A batch of regression tasks: train and validation examples."""

    x_train: jax.Array  # float[T, N, F]
    y_train: jax.Array  # float[T, N]
    x_valid: jax.Array  # float[T, M, F]
    y_valid: jax.Array  # float[T, M]


def linear_tasks(
    key: jax.Array, num_tasks: int, *, features: int = 4, train: int = 100, valid: int = 100
) -> Tasks:
    """The paper's linear regression tasks: y = w . x with w, x ~ N(0, 1) per task."""
    k_w, k_x = jax.random.split(key)
    w = jax.random.normal(k_w, (num_tasks, features))
    x = jax.random.normal(k_x, (num_tasks, train + valid, features))
    y = jnp.einsum("tnf,tf->tn", x, w)
    return Tasks(x[:, :train], y[:, :train], x[:, train:], y[:, train:])


def digit_pair_tasks(
    key: jax.Array, num_tasks: int, *, features: int = 16, train: int = 200, valid: int = 100
) -> Tasks:
    """Projected binary tasks of scikit-learn's digits (the paper's projected binary
    CIFAR-10 tasks, on the data we have offline): per task a random pair of classes, the
    64 pixels projected to `features` dimensions by a random Gaussian matrix (scaled by
    1 / sqrt(64), pixels in [0, 1]), labels -1 / +1; train and validation examples drawn
    without replacement from the pair's 360-odd images."""
    from jnas.data import digit_arrays

    pixels, target = digit_arrays()
    images = jnp.asarray(np.asarray(pixels) / 16.0, jnp.float32)
    labels = jnp.asarray(np.asarray(target))

    def one(k):
        k_pair, k_proj, k_pick = jax.random.split(k, 3)
        pair = jax.random.choice(k_pair, 10, (2,), replace=False)
        member = (labels == pair[0]) | (labels == pair[1])
        order = jnp.argsort(jnp.where(member, jax.random.uniform(k_pick, labels.shape), 2.0))
        idx = order[: train + valid]
        proj = jax.random.normal(k_proj, (64, features)) / 8.0
        x = images[idx] @ proj
        x = (x - x.mean(0, keepdims=True)) / (x.std(0, keepdims=True) + 1e-6)
        y = jnp.where(labels[idx] == pair[1], 1.0, -1.0)
        return x[:train], y[:train], x[train:], y[train:]

    return Tasks(*jax.vmap(one)(jax.random.split(key, num_tasks)))


def empty_program(length: int) -> Program:
    return Program(
        jnp.zeros((3, length), jnp.int8),
        jnp.zeros((3, length, 3), jnp.int8),
        jnp.zeros((3, length), jnp.float32),
    )


def parse_program(
    text: dict[str, list[str]], length: int, scalars: int = 4, vectors: int = 4
) -> Program:
    """A program from `{component: ["s3 = s0 - s1", "v1 = s2 * v2", ...]}` (the notation
    of `to_text`; `s2 = 0.1` for a constant)."""
    ops = np.zeros((3, length), np.int8)
    args = np.zeros((3, length, 3), np.int8)
    consts = np.zeros((3, length), np.float32)
    names = {name: i for i, (name, _, _) in enumerate(OPS)}
    for c, comp in enumerate(COMPONENTS):
        lines = text.get(comp, [])
        if len(lines) > length:
            raise ValueError(f"parse_program: {comp} has {len(lines)} instructions > {length}")
        for i, line in enumerate(lines):
            line = line.replace(" ", "")
            m = re.fullmatch(r"([sv])(\d+)=(.*)", line)
            if not m:
                raise ValueError(f"parse_program: cannot read {line!r}")
            kind, out, rhs = m.group(1), int(m.group(2)), m.group(3)
            regs = [(k, int(n)) for k, n in re.findall(r"([sv])(\d+)", rhs)]
            shape = re.sub(r"([sv])\d+", r"\1", rhs)
            if re.fullmatch(r"-?[\d.e-]+", rhs):
                op, consts[c, i] = "s=c", float(rhs)
            elif shape.startswith("gauss*"):
                op, consts[c, i] = "v=gauss*c", float(rhs.split("*")[1])
            else:
                op = f"{kind}={shape}"
            if op not in names:
                raise ValueError(f"parse_program: unknown op {op!r} in {line!r}")
            ops[c, i] = names[op]
            a = [n for _, n in regs] + [0, 0]
            args[c, i] = (a[0], a[1], out)
            limit = scalars if kind == "s" else vectors
            if out >= limit:
                raise ValueError(f"parse_program: register {kind}{out} out of range in {line!r}")
    return Program(jnp.asarray(ops), jnp.asarray(args), jnp.asarray(consts))


def live_instructions(program: Program, *, scalars: int = 4, vectors: int = 4) -> np.ndarray:
    """bool[3, length]: which instructions can change a prediction. A backward dataflow
    analysis over the evaluation's control flow (setup, then per example predict -> learn
    in training and predict -> predict in validation, the memory carried throughout): the
    prediction s1 is read after every predict, the harness writes v0 and s0 before predict
    and s0 before learn. An instruction is live when it writes a register that a live
    instruction or a prediction reads before it is written again; the others can be
    removed without changing any output (registers as the machine indexes them, modulo
    `scalars` / `vectors`)."""
    ops, args = np.asarray(program.ops), np.asarray(program.args)
    size = {"s": scalars, "v": vectors}

    def backward(c: int, live_out: set) -> tuple[set, np.ndarray]:
        live, mark = set(live_out), np.zeros(ops.shape[1], bool)
        for i in reversed(range(ops.shape[1])):
            _, writes, reads = OPS[int(ops[c, i])]
            target = (writes, int(args[c, i, 2]) % size[writes]) if writes else None
            if target is None or target not in live:
                continue
            mark[i] = True
            live.discard(target)
            live |= {(k, int(r) % size[k]) for k, r in zip(reads, args[c, i, :2], strict=False)}
        return live, mark

    at_predict: set = set()  # live on entering predict, before the harness writes v0, s0
    at_learn: set = set()
    while True:
        into_predict = at_predict - {("v", 0), ("s", 0)}
        new_predict, _ = backward(1, {("s", 1)} | (at_learn - {("s", 0)}) | into_predict)
        new_learn, _ = backward(2, into_predict)
        if new_predict == at_predict and new_learn == at_learn:
            break
        at_predict, at_learn = new_predict, new_learn
    into_predict = at_predict - {("v", 0), ("s", 0)}
    marks = [
        backward(0, into_predict)[1],
        backward(1, {("s", 1)} | (at_learn - {("s", 0)}) | into_predict)[1],
        backward(2, into_predict)[1],
    ]
    return np.stack(marks)


def to_text(
    program: Program, *, live_only: bool = False, scalars: int = 4, vectors: int = 4
) -> dict[str, list[str]]:
    """The program in the paper's notation, nops left out; `live_only`: only the
    instructions that can change a prediction (`live_instructions`)."""
    ops, args, consts = (np.asarray(a) for a in program)
    live = (
        live_instructions(program, scalars=scalars, vectors=vectors)
        if live_only
        else np.ones(ops.shape[:2], bool)
    )
    out = {}
    for c, comp in enumerate(COMPONENTS):
        lines = []
        for i in range(ops.shape[1]):
            name, writes, reads = OPS[int(ops[c, i])]
            if name == "nop" or not live[c, i]:
                continue
            a, b, o = (int(v) for v in args[c, i])
            if name == "s=c":
                lines.append(f"s{o} = {consts[c, i]:.4g}")
            elif name == "v=gauss*c":
                lines.append(f"v{o} = gauss * {consts[c, i]:.4g}")
            else:
                rhs = name.split("=")[1]
                regs = iter([f"{reads[0]}{a}", f"{reads[1] if len(reads) > 1 else ''}{b}"])
                rhs = re.sub(r"[sv]", lambda m, r=regs: next(r), rhs)
                lines.append(f"{writes}{o} = {rhs}")
        out[comp] = lines
    return out


def _run(ops, args, consts, s, v, key):
    """Run one component (`length` instructions) on registers (s, v): one instruction per
    scan step, every op computed and the program's own selected."""
    f = v.shape[1]

    def step(carry, inst):
        s, v, i = carry
        op, (a, b, o), c = inst
        sa, sb = s[a % s.shape[0]], s[b % s.shape[0]]
        va, vb = v[a % v.shape[0]], v[b % v.shape[0]]
        gauss = jax.random.normal(jax.random.fold_in(key, i), (f,))
        scalars = jnp.stack(
            [
                s[o % s.shape[0]],
                c,
                sa + sb,
                sa - sb,
                sa * sb,
                jnp.where(sb == 0, 0.0, sa / jnp.where(sb == 0, 1.0, sb)),
                jnp.dot(va, vb),
                jnp.mean(va),
            ]
        )
        vectors = jnp.stack([v[o % v.shape[0]], va + vb, va - vb, va * vb, sa * vb, gauss * c])
        s_index = jnp.asarray([0, 1, 2, 3, 4, 5, 0, 0, 0, 0, 6, 7, 0])[op]
        v_index = jnp.asarray([0, 0, 0, 0, 0, 0, 1, 2, 3, 4, 0, 0, 5])[op]
        s = s.at[o % s.shape[0]].set(scalars[s_index])
        v = v.at[o % v.shape[0]].set(vectors[v_index])
        return (s, v, i + 1), None

    (s, v, _), _ = jax.lax.scan(
        step, (s, v, jnp.int32(0)), (ops.astype(jnp.int32), args.astype(jnp.int32), consts)
    )
    return s, v


def _evaluate_one(
    program: Program,
    tasks: Tasks,
    key: jax.Array,
    *,
    scalars: int = 4,
    vectors: int = 4,
    metric: str = "mse",
    max_abs_error: float = 100.0,
    sizes: tuple[int, int, int] | None = None,
) -> jax.Array:
    """float32[]: one program's fitness (see `evaluate_many`)."""
    length = program.ops.shape[1]
    n = sizes or (length,) * 3

    def component(c):  # the first sizes[c] slots: the rest are nops
        return program.ops[c, : n[c]], program.args[c, : n[c]], program.consts[c, : n[c]]

    def one_task(xt, yt, xv, yv, k):
        f = xt.shape[-1]
        s = jnp.zeros(scalars)
        v = jnp.zeros((vectors, f))
        s, v = _run(*component(0), s, v, jax.random.fold_in(k, 0))

        def predict(s, v, x):
            v = v.at[0].set(x)
            s = s.at[0].set(0.0)  # no label in predict
            return _run(*component(1), s, v, k)

        def train(carry, ex):
            s, v, ok = carry
            x, y = ex
            s, v = predict(s, v, x)
            ok = ok & (jnp.abs(y - s[1]) <= max_abs_error)  # NaN fails too
            s = s.at[0].set(y)
            s, v = _run(*component(2), s, v, k)
            return (s, v, ok), None

        (s, v, ok), _ = jax.lax.scan(train, (s, v, jnp.bool_(True)), (xt, yt))

        def valid(carry, x):
            s, v = predict(carry[0], carry[1], x)
            return (s, v), s[1]

        # the memory carries on through validation, as in the authors' executor
        _, pred = jax.lax.scan(valid, (s, v), xv)
        if metric == "accuracy":
            return jnp.where(jnp.all(jnp.isfinite(pred)), jnp.mean(jnp.sign(pred) == yv), jnp.nan)
        if metric == "rms":
            ok = ok & jnp.all(jnp.abs(pred - yv) <= max_abs_error)
            rms = jnp.sqrt(jnp.mean((pred - yv) ** 2))
            return jnp.where(ok & jnp.isfinite(rms), 1.0 - 2.0 / jnp.pi * jnp.arctan(rms), 0.0)
        return -jnp.mean((pred - yv) ** 2)

    keys = jax.random.split(key, tasks.x_train.shape[0])
    scores = jax.vmap(one_task)(tasks.x_train, tasks.y_train, tasks.x_valid, tasks.y_valid, keys)
    fitness = jnp.mean(scores)
    return jnp.where(jnp.isfinite(fitness), fitness, -jnp.inf)


_METRICS = ("mse", "rms", "accuracy")


def evaluate_many(
    programs: Program,
    tasks: Tasks,
    key: jax.Array,
    *,
    scalars: int = 4,
    vectors: int = 4,
    metric: str = "mse",
    sizes: tuple[int, int, int] | None = None,
) -> jax.Array:
    """float32[P]: the fitness of each of a batch of programs (leading axis P) averaged
    over `tasks`, from the validation predictions of a program trained on each task's
    training examples (memory carries on from training through validation, as in the
    authors' executor):

    - `"rms"`: the paper's regression fitness, per task 1 - (2 / pi) arctan(RMSE) in
      [0, 1]; a task whose |label - prediction| exceeds 100 (or is NaN) at any training
      or validation example scores 0 (the authors' early stopping, `max_abs_error`).
    - `"mse"`: minus the validation MSE averaged over the tasks (any NaN / inf: -inf).
    - `"accuracy"`: the accuracy of sign(s1) against -1 / +1 labels.

    `sizes` (the programs' fixed component sizes, `evolve(sizes=)`) runs only those
    slots: the nops after them cost a scan step each otherwise.

    A per-program interpreter under `vmap`. Measured against running programs x tasks as
    the lanes of one elementwise register machine (selects instead of register gathers),
    this is ~2-3x faster on XLA:CPU (`benchmarks/automl_zero_throughput.py`)."""
    if metric not in _METRICS:
        raise ValueError(f"evaluate: `metric` must be one of {_METRICS}; got {metric!r}")
    length = programs.ops.shape[-1]
    if sizes is not None and (len(sizes) != 3 or not all(0 <= n <= length for n in sizes)):
        raise ValueError(f"evaluate: `sizes` must be 3 sizes in [0, {length}]; got {sizes!r}")
    return jax.vmap(
        lambda p: _evaluate_one(
            p, tasks, key, scalars=scalars, vectors=vectors, metric=metric, sizes=sizes
        )
    )(programs)


def evaluate(
    program: Program,
    tasks: Tasks,
    key: jax.Array,
    *,
    scalars: int = 4,
    vectors: int = 4,
    metric: str = "mse",
) -> jax.Array:
    """float32[]: the fitness of one program (`evaluate_many` for a batch)."""
    batch = jax.tree.map(lambda x: x[None], program)
    return evaluate_many(batch, tasks, key, scalars=scalars, vectors=vectors, metric=metric)[0]


def mutate(
    key: jax.Array,
    program: Program,
    *,
    scalars: int = 4,
    vectors: int = 4,
    op_set: OpSet = None,
    sizes: tuple[int, int, int] | None = None,
) -> Program:
    """One of the paper's mutations, each with probability 1/3: insert a random
    instruction at a random slot (the last one drops) or remove one (a nop joins at the
    end); randomize every instruction of a component (its size kept); alter one parameter
    of one live instruction (an input, the output, or the constant: times exp(N(0, 1)), or
    its sign flipped with probability 0.1, as the authors' `AlterParam`). New instructions
    draw their op from `op_set` (names of `OPS`; default all but nop), or per component
    three tuples of names (setup, predict, learn), as the paper's experiments restrict the
    ops, and never write the label s0 or the features v0.

    `sizes` (instructions per component) fixes the programs' sizes, as the authors' demo
    does: the insert / remove mutation becomes randomizing one instruction, and a
    randomized component keeps its size."""
    length = program.ops.shape[1]
    if sizes is not None and (len(sizes) != 3 or not all(1 <= n <= length for n in sizes)):
        raise ValueError(f"mutate: `sizes` must be 3 sizes in [1, {length}]; got {sizes!r}")
    k_kind, k_comp, k_pos, k_inst, k_arg, k_comp2 = jax.random.split(key, 6)
    kind = jax.random.randint(k_kind, (), 0, 3)
    comp = jax.random.randint(k_comp, (), 0, 3)
    size = length if sizes is None else jnp.asarray(sizes)[comp]
    pos = jax.random.randint(k_pos, (), 0, size)

    op_set = _normalize_op_set(op_set)

    def random_instruction(k):
        return _random_instruction(k, comp, scalars=scalars, vectors=vectors, op_set=op_set)

    ops, args, consts = program
    # insert / remove
    op_i, reg_i, c_i = random_instruction(k_inst)
    idx = jnp.arange(length)
    ins = jax.random.bernoulli(k_arg)
    row_ops, row_args, row_c = ops[comp], args[comp], consts[comp]
    shifted_right = jnp.where(idx[:, None] > pos, row_args[jnp.maximum(idx - 1, 0)], row_args)
    ins_ops = jnp.where(idx > pos, row_ops[jnp.maximum(idx - 1, 0)], row_ops).at[pos].set(op_i)
    ins_args = shifted_right.at[pos].set(reg_i)
    ins_c = jnp.where(idx > pos, row_c[jnp.maximum(idx - 1, 0)], row_c).at[pos].set(c_i)
    nxt = jnp.minimum(idx + 1, length - 1)
    rem_ops = jnp.where(idx >= pos, jnp.where(idx == length - 1, 0, row_ops[nxt]), row_ops)
    rem_args = jnp.where(
        (idx >= pos)[:, None], jnp.where((idx == length - 1)[:, None], 0, row_args[nxt]), row_args
    )
    rem_c = jnp.where(idx >= pos, jnp.where(idx == length - 1, 0.0, row_c[nxt]), row_c)
    edit = (
        jnp.where(ins, ins_ops, rem_ops).astype(jnp.int8),
        jnp.where(ins, ins_args, rem_args).astype(jnp.int8),
        jnp.where(ins, ins_c, rem_c),
    )
    if sizes is not None:  # fixed sizes: randomize the instruction at pos instead
        edit = (row_ops.at[pos].set(op_i), row_args.at[pos].set(reg_i), row_c.at[pos].set(c_i))
    # randomize the component: its instructions, not its size (the authors' mutation)
    rand = jax.vmap(random_instruction)(jax.random.split(k_comp2, length))
    live = idx < size if sizes is not None else row_ops != 0
    rand = (
        jnp.where(live, rand[0], 0),
        jnp.where(live[:, None], rand[1], 0),
        jnp.where(live, rand[2], 0.0),
    )
    change = _alter_param(k_inst, row_ops, row_args, row_c, scalars=scalars, vectors=vectors)
    pick = [edit, rand, change]
    new_row = [
        jnp.select([kind == 0, kind == 1, kind == 2], [p[j] for p in pick]) for j in range(3)
    ]
    return Program(
        ops.at[comp].set(new_row[0].astype(jnp.int8)),
        args.at[comp].set(new_row[1].astype(jnp.int8)),
        consts.at[comp].set(new_row[2].astype(jnp.float32)),
    )


# per op: the register file each of (in1, in2, out) addresses (0: none, 1: scalars,
# 2: vectors), and whether it has a constant
_KINDS = np.asarray(
    [[" sv".index(k) for k in (reads + "  ")[:2] + (writes or " ")] for _, writes, reads in OPS]
)
_HAS_CONST = np.asarray([name in ("s=c", "v=gauss*c") for name, _, _ in OPS])


def _register(
    key: jax.Array, kind: jax.Array, scalars: int, vectors: int, first: int | jax.Array
) -> jax.Array:
    """A register index uniform in [first, count) of the file `kind` addresses (0: none)."""
    count = jnp.asarray([first + 1, scalars, vectors])[kind]
    return first + jnp.floor(jax.random.uniform(key) * (count - first)).astype(jnp.int32)


def _alter_param(key, row_ops, row_args, row_c, *, scalars: int, vectors: int):
    """The paper's parameter mutation on one live instruction of a component: one of its
    parameters, uniformly, takes a new random register (an input, or the output, never
    s0 / v0), or its constant is scaled by exp(N(0, 1)) or, with probability 0.1, negated.
    A component of nops only is left as it is."""
    k_pos, k_field, k_reg, k_flip, k_scale = jax.random.split(key, 5)
    live = row_ops != 0
    pos = jax.random.categorical(k_pos, jnp.where(live, 0.0, -jnp.inf))
    pos = jnp.where(live.any(), pos, 0)
    op = row_ops[pos].astype(jnp.int32)
    kinds = jnp.asarray(_KINDS)[op]
    fields = jnp.concatenate([kinds > 0, jnp.asarray(_HAS_CONST)[op][None]])
    field = jax.random.categorical(k_field, jnp.where(fields, 0.0, -jnp.inf))
    reg = _register(k_reg, kinds[jnp.minimum(field, 2)], scalars, vectors, (field == 2) * 1)
    regs = row_args[pos].astype(jnp.int32)
    regs = jnp.where((jnp.arange(3) == field) & live[pos], reg, regs)
    c = row_c[pos]
    scaled = jnp.where(
        jax.random.bernoulli(k_flip, 0.1), -c, c * jnp.exp(jax.random.normal(k_scale))
    )
    c = jnp.where((field == 3) & live[pos], scaled, c)
    return row_ops, row_args.at[pos].set(regs.astype(row_args.dtype)), row_c.at[pos].set(c)


def _random_instruction(
    key: jax.Array, comp: jax.Array | int, *, scalars: int, vectors: int, op_set: OpSet
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(op, (in1, in2, out), constant): an op that `op_set` allows in component `comp`,
    each input uniform over the registers of its kind, the output uniform over its kind's
    registers but the first (the label s0 and the features v0 are read-only, as in the
    authors' machine), the constant (ops that have one) uniform in [-1, 1]."""
    table, counts = _op_table(op_set)
    k1, k2, k3 = jax.random.split(key, 3)
    pick = jnp.floor(jax.random.uniform(k1) * jnp.asarray(counts)[comp]).astype(jnp.int32)
    op = jnp.asarray(table)[comp, pick]
    kinds = jnp.asarray(_KINDS)[op]
    regs = jnp.stack(
        [
            _register(k, kinds[i], scalars, vectors, int(i == 2))
            for i, k in enumerate(jax.random.split(k2, 3))
        ]
    )
    regs = jnp.where(kinds > 0, regs, 0)
    return (
        op.astype(jnp.int8),
        regs.astype(jnp.int8),
        jnp.where(
            jnp.asarray(_HAS_CONST)[op], jax.random.uniform(k3, (), minval=-1.0, maxval=1.0), 0.0
        ),
    )


def random_program(
    key: jax.Array,
    sizes: tuple[int, int, int],
    length: int,
    *,
    scalars: int = 4,
    vectors: int = 4,
    op_set: OpSet = None,
) -> Program:
    """A program of random instructions, `sizes[c]` in component c (nops after): the
    authors' demo starts from a population of these rather than empty programs."""
    if len(sizes) != 3 or not all(0 <= n <= length for n in sizes):
        raise ValueError(f"random_program: `sizes` must be 3 sizes in [0, {length}]; got {sizes!r}")
    op_set = _normalize_op_set(op_set)
    keys = jax.random.split(key, 3 * length).reshape(3, length)
    op, regs, const = jax.vmap(
        lambda ks, c: jax.vmap(
            lambda k: _random_instruction(k, c, scalars=scalars, vectors=vectors, op_set=op_set)
        )(ks)
    )(keys, jnp.arange(3))
    live = jnp.arange(length)[None, :] < jnp.asarray(sizes)[:, None]
    return Program(
        jnp.where(live, op, 0).astype(jnp.int8),
        jnp.where(live[..., None], regs, 0).astype(jnp.int8),
        jnp.where(live, const, 0.0),
    )


def _op_indices(op_set: tuple[str, ...] | None) -> np.ndarray:
    names = [name for name, _, _ in OPS]
    if op_set is None:
        return np.arange(1, len(OPS), dtype=np.int32)
    unknown = [op for op in op_set if not isinstance(op, str) or op not in names[1:]]
    if unknown or not op_set:
        raise ValueError(f"mutate: `op_set` must be non-empty names of OPS[1:]; got {op_set!r}")
    return np.asarray([names.index(op) for op in op_set], np.int32)


OpSet = tuple[str, ...] | tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]] | None


def _normalize_op_set(op_set) -> OpSet:
    """A hashable op set: None, names for every component, or three tuples of names (one
    per component: setup, predict, learn), checked."""
    if op_set is None:
        return None
    if all(isinstance(o, str) for o in op_set):
        out: OpSet = tuple(op_set)
    elif len(op_set) == 3 and not any(isinstance(o, str) for o in op_set):
        out = tuple(tuple(o) for o in op_set)  # type: ignore[assignment]
    else:
        raise ValueError(
            "mutate: `op_set` must be names of OPS[1:] or three tuples of them (setup,"
            f" predict, learn); got {op_set!r}"
        )
    _op_table(out)
    return out


def _op_table(op_set: OpSet) -> tuple[np.ndarray, np.ndarray]:
    """int32[3, K]: the allowed op indices of each component (rows padded by repetition)
    and int32[3]: how many each allows."""
    if op_set is None or all(isinstance(o, str) for o in op_set):
        rows = [_op_indices(op_set)] * 3  # type: ignore[arg-type]
    else:
        rows = [_op_indices(o) for o in op_set]  # type: ignore[arg-type]
    width = max(len(r) for r in rows)
    return np.stack([np.resize(r, width) for r in rows]), np.asarray([len(r) for r in rows])


# The linear-regression demo's op set (the authors' `run_demo.sh`: constant, dot product,
# scalar difference and product, scalar-vector product, vector sum)
LINEAR_OPS = ("s=c", "s=dot(v,v)", "s=s-s", "s=s*s", "v=s*v", "v=v+v")
# The same ops split by component, as the paper's restricted linear search (Section 4.1;
# the authors' `run_integration_test_linear.sh`, sizes 5 / 1 / 4): constants in setup, a
# dot product in predict, the update's arithmetic in learn
LINEAR_OPS_BY_COMPONENT = (("s=c",), ("s=dot(v,v)",), ("s=s-s", "s=s*s", "v=s*v", "v=v+v"))


class EvolutionState(NamedTuple):
    population: Program  # leading axis: population size
    fitness: jax.Array
    age: jax.Array  # int32[P]: when each member was born (evaluation count)
    evaluations: jax.Array  # int32[]
    best: Program
    best_fitness: jax.Array


@functools.partial(
    jax.jit,
    static_argnames=(
        "tasks_fn",
        "tournament",
        "children",
        "scalars",
        "vectors",
        "metric",
        "op_set",
        "sizes",
        "mutate_prob",
    ),
)
def _generation(
    state: EvolutionState,
    key: jax.Array,
    tasks: Tasks | None,
    *,
    tasks_fn: Callable[[jax.Array], Tasks] | None,
    tournament: int,
    children: int,
    scalars: int,
    vectors: int,
    metric: str,
    op_set: OpSet,
    sizes: tuple[int, int, int] | None,
    mutate_prob: float,
) -> EvolutionState:
    """One generation of `evolve` (module level, so that its compilation is reused
    across calls with the same configuration)."""
    population = state.fitness.shape[0]
    k_sel, k_mut, k_task, k_copy = jax.random.split(key, 4)
    contestants = jax.random.randint(k_sel, (children, tournament), 0, population)
    winners = contestants[jnp.arange(children), jnp.argmax(state.fitness[contestants], axis=1)]
    parents = jax.tree.map(lambda a: a[winners], state.population)
    kids = jax.vmap(
        lambda k, p: mutate(k, p, scalars=scalars, vectors=vectors, op_set=op_set, sizes=sizes)
    )(jax.random.split(k_mut, children), parents)
    mutated = jax.random.bernoulli(k_copy, mutate_prob, (children,))
    kids = jax.tree.map(
        lambda a, b: jnp.where(mutated.reshape(-1, *[1] * (a.ndim - 1)), a, b), kids, parents
    )
    on = tasks if tasks_fn is None else tasks_fn(k_task)
    assert on is not None
    fit = evaluate_many(
        kids, on, k_task, scalars=scalars, vectors=vectors, metric=metric, sizes=sizes
    )
    oldest = jnp.argsort(state.age)[:children]
    pop = jax.tree.map(lambda a, b: a.at[oldest].set(b), state.population, kids)
    fitness = state.fitness.at[oldest].set(fit)
    age = state.age.at[oldest].set(state.evaluations + jnp.arange(children, dtype=jnp.int32))
    i = jnp.argmax(fit)
    better = fit[i] > state.best_fitness
    best = jax.tree.map(lambda a, b: jnp.where(better, a[i], b), kids, state.best)
    return EvolutionState(
        pop,
        fitness,
        age,
        state.evaluations + children,
        best,
        jnp.maximum(state.best_fitness, fit[i]),
    )


def initial_population(
    key: jax.Array,
    tasks: Tasks | Callable[[jax.Array], Tasks],
    *,
    population: int,
    length: int,
    scalars: int,
    vectors: int,
    metric: str,
    op_set: OpSet,
    sizes: tuple[int, int, int] | None,
) -> EvolutionState:
    """The state `evolve` starts from: `population` empty programs of `length`
    instructions per component (or, with `sizes`, random programs of those sizes), scored
    on `tasks` (drawn with `key` when a function). Arguments as `evolve`, already checked."""
    op_set = _normalize_op_set(op_set)
    if sizes is None:
        pop = jax.tree.map(
            lambda a: jnp.broadcast_to(a, (population, *a.shape)), empty_program(length)
        )
    else:
        key, k_pop = jax.random.split(key)
        pop = jax.vmap(
            lambda k: random_program(
                k, sizes, length, scalars=scalars, vectors=vectors, op_set=op_set
            )
        )(jax.random.split(k_pop, population))
    first = tasks(key) if callable(tasks) else tasks
    fit = jax.jit(evaluate_many, static_argnames=("scalars", "vectors", "metric", "sizes"))(
        pop, first, key, scalars=scalars, vectors=vectors, metric=metric, sizes=sizes
    )
    i0 = jnp.argmax(fit)
    return EvolutionState(
        pop,
        fit,
        jnp.arange(population, dtype=jnp.int32),
        jnp.int32(population),
        jax.tree.map(lambda a: a[i0], pop),
        fit[i0],
    )


def evolve(
    key: jax.Array,
    tasks: Tasks | Callable[[jax.Array], Tasks],
    *,
    generations: int,
    population: int = 100,
    tournament: int = 10,
    children: int = 100,
    length: int = 8,
    scalars: int = 4,
    vectors: int = 4,
    metric: str = "mse",
    op_set: OpSet = None,
    sizes: tuple[int, int, int] | None = None,
    mutate_prob: float = 0.9,
    state: EvolutionState | None = None,
) -> EvolutionState:
    """Regularized evolution of programs from empty ones: each generation draws
    `children` tournaments of `tournament` members, mutates the winners, evaluates them
    in one compiled call, and replaces the oldest members. Pass `state` to continue.
    A child is its parent mutated with probability `mutate_prob` (the authors' 0.9), else
    a copy of it.

    `tasks` is either a fixed `Tasks` batch — the paper's T_search: every program is
    scored on the same tasks, so fitnesses compare — or `tasks(key) -> Tasks`, fresh
    tasks each generation (pass the same function object each call, or it recompiles).
    `sizes` switches to the authors' demo: the population starts as random programs of
    those component sizes (`random_program`) and mutations keep the sizes."""
    check_positive(
        "evolve",
        generations=generations,
        population=population,
        tournament=tournament,
        children=children,
        length=length,
    )
    if not 0.0 <= mutate_prob <= 1.0:
        raise ValueError(f"evolve: `mutate_prob` must be in [0, 1]; got {mutate_prob}")
    if scalars < 2 or vectors < 2:
        raise ValueError(
            f"evolve: `scalars` and `vectors` must be >= 2 (s0 / v0 are the label and the"
            f" features, s1 the prediction); got {scalars}, {vectors}"
        )
    if metric not in _METRICS:
        raise ValueError(f"evolve: `metric` must be one of {_METRICS}; got {metric!r}")
    if children > population:
        raise ValueError(f"evolve: `children` must be <= population ({population}); got {children}")
    op_set = _normalize_op_set(op_set)
    sizes = None if sizes is None else tuple(int(n) for n in sizes)  # type: ignore[assignment]
    if sizes is not None and (len(sizes) != 3 or not all(1 <= n <= length for n in sizes)):
        raise ValueError(f"evolve: `sizes` must be 3 sizes in [1, {length}]; got {sizes!r}")
    fixed = None if callable(tasks) else tasks
    tasks_fn = tasks if callable(tasks) else None

    if state is None:
        k0, key = jax.random.split(key)
        state = initial_population(
            k0,
            tasks,
            population=population,
            length=length,
            scalars=scalars,
            vectors=vectors,
            metric=metric,
            op_set=op_set,
            sizes=sizes,
        )

    out: EvolutionState = state
    for g in range(generations):
        out = _generation(
            out,
            jax.random.fold_in(key, g),
            fixed,
            tasks_fn=tasks_fn,
            tournament=tournament,
            children=children,
            scalars=scalars,
            vectors=vectors,
            metric=metric,
            op_set=op_set,
            sizes=sizes,
            mutate_prob=float(mutate_prob),
        )
    return out
