"""AutoML-Zero (Real, Liang, So & Le, ICML 2020): learning algorithms evolved from empty
programs, as fixed-length integer arrays run by a register machine inside `jit`.

An algorithm is three components, `setup` (run once per task), `predict` (per example:
the input is in `v0`, the prediction must end in `s1`) and `learn` (per training example,
after `predict`, with the label in `s0`), each `length` instructions `(op, in1, in2, out,
constant)` over scalar registers `s*` and vector registers `v*` of the task's feature
size; `nop` pads. Evaluation runs a batch of programs on a batch of tasks in one compiled
call (`vmap` over programs and tasks, `lax.scan` over examples and instructions, every
op computed and one selected: no data-dependent control flow). Fitness is minus the mean
squared validation error, averaged over the tasks (NaN or inf: the worst).

Evolution is regularized evolution (aging, tournament selection) with the paper's
mutations: insert a random instruction or remove one, randomize a whole component,
or change one argument of one instruction. `linear_tasks` are the paper's linear
regression tasks (a random weight vector per task, Gaussian features); `SGD_LINEAR` is
the program the paper reports rediscovering (the learned weights in `v1`).
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
    from sklearn.datasets import load_digits

    pixels, target = load_digits(return_X_y=True)
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


def to_text(program: Program, *, live_only: bool = False) -> dict[str, list[str]]:
    """The program in the paper's notation, nops left out."""
    ops, args, consts = (np.asarray(a) for a in program)
    out = {}
    for c, comp in enumerate(COMPONENTS):
        lines = []
        for i in range(ops.shape[1]):
            name, writes, reads = OPS[int(ops[c, i])]
            if name == "nop":
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


# per op: whether it writes a scalar (else a vector, or nothing for nop)
_WRITES_SCALAR = np.asarray([w == "s" for _, w, _ in OPS])
_WRITES_VECTOR = np.asarray([w == "v" for _, w, _ in OPS])


def _gaussians(key: jax.Array, length: int, features: int) -> jax.Array:
    """float32[length, features]: instruction i's random vector, `normal(fold_in(key, i))`
    (one draw per instruction and task, the same at every example)."""
    return jax.vmap(lambda i: jax.random.normal(jax.random.fold_in(key, i), (features,)))(
        jnp.arange(length)
    )


def _read(registers: jax.Array, index: jax.Array) -> jax.Array:
    """registers[index] per lane: registers [R, *inner, *lanes], index [*lanes]. A select
    over the few registers, elementwise across lanes (no gather)."""
    index = index.reshape((1,) * (registers.ndim - 1 - index.ndim) + index.shape)
    out = registers[0]
    for r in range(1, registers.shape[0]):
        out = jnp.where(index == r, registers[r], out)
    return out


def _step(s, v, op, a, b, o, c, g):
    """One instruction on every lane: scalars s [S, *lanes], vectors v [V, F, *lanes]; the
    instruction's fields (op, in1, in2, out, constant) are [*lanes], its random vector g
    [F, *lanes]. Every op is computed and the lane's own selected."""
    ns, nv = s.shape[0], v.shape[0]
    sa, sb = _read(s, a % ns), _read(s, b % ns)
    va, vb = _read(v, a % nv), _read(v, b % nv)
    safe = jnp.where(sb == 0, 1.0, sb)
    s_new = jnp.select(
        [op == 1, op == 2, op == 3, op == 4, op == 5, op == 10],
        [c, sa + sb, sa - sb, sa * sb, jnp.where(sb == 0, 0.0, sa / safe), jnp.sum(va * vb, 0)],
        jnp.mean(va, 0),  # op 11 (other ops do not write a scalar)
    )
    v_op = op[None]
    v_new = jnp.select(
        [v_op == 6, v_op == 7, v_op == 8, v_op == 9],
        [va + vb, va - vb, va * vb, sa[None] * vb],
        g * c[None],
    )
    writes_s = jnp.asarray(_WRITES_SCALAR)[op]
    writes_v = jnp.asarray(_WRITES_VECTOR)[op]
    s_slot = jnp.arange(ns).reshape((ns,) + (1,) * o.ndim) == (o % ns)[None]
    v_slot = jnp.arange(nv).reshape((nv, 1) + (1,) * o.ndim) == (o % nv)[None, None]
    s = jnp.where(s_slot & writes_s[None], s_new[None], s)
    v = jnp.where(v_slot & writes_v[None, None], v_new[None], v)
    return s, v


def _run(component, gauss, s, v):
    """Run one component (ops [length, L], args [length, 3, L], consts [length, L]) on
    registers whose trailing lane axes end in L; gauss [length, F, *lanes]."""
    ops, args, consts = component
    extra = (1,) * (s.ndim - 1 - ops.ndim + 1)  # inner lane axes (validation examples)

    def lane(a):
        return a.reshape(a.shape[:-1] + extra + a.shape[-1:]) if extra else a

    def instruction(i, carry):
        # `args[i, k]`, not `args[i][k]`: the two-step slice ran ~6x slower on XLA:CPU
        a, b, o = (lane(args[i, k]) for k in range(3))
        return _step(carry[0], carry[1], lane(ops[i]), a, b, o, lane(consts[i]), gauss[i])

    s, v = jax.lax.fori_loop(0, ops.shape[0], instruction, (s, v))
    return s, v


def evaluate_many(
    programs: Program,
    tasks: Tasks,
    key: jax.Array,
    *,
    scalars: int = 4,
    vectors: int = 4,
    metric: str = "mse",
) -> jax.Array:
    """float32[P]: the fitness of each of a batch of programs (leading axis P) averaged
    over `tasks`: minus the validation MSE (`metric="mse"`, regression) or the validation
    accuracy of sign(s1) against -1 / +1 labels (`"accuracy"`). NaN / inf: -inf.

    All programs run on all tasks at once as P * T lanes of one register machine, lanes
    last: every instruction is a few elementwise selects over the registers, so XLA
    vectorizes across programs instead of gathering per program (3-6x faster on CPU than
    `vmap` over a per-program interpreter)."""
    if metric not in ("mse", "accuracy"):
        raise ValueError(f"evaluate: `metric` must be 'mse' or 'accuracy'; got {metric!r}")
    num_p, length = programs.ops.shape[0], programs.ops.shape[2]
    num_t, _, f = tasks.x_train.shape

    def per_program(a):  # [P, ...] -> [..., P * T]
        return jnp.moveaxis(jnp.repeat(a, num_t, axis=0), 0, -1)

    def per_task(a):  # [T, ...] -> [..., P * T]
        return jnp.moveaxis(jnp.tile(a, (num_p,) + (1,) * (a.ndim - 1)), 0, -1)

    ops = per_program(programs.ops.astype(jnp.int32))  # [3, length, L]
    args = per_program(programs.args.astype(jnp.int32))  # [3, length, 3, L]
    consts = per_program(programs.consts)  # [3, length, L]
    comps = [(ops[c], args[c], consts[c]) for c in range(3)]
    keys = jax.random.split(key, num_t)
    g_setup = per_task(jax.vmap(lambda k: _gaussians(jax.random.fold_in(k, 0), length, f))(keys))
    g_run = per_task(jax.vmap(lambda k: _gaussians(k, length, f))(keys))  # [length, F, L]
    x_train, y_train = per_task(tasks.x_train), per_task(tasks.y_train)  # [N, F, L], [N, L]
    x_valid, y_valid = per_task(tasks.x_valid), per_task(tasks.y_valid)
    x_train, x_valid = jnp.moveaxis(x_train, 0, 1), jnp.moveaxis(x_valid, 0, 1)  # [F, N, L]
    lanes = num_p * num_t
    s = jnp.zeros((scalars, lanes))
    v = jnp.zeros((vectors, f, lanes))
    s, v = _run(comps[0], g_setup, s, v)

    def train(carry, example):
        s, v = carry
        x, y = example
        v = v.at[0].set(x)
        s = s.at[0].set(0.0)  # no label in predict
        s, v = _run(comps[1], g_run, s, v)
        s = s.at[0].set(y)
        s, v = _run(comps[2], g_run, s, v)
        return (s, v), None

    (s, v), _ = jax.lax.scan(train, (s, v), (jnp.moveaxis(x_train, 1, 0), y_train))
    # validation: the examples become a second lane axis, [*, M, L]
    m = y_valid.shape[0]
    s_val = jnp.broadcast_to(s[:, None], (scalars, m, lanes)).at[0].set(0.0)
    v_val = jnp.broadcast_to(v[:, :, None], (vectors, f, m, lanes)).at[0].set(x_valid)
    s_val, _ = _run(comps[1], g_run[:, :, None], s_val, v_val)
    pred = s_val[1]  # [M, L]
    if metric == "accuracy":
        scores = jnp.where(
            jnp.all(jnp.isfinite(pred), 0), jnp.mean(jnp.sign(pred) == y_valid, 0), jnp.nan
        )
    else:
        scores = -jnp.mean((pred - y_valid) ** 2, 0)
    fitness = jnp.mean(scores.reshape(num_p, num_t), 1)
    return jnp.where(jnp.isfinite(fitness), fitness, -jnp.inf)


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
    batch = jax.tree.map(lambda a: a[None], program)
    return evaluate_many(batch, tasks, key, scalars=scalars, vectors=vectors, metric=metric)[0]


def mutate(
    key: jax.Array,
    program: Program,
    *,
    scalars: int = 4,
    vectors: int = 4,
    op_set: tuple[str, ...] | None = None,
    sizes: tuple[int, int, int] | None = None,
) -> Program:
    """One of the paper's mutations, each with probability 1/3: insert a random
    instruction at a random slot (the last one drops) or remove one (a nop joins at the
    end); randomize a whole component; change one argument (op, an input, the output or
    the constant) of one instruction. New instructions draw their op from `op_set` (names
    of `OPS`; default all but nop), as the paper's experiments restrict the ops.

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

    def random_instruction(k):
        return _random_instruction(k, scalars=scalars, vectors=vectors, op_set=op_set)

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
    # randomize the component
    rand = jax.vmap(random_instruction)(jax.random.split(k_comp2, length))
    if sizes is not None:
        live = idx < size
        rand = (
            jnp.where(live, rand[0], 0),
            jnp.where(live[:, None], rand[1], 0),
            jnp.where(live, rand[2], 0.0),
        )
    # change one argument of one instruction
    field = jax.random.randint(k_arg, (), 0, 5)
    new_op, new_regs, new_c = random_instruction(jax.random.fold_in(k_inst, 1))
    a_ops = row_ops.at[pos].set(jnp.where(field == 0, new_op, row_ops[pos]))
    a_args = row_args.at[pos].set(jnp.where((jnp.arange(3) + 1) == field, new_regs, row_args[pos]))
    a_c = row_c.at[pos].set(jnp.where(field == 4, new_c, row_c[pos]))
    change = (a_ops, a_args, a_c)
    pick = [edit, rand, change]
    new_row = [
        jnp.select([kind == 0, kind == 1, kind == 2], [p[j] for p in pick]) for j in range(3)
    ]
    return Program(
        ops.at[comp].set(new_row[0].astype(jnp.int8)),
        args.at[comp].set(new_row[1].astype(jnp.int8)),
        consts.at[comp].set(new_row[2].astype(jnp.float32)),
    )


def _random_instruction(
    key: jax.Array, *, scalars: int, vectors: int, op_set: tuple[str, ...] | None
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(op, (in1, in2, out), constant): an op of `op_set`, registers uniform, the output
    in range for the register kind it writes, the constant uniform in [-1, 1]."""
    allowed = _op_indices(op_set)
    k1, k2, k3 = jax.random.split(key, 3)
    op = jnp.asarray(allowed)[jax.random.randint(k1, (), 0, len(allowed))]
    regs = jax.random.randint(k2, (3,), 0, max(scalars, vectors))
    limit = jnp.where(jnp.asarray(_WRITES_SCALAR)[op], scalars, vectors)
    regs = regs.at[2].set(regs[2] % limit)
    return (
        op.astype(jnp.int8),
        regs.astype(jnp.int8),
        jax.random.uniform(k3, (), minval=-1.0, maxval=1.0),
    )


def random_program(
    key: jax.Array,
    sizes: tuple[int, int, int],
    length: int,
    *,
    scalars: int = 4,
    vectors: int = 4,
    op_set: tuple[str, ...] | None = None,
) -> Program:
    """A program of random instructions, `sizes[c]` in component c (nops after): the
    authors' demo starts from a population of these rather than empty programs."""
    if len(sizes) != 3 or not all(0 <= n <= length for n in sizes):
        raise ValueError(f"random_program: `sizes` must be 3 sizes in [0, {length}]; got {sizes!r}")
    keys = jax.random.split(key, 3 * length).reshape(3, length)
    op, regs, const = jax.vmap(
        jax.vmap(lambda k: _random_instruction(k, scalars=scalars, vectors=vectors, op_set=op_set))
    )(keys)
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
    unknown = [op for op in op_set if op not in names[1:]]
    if unknown or not op_set:
        raise ValueError(f"mutate: `op_set` must be non-empty names of OPS[1:]; got {op_set!r}")
    return np.asarray([names.index(op) for op in op_set], np.int32)


# The linear-regression demo's op set (the authors' `run_demo.sh`: constant, dot product,
# scalar difference and product, scalar-vector product, vector sum)
LINEAR_OPS = ("s=c", "s=dot(v,v)", "s=s-s", "s=s*s", "v=s*v", "v=v+v")


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
    op_set: tuple[str, ...] | None,
    sizes: tuple[int, int, int] | None,
) -> EvolutionState:
    """One generation of `evolve` (module level, so that its compilation is reused
    across calls with the same configuration)."""
    population = state.fitness.shape[0]
    k_sel, k_mut, k_task = jax.random.split(key, 3)
    contestants = jax.random.randint(k_sel, (children, tournament), 0, population)
    winners = contestants[jnp.arange(children), jnp.argmax(state.fitness[contestants], axis=1)]
    parents = jax.tree.map(lambda a: a[winners], state.population)
    kids = jax.vmap(
        lambda k, p: mutate(k, p, scalars=scalars, vectors=vectors, op_set=op_set, sizes=sizes)
    )(jax.random.split(k_mut, children), parents)
    on = tasks if tasks_fn is None else tasks_fn(k_task)
    assert on is not None
    fit = evaluate_many(kids, on, k_task, scalars=scalars, vectors=vectors, metric=metric)
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
    op_set: tuple[str, ...] | None = None,
    sizes: tuple[int, int, int] | None = None,
    state: EvolutionState | None = None,
) -> EvolutionState:
    """Regularized evolution of programs from empty ones: each generation draws
    `children` tournaments of `tournament` members, mutates the winners, evaluates them
    in one compiled call, and replaces the oldest members. Pass `state` to continue.

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
    if children > population:
        raise ValueError(f"evolve: `children` must be <= population ({population}); got {children}")
    op_set = None if op_set is None else tuple(op_set)
    _op_indices(op_set)
    sizes = None if sizes is None else tuple(int(n) for n in sizes)  # type: ignore[assignment]
    if sizes is not None and (len(sizes) != 3 or not all(1 <= n <= length for n in sizes)):
        raise ValueError(f"evolve: `sizes` must be 3 sizes in [1, {length}]; got {sizes!r}")
    fixed = None if callable(tasks) else tasks
    tasks_fn = tasks if callable(tasks) else None

    if state is None:
        k0, key = jax.random.split(key)
        if sizes is None:
            pop = jax.tree.map(
                lambda a: jnp.broadcast_to(a, (population, *a.shape)), empty_program(length)
            )
        else:
            k0, k_pop = jax.random.split(k0)
            pop = jax.vmap(
                lambda k: random_program(
                    k, sizes, length, scalars=scalars, vectors=vectors, op_set=op_set
                )
            )(jax.random.split(k_pop, population))
        first = fixed if tasks_fn is None else tasks_fn(k0)
        fit = jax.jit(evaluate_many, static_argnames=("scalars", "vectors", "metric"))(
            pop, first, k0, scalars=scalars, vectors=vectors, metric=metric
        )
        i0 = jnp.argmax(fit)
        state = EvolutionState(
            pop,
            fit,
            jnp.arange(population, dtype=jnp.int32),
            jnp.int32(population),
            jax.tree.map(lambda a: a[i0], pop),
            fit[i0],
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
        )
    return out
