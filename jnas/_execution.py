"""The execution policy, CPU against accelerators, in one place: how steps, inner loops
and task batches are laid out for the compiler. Every choice gives the same values.

One cause behind all of them: on XLA:CPU a convolution inside a loop body (`lax.scan`,
`lax.map`, `while`) or with a batched kernel (`vmap` over per-task weights) runs 10-40x
slower than the same convolution outside one (jax-ml/jax#12868). So on CPU

- a run's steps are a Python loop over one jitted step, not one `lax.scan` per epoch
  (`stepper`; measured 5.4 s vs 0.34 s for 21 NB201 training steps);
- a task batch is a Python loop unrolled inside the compiled program, not a `vmap`
  (`map_tasks`; 8 Omniglot MAML tasks 2.2 s vmapped vs 0.25 s unrolled);
- inner loops of up to `MAX_UNROLL` steps are unrolled (XLA fuses across MAML's 1-5
  steps; a conv4 step on 25 images 60 ms in a loop vs 6 ms unrolled), and at evaluation a
  program whose tasks take at most `UNROLL_BUDGET` steps in all (unrolling costs compile
  time and memory: Reptile's 50 test steps over 20 tasks took > 22 GB), so evaluation
  compiles one task per call on CPU (`eval_tasks_per_call`).
A run's initial state is one program compiled at LLVM's -O0, unless it makes so many
separate random draws that XLA's compile would take longer than running it op by op
(`initial_state`). A one-shot method may name XLA:CPU options for its step
(`OneShot.cpu_compiler_options`): DARTS', SNAS' and DrNAS' take the classic emitters (`CLASSIC_EMITTERS`).
On GPU/TPU the defaults are the compact forms: `lax.scan`, `vmap`, whole batches.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jnas import _trace_store

MODES = ("auto", "scan", "loop")
TASK_MAPS = ("auto", "vmap", "unroll")
MAX_UNROLL = 5
UNROLL_BUDGET = 64


def on_cpu() -> bool:
    return jax.default_backend() == "cpu"


def resolve_mode(mode: str) -> str:
    if mode not in MODES:
        raise ValueError(f"`steps_mode` must be one of {MODES}; got {mode!r}")
    if mode == "auto":
        return "loop" if on_cpu() else "scan"
    return mode


# Which XLA:CPU emitters compile a one-shot step. DARTS' all-ops NB201 cell (first and second
# order) compiles with the classic loop emitters (`CLASSIC_EMITTERS`) rather than the MLIR
# fusion emitters that are XLA:CPU's default since jax 0.10. `benchmarks/cpu_emitters.py`
# (C=16, N=5, fresh processes alternating, `benchmarks/results/cpu_emitters_cpu_*.json`): the
# DARTS-V1 step at batch 64 took 4.7-4.8 s against 5.3-5.9 s on one thread, 4.6-4.8 against
# 5.0-6.1 s on two, 0.98-1.06 against 0.97-0.99 s at batch 16, and the process peaked at 0.80
# against 1.43 GB at batch 16 (the fusion emitters hold ~0.9 GB while compiling the mixed
# cell). Exact DARTS-V2 since the CPU convolutions are XLA's own (`canonical_conv`), one
# process, one thread, both programs alternating: 8.10 against 8.22 s a step at batch 64
# (4 pairs, 0.985 per pair), 1.73 against 1.75 s at batch 16, the process' peak at batch
# 16 1.55 against 1.94 GB (the reference's: 1.87), the compile 23.5-28.5 s either way.
# GDAS' single-path step keeps the default: the same step time and a peak of 0.77 against
# 1.14 GB at batch 16, but the compile (its many small branch kernels) 15-20 s against
# 8-11 s, which puts its cold start past 20 s (`benchmarks/oneshot_startup.py`: 25.7 s
# against 15.7). SNAS and DrNAS, all-ops cells too, take them as well (2026-12-05,
# a fresh process per setting, 2 CPU cores, batch 16: SNAS compile 7.3 against 9.9 s, peak 0.63
# against 1.17 GB, steps 0.35 against 0.34-0.40 s; DrNAS 14.9 against 15.4 s, 0.85 against
# 1.41 GB, 0.59-0.62 against 0.63-0.69 s; DrNAS at batch 64, two runs: compile 15.4 against
# 16.4-19.3 s, peak 1.75 against 1.87 GB, steps alike). SETN's and ProxylessNAS' steps
# compiled slower with them (17.9 against 16.7 s, 18.9 against 16.0) and keep the defaults.
CLASSIC_EMITTERS: tuple[tuple[str, Any], ...] = (("xla_cpu_use_fusion_emitters", False),)


def cpu_compiler_options(options: tuple[tuple[str, Any], ...]) -> dict[str, Any] | None:
    """`options` (name, value) pairs as `jax.jit`'s `compiler_options` on CPU; None on
    other backends (they are XLA:CPU's options) and when there are none. An option this
    XLA does not know is left out (XLA would refuse the whole compile): jax 0.11's XLA:CPU
    has no classic emitters, so `CLASSIC_EMITTERS` is then a no-op."""
    if not options or not on_cpu():
        return None
    known = {name: value for name, value in options if _known_option(name, value)}
    return known or None


@functools.cache
def _known_option(name: str, value: Any) -> bool:
    """Whether XLA accepts compile option `name` (one compile of an identity, ~10 ms)."""
    try:
        jax.jit(lambda x: x, compiler_options={name: value}).lower(np.float32(0)).compile()
    except jax.errors.JaxRuntimeError as error:
        if "No such compile option" in str(error):
            return False
        raise
    return True


def stepper(
    step: Callable[[Any, Any], tuple[Any, Any]],
    mode: str = "auto",
    compiler_options: dict[str, Any] | None = None,
    identity: str | None = None,
) -> Callable[[Any, Any], tuple[Any, Any]]:
    """`run(carry, xs) -> (carry, stacked outputs)` applying `step` along xs' leading axis,
    compiled with XLA `compiler_options` (None: XLA's defaults). `identity`: a name that
    determines `step` completely (see `jnas._trace_store`): its program is stored and, on
    later starts, loaded instead of traced while the store is on."""
    mode = resolve_mode(mode)

    def compiled(fn: Callable[[Any, Any], tuple[Any, Any]]) -> Callable[..., Any]:
        if identity is None:
            return jax.jit(fn, compiler_options=compiler_options)
        return _trace_store.StoredStep(fn, f"{identity}|{mode}", compiler_options)

    if mode == "scan":
        return compiled(lambda carry, xs: jax.lax.scan(step, carry, xs))
    jitted = compiled(step)

    def run(carry: Any, xs: Any) -> tuple[Any, Any]:
        n = jax.tree.leaves(xs)[0].shape[0]
        outs = []
        for i in range(n):
            carry, out = jitted(carry, jax.tree.map(lambda a, i=i: a[i], xs))
            outs.append(out)
        return carry, jax.tree.map(lambda *o: jnp.stack(o), *outs)

    return run


# A run's `init` runs once: compiled at LLVM's -O0 it is quick while it makes few separate
# random draws (the NB201 supernet's 14 weight draws: 10.4 s to compile at XLA's default
# level, 1.7 s at -O0), but XLA's compile grows faster than the number of draws (each a
# threefry loop of its own): the 3-cell DARTS search network (545 weight draws, as many key
# derivations) took 85 s to compile even at -O0, the 8-cell one (1,396) minutes, while op by
# op each distinct draw shape compiles once (9.5 s for the 8-cell network). On CPU the init
# compiles with XLA's classic emitters too (`init_compiler_options`): the NB201 supernets of
# DARTS-V1, GDAS, DrNAS, ENAS, SPOS and SMASH (C=16, N=5) compiled in 0.52-0.84 s against
# 1.19-1.68 s with the fusion emitters, to bit-identical states (2026-12-05, 2 cores): every
# run's start saves the difference.
INIT_COMPILER_OPTIONS = {"xla_backend_optimization_level": 0}
MAX_COMPILED_DRAWS = 256
_DRAWS = frozenset({"random_bits", "random_fold_in", "random_split", "threefry2x32"})


def count_draws(jaxpr: Any) -> int:
    """The random-draw primitives (bits, key splits and fold-ins) in `jaxpr` and in the
    jaxprs nested in it (`jit`, `vmap`ped bodies, `scan`, `cond` branches)."""
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)  # a ClosedJaxpr's inner jaxpr
    n = 0
    for eqn in jaxpr.eqns:
        n += eqn.primitive.name in _DRAWS
        for value in eqn.params.values():
            for sub in value if isinstance(value, (tuple, list)) else (value,):
                if hasattr(sub, "eqns") or hasattr(getattr(sub, "jaxpr", None), "eqns"):
                    n += count_draws(sub)
    return n


def init_compiler_options() -> dict[str, Any]:
    """XLA options for a run's init: LLVM -O0, and on CPU the classic emitters (where this
    XLA has them; see above)."""
    return {**INIT_COMPILER_OPTIONS, **(cpu_compiler_options(CLASSIC_EMITTERS) or {})}


def initial_state(init: Callable[[Any], Any], key: Any) -> Any:
    """`init(key)`: one program compiled at -O0 (`init_compiler_options`), or op by op when
    it makes more than `MAX_COMPILED_DRAWS` random draws (see above). The draws are the
    same bits either way; the arithmetic on them may round differently in the last bit."""
    traced = jax.jit(init, compiler_options=init_compiler_options()).trace(key)
    if count_draws(traced.jaxpr) > MAX_COMPILED_DRAWS:
        return init(key)
    return traced.lower().compile()(key)


def check_finite(metrics: dict, epoch: int) -> None:
    """Raise FloatingPointError naming the first step whose metrics are NaN or Inf."""
    for name, values in metrics.items():
        values = np.asarray(values)
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise FloatingPointError(
                f"non-finite `{name}` ({values[bad[0]]}) at epoch {epoch}, step {bad[0]}; "
                "stopping instead of training through it (lower the learning rate?)"
            )


def map_tasks(fn: Callable[[Any], Any], tasks: Any, mode: str = "auto") -> Any:
    """`fn` over a task batch's leading axis, outputs stacked: `"vmap"` (one batched
    program), `"unroll"` (a Python loop inside the compiled program) or `"auto"` (unroll
    on CPU, see the module)."""
    if mode not in TASK_MAPS:
        raise ValueError(f"`task_map` must be one of {TASK_MAPS}; got {mode!r}")
    if mode == "auto":
        mode = "unroll" if on_cpu() else "vmap"
    if mode == "vmap":
        return jax.vmap(fn)(tasks)
    n = jax.tree.leaves(tasks)[0].shape[0]
    outs = [fn(jax.tree.map(lambda a, i=i: a[i], tasks)) for i in range(n)]
    return jax.tree.map(lambda *o: jnp.stack(o), *outs)


def eval_tasks_per_call(batch: int) -> int:
    """Tasks per compiled evaluation call: 1 on CPU (a lone task's inner loop can be
    unrolled within `UNROLL_BUDGET`), the whole `batch` elsewhere."""
    return 1 if on_cpu() else batch


def map_in_chunks(one: Callable[[jax.Array, Any], Any], items: Any, chunk: int) -> list[Any]:
    """`one(i, item)` for every item along `items`' leading axis, as host arrays: chunks of
    `chunk` through one compiled program (`lax.map` on CPU, `vmap` elsewhere), the last chunk
    padded so every call has one shape. Returns one output pytree per chunk, trimmed."""

    def many(ids: jax.Array, part: Any) -> Any:
        if on_cpu():
            return jax.lax.map(lambda a: one(*a), (ids, part))
        return jax.vmap(one)(ids, part)

    run = jax.jit(many)
    n = jax.tree.leaves(items)[0].shape[0]
    out = []
    for start in range(0, n, chunk):
        size = min(chunk, n - start)
        ids = jnp.arange(start, start + size)
        part = jax.tree.map(lambda a, s=start, z=size: jnp.asarray(a[s : s + z]), items)
        if size < chunk:  # pad the last chunk: one compiled shape
            pad = chunk - size
            ids = jnp.concatenate([ids, jnp.full((pad,), ids[-1])])
            part = jax.tree.map(lambda a, p=pad: jnp.concatenate([a, a[-1:].repeat(p, 0)]), part)
        out.append(jax.tree.map(lambda o, s=size: np.asarray(o)[:s], run(ids, part)))
    return out
