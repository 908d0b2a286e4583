"""The NAS-Bench-NLP recurrent cell space (Klyuchnikov et al., "NAS-Bench-NLP: Neural
Architecture Search Benchmark for Natural Language Processing", IEEE Access 2022).

A cell maps the input `x` and a tuple of 1-3 hidden states `h_prev_i` to new hidden states
`h_new_i` (`h_new_0` is also the cell's output) through a DAG of nodes, each one op:

- `linear`: one weight matrix per input, summed, and **one** bias (`MultiLinear`);
- `blend(a, b, c) = a * b + (1 - a) * c`, `elementwise_prod`, `elementwise_sum`;
- `activation_tanh`, `activation_sigm`, `activation_leaky_relu` (one input).

Architectures are fixed-shape integer arrays (`NBNLPArch`): `max_nodes` node slots in
topological order, each with an op code (0 = empty), up to 3 input ids (0 = `x`, `1 + i` =
`h_prev_i`, `1 + max_hidden + j` = node slot j, -1 = unused; order matters for `blend`),
and the node slot of every `h_new_i`. Nodes that feed no new hidden state are dead (as in
NB101, `prune` drops them; `compact` also moves the live nodes to the front).

`sample` is the benchmark's generator (`search_space.RecepieGenerator`) in JAX: 1-3
hidden states, 7 / 14 / 21 intermediate vertices, `linear` (weight 3, with 2 or 3 inputs
chosen 4:1 among `x`, the previous hidden states and earlier activations, followed by a
random activation) or `blend` / `elementwise_*` (weight 1 each, on anything but `x`),
the new hidden states chosen among the nodes, redundant nodes removed, and the
generator's sanity checks (every input used, no `h_prev` straight into an `h_new`).
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jnas._hash import mix32
from jnas.spaces._common import bad, check_int, concrete
from jnas.spaces._nb201 import AdjacencyEncoding

NBNLP_OPS = (
    "linear",
    "blend",
    "elementwise_prod",
    "elementwise_sum",
    "activation_tanh",
    "activation_sigm",
    "activation_leaky_relu",
)
# allowed numbers of inputs per op code (index 0 = empty slot)
_MIN_IN = np.array([0, 1, 3, 2, 2, 1, 1, 1], np.int32)
_MAX_IN = np.array([0, 3, 3, 2, 2, 1, 1, 1], np.int32)
_READS_X = np.array([False, True, False, False, False, True, True, True])  # blend/elementwise: no x
_ORDERED = np.array([0, 0, 1, 0, 0, 0, 0, 0], np.uint32)  # blend's inputs are positional
# the benchmark's hand-written cells (`RecepieGenerator.get_example_recepie`; recipes
# 1000000-1000002 of its WikiText-2 logs)
NBNLP_EXAMPLES = {
    "rnn": {
        "f": {"op": "linear", "input": ["x", "h_prev_0"]},
        "h_new_0": {"op": "activation_tanh", "input": ["f"]},
    },
    "lstm": {
        "i": {"op": "linear", "input": ["x", "h_prev_0"]},
        "i_act": {"op": "activation_tanh", "input": ["i"]},
        "j": {"op": "linear", "input": ["x", "h_prev_0"]},
        "j_act": {"op": "activation_sigm", "input": ["j"]},
        "f": {"op": "linear", "input": ["x", "h_prev_0"]},
        "f_act": {"op": "activation_sigm", "input": ["f"]},
        "o": {"op": "linear", "input": ["x", "h_prev_0"]},
        "o_act": {"op": "activation_tanh", "input": ["o"]},
        "h_new_1_part1": {"op": "elementwise_prod", "input": ["f_act", "h_prev_1"]},
        "h_new_1_part2": {"op": "elementwise_prod", "input": ["i_act", "j_act"]},
        "h_new_1": {"op": "elementwise_sum", "input": ["h_new_1_part1", "h_new_1_part2"]},
        "h_new_1_act": {"op": "activation_tanh", "input": ["h_new_1"]},
        "h_new_0": {"op": "elementwise_prod", "input": ["h_new_1_act", "o_act"]},
    },
    "gru": {
        "r": {"op": "linear", "input": ["x", "h_prev_0"]},
        "r_act": {"op": "activation_sigm", "input": ["r"]},
        "z": {"op": "linear", "input": ["x", "h_prev_0"]},
        "z_act": {"op": "activation_sigm", "input": ["z"]},
        "rh": {"op": "elementwise_prod", "input": ["r_act", "h_prev_0"]},
        "h_tilde": {"op": "linear", "input": ["x", "rh"]},
        "h_tilde_act": {"op": "activation_tanh", "input": ["h_tilde"]},
        "h_new_0": {"op": "blend", "input": ["z_act", "h_prev_0", "h_tilde_act"]},
    },
}
LINEAR, BLEND, PROD, SUM, TANH, SIGM, LEAKY = range(1, 8)
MAX_INPUTS = 3


class NBNLPArch(NamedTuple):
    """One NAS-Bench-NLP cell; a batch has a leading axis."""

    ops: jax.Array  # int8[N]: 0 = empty slot, else 1 + index into NBNLP_OPS
    inputs: jax.Array  # int8[N, 3]: input ids (0 x, 1+i h_prev_i, 1+H+j node j), -1 unused
    hidden: jax.Array  # int8[H]: node slot of h_new_i, -1 beyond the cell's tuple size


@dataclasses.dataclass(frozen=True)
class NBNLP:
    """The NAS-Bench-NLP space: up to `max_hidden` hidden states, `max_nodes` node slots.

    `hidden_sizes` and `intermediate` are the generator's choices (drawn uniformly);
    `max_nodes` must hold the largest graph the generator can make (hidden states +
    intermediate vertices + 1 for the activation a last `linear` brings).
    """

    max_nodes: int = 25
    max_hidden: int = 3
    hidden_sizes: tuple[int, ...] = (1, 2, 3)
    intermediate: tuple[int, ...] = (7, 14, 21)

    def __post_init__(self) -> None:
        where = "NBNLP"
        check_int(where, "max_hidden", self.max_hidden, 1, 8)
        check_int(where, "max_nodes", self.max_nodes, 2, 100)
        for name in ("hidden_sizes", "intermediate"):
            value = getattr(self, name)
            if not isinstance(value, tuple) or not value:
                raise bad(where, name, "a non-empty tuple of integers", value)
        if not all(1 <= h <= self.max_hidden for h in self.hidden_sizes):
            raise bad(where, "hidden_sizes", f"sizes in [1, {self.max_hidden}]", self.hidden_sizes)
        if not all(isinstance(i, int) and i >= 1 for i in self.intermediate):
            raise bad(where, "intermediate", "positive integers", self.intermediate)
        need = max(self.hidden_sizes) + max(self.intermediate) + 1
        if self.max_nodes < need:
            raise bad(
                where, "max_nodes", f">= {need} (the generator's largest graph)", self.max_nodes
            )

    # ------------------------------------------------------------------ basics
    @property
    def num_sources(self) -> int:
        """Ids before the node slots: `x` and `h_prev_0 .. h_prev_{max_hidden-1}`."""
        return 1 + self.max_hidden

    @property
    def num_ids(self) -> int:
        return self.num_sources + self.max_nodes

    @property
    def size(self) -> int:
        raise ValueError(
            "NBNLP.size: the space is not enumerable (graphs of up to "
            f"{self.max_nodes} nodes); search its table's cells with "
            "jnas.bench.restrict(load_nbnlp())"
        )

    def source_names(self) -> list[str]:
        return ["x"] + [f"h_prev_{i}" for i in range(self.max_hidden)]

    # ------------------------------------------------------------------ graph
    def _feeds(self, arch: NBNLPArch) -> jax.Array:
        """int32[num_ids, N]: 1 where id feeds node slot j."""
        ids = jnp.asarray(arch.inputs).astype(jnp.int32)
        onehot = (ids[:, :, None] == jnp.arange(self.num_ids)[None, None, :]) & (ids >= 0)[
            ..., None
        ]
        return jnp.any(onehot, axis=1).T.astype(jnp.int32)

    def live(self, arch: NBNLPArch) -> tuple[jax.Array, jax.Array]:
        """(bool[N] live node slots, bool[num_ids] ids read by a live node): a node is live
        if some new hidden state depends on it (jittable)."""
        feeds = self._feeds(arch)
        hidden = jnp.asarray(arch.hidden).astype(jnp.int32)
        live = jnp.any(
            (hidden[:, None] == jnp.arange(self.max_nodes)[None, :]) & (hidden >= 0)[:, None], 0
        )
        inner = feeds[self.num_sources :]
        live = jax.lax.fori_loop(  # a loop, not max_nodes unrolled matvecs
            0, self.max_nodes, lambda _, on: on | ((inner @ on.astype(jnp.int32)) > 0), live
        )
        live = live & (jnp.asarray(arch.ops) > 0)
        used = (feeds @ live.astype(jnp.int32)) > 0
        return live, used

    def tuple_size(self, arch: NBNLPArch) -> jax.Array:
        """int32[]: how many hidden states the cell carries."""
        return jnp.sum(jnp.asarray(arch.hidden) >= 0).astype(jnp.int32)

    def post_order(self, arch: NBNLPArch) -> jax.Array:
        """int32[N]: each slot's rank in the depth-first post-order from `h_new_0`,
        `h_new_1`, ... (inputs in their listed order); -1 for dead slots (jittable).
        `from_recipe` places nodes in this order, so it does not depend on node names."""
        n, s, h = self.max_nodes, self.num_sources, self.max_hidden
        ids = jnp.asarray(arch.inputs).astype(jnp.int32)
        hidden = jnp.asarray(arch.hidden).astype(jnp.int32)

        def step(_, c):
            stack, ptr, depth, seen, rank, count, root = c
            top = stack[jnp.maximum(depth - 1, 0)]
            p = ptr[jnp.maximum(depth - 1, 0)]
            t = ids[top, jnp.minimum(p, MAX_INPUTS - 1)]
            # depth 0: push the next unvisited new hidden state
            r = hidden[jnp.minimum(root, h - 1)]
            push_root = (depth == 0) & (root < h) & (r >= 0) & ~seen[jnp.clip(r, 0, n - 1)]
            # on the stack: look at the next input, push it if it is an unvisited node
            scan = (depth > 0) & (p < MAX_INPUTS)
            push_in = scan & (t >= s) & ~seen[jnp.clip(t - s, 0, n - 1)]
            pop = (depth > 0) & (p >= MAX_INPUTS)
            node = jnp.where(push_root, r, t - s)
            push = push_root | push_in
            ptr = ptr.at[jnp.maximum(depth - 1, 0)].add(scan.astype(jnp.int32))
            stack = stack.at[depth].set(jnp.where(push, node, stack[depth]))
            ptr = ptr.at[depth].set(jnp.where(push, 0, ptr[depth]))
            seen = seen.at[jnp.clip(node, 0, n - 1)].set(seen[jnp.clip(node, 0, n - 1)] | push)
            rank = rank.at[top].set(jnp.where(pop, count, rank[top]))
            count = count + pop.astype(jnp.int32)
            depth = depth + push.astype(jnp.int32) - pop.astype(jnp.int32)
            root = root + (depth == 0).astype(jnp.int32) * (~pop).astype(jnp.int32)
            return stack, ptr, depth, seen, rank, count, root

        init = (
            jnp.zeros(n + 1, jnp.int32),
            jnp.zeros(n + 1, jnp.int32),
            jnp.int32(0),
            jnp.zeros(n, bool),
            jnp.full(n, -1, jnp.int32),
            jnp.int32(0),
            jnp.int32(0),
        )
        rank = jax.lax.fori_loop(0, (MAX_INPUTS + 2) * n + 2 * h + 1, step, init)[4]
        return jnp.where(jnp.asarray(arch.ops) > 0, rank, -1)

    def compact(self, arch: NBNLPArch) -> NBNLPArch:
        """Dead nodes dropped, the live ones placed in `post_order`: the array form
        `from_recipe` gives, so `from_string(to_string(a)) == compact(a)` (jittable)."""
        n, s = self.max_nodes, self.num_sources
        rank = self.post_order(arch)
        live = rank >= 0
        order = jnp.argsort(jnp.where(live, rank, n))
        keep = jnp.arange(n) < jnp.sum(live)
        ids = jnp.asarray(arch.inputs).astype(jnp.int32)
        remapped = jnp.where(ids >= s, s + rank[jnp.clip(ids - s, 0, n - 1)], ids)
        inputs = jnp.where(keep[:, None], remapped[order], -1)
        ops = jnp.where(keep, jnp.asarray(arch.ops)[order], 0)
        hidden = jnp.asarray(arch.hidden).astype(jnp.int32)
        hidden = jnp.where(hidden >= 0, rank[jnp.clip(hidden, 0, n - 1)], -1)
        return NBNLPArch(ops.astype(jnp.int8), inputs.astype(jnp.int8), hidden.astype(jnp.int8))

    def is_valid(self, arch: NBNLPArch) -> jax.Array:
        """bool[]: ops and ids in range; inputs a prefix of the slot, distinct, each an
        earlier node, `x` or a carried `h_prev`; arities as the ops need; `blend` and the
        elementwise ops never read `x` (the generator's rule); hidden states a prefix of
        distinct non-empty slots; `x` and every carried `h_prev` read by a live node."""
        n, s = self.max_nodes, self.num_sources
        ops = jnp.asarray(arch.ops).astype(jnp.int32)
        ids = jnp.asarray(arch.inputs).astype(jnp.int32)
        hidden = jnp.asarray(arch.hidden).astype(jnp.int32)
        ops_ok = jnp.all((ops >= 0) & (ops <= len(NBNLP_OPS)))
        opc = jnp.clip(ops, 0, len(NBNLP_OPS))
        present = ids >= 0
        count = jnp.sum(present, axis=1)
        prefix = jnp.all(present[:, 1:] <= present[:, :-1], axis=1)
        arity = (count >= jnp.asarray(_MIN_IN)[opc]) & (count <= jnp.asarray(_MAX_IN)[opc])
        slot = jnp.arange(n)[:, None]
        size = jnp.sum(hidden >= 0)
        is_node = ids >= s
        node_ok = jnp.where(
            is_node, (ids - s < slot) & (ops[jnp.clip(ids - s, 0, n - 1)] > 0), True
        )
        prev_ok = jnp.where((ids >= 1) & (ids < s), ids - 1 < size, True)
        x_ok = jnp.where(ids == 0, jnp.asarray(_READS_X)[opc][:, None], True)
        in_range = jnp.all((ids >= -1) & (ids < self.num_ids))
        a, b = ids[:, :, None], ids[:, None, :]
        distinct = ~jnp.any((a == b) & (a >= 0) & ~jnp.eye(MAX_INPUTS, dtype=bool)[None])
        inputs_ok = (
            in_range
            & distinct
            & jnp.all(prefix & arity)
            & jnp.all((node_ok & prev_ok & x_ok) | ~present)
        )
        h_prefix = jnp.all((hidden[1:] >= 0) <= (hidden[:-1] >= 0))
        h_range = jnp.all((hidden >= -1) & (hidden < n)) & (size >= 1)
        h_filled = jnp.all(jnp.where(hidden >= 0, ops[jnp.clip(hidden, 0, n - 1)] > 0, True))
        hh = hidden[:, None] == hidden[None, :]
        h_distinct = ~jnp.any(hh & (hidden[:, None] >= 0) & ~jnp.eye(self.max_hidden, dtype=bool))
        _, used = self.live(arch)
        sources_used = jnp.all(jnp.where(jnp.arange(s) <= size, used[:s], True))
        return ops_ok & inputs_ok & h_prefix & h_range & h_filled & h_distinct & sources_used

    # ---------------------------------------------------------------- sampling
    def _draw(self, key: jax.Array, size: jax.Array, budget: jax.Array) -> NBNLPArch:
        """One run of the benchmark's generator (`size` hidden states, nodes added until
        `budget`) before its sanity check."""
        n, s = self.max_nodes, self.num_sources
        k_loop, k_hid = jax.random.split(key)
        src = jnp.arange(s)
        prev_ok = (src >= 1) & (src - 1 < size)

        def pick(key, mask, k):
            """k distinct ids among `mask` in random order (`np.random.choice(replace=False)`)."""
            g = jax.random.gumbel(key, mask.shape) + jnp.where(mask, 0.0, -jnp.inf)
            order = jnp.argsort(-g)[:MAX_INPUTS]
            return jnp.where(jnp.arange(MAX_INPUTS) < k, order, -1)

        def body(carry):
            key, i, ops, inputs, is_act = carry
            key, k_op, k_n, k_in, k_act = jax.random.split(key, 5)
            op = jax.random.choice(k_op, 4, p=jnp.array([3.0, 1.0, 1.0, 1.0]) / 6.0) + 1
            filled = jnp.arange(n) < i
            # linear: 2 or 3 inputs (4:1) among x, the carried h_prev and activations
            lin_mask = jnp.concatenate([(src == 0) | prev_ok, is_act & filled])
            k_lin = jnp.minimum(jnp.where(jax.random.uniform(k_n) < 0.8, 2, 3), jnp.sum(lin_mask))
            # blend (3 inputs) / elementwise (2): the carried h_prev and any node, never x
            el_mask = jnp.concatenate([prev_ok, filled])
            k_el = jnp.where(op == BLEND, 3, 2)
            is_lin = op == LINEAR
            chosen = jnp.where(is_lin, pick(k_in, lin_mask, k_lin), pick(k_in, el_mask, k_el))
            placed = is_lin | (k_el <= jnp.sum(el_mask))
            row = jnp.where(placed, chosen, -1).astype(jnp.int8)
            at = jnp.minimum(i, n - 1)
            ops = ops.at[at].set(jnp.where(placed, op, ops[at]).astype(jnp.int8))
            inputs = inputs.at[at].set(jnp.where(placed, row, inputs[at]))
            act = jax.random.randint(k_act, (), TANH, LEAKY + 1)
            nxt = jnp.minimum(i + 1, n - 1)
            ops = ops.at[nxt].set(jnp.where(is_lin, act, ops[nxt]).astype(jnp.int8))
            act_row = jnp.full((MAX_INPUTS,), -1, jnp.int32).at[0].set(s + i)
            inputs = inputs.at[nxt].set(jnp.where(is_lin, act_row.astype(jnp.int8), inputs[nxt]))
            is_act = is_act.at[nxt].set(is_act[nxt] | is_lin)
            i = i + jnp.where(is_lin, 2, placed.astype(jnp.int32))
            return key, i, ops, inputs, is_act

        init = (
            k_loop,
            jnp.int32(0),
            jnp.zeros(n, jnp.int8),
            jnp.full((n, MAX_INPUTS), -1, jnp.int8),
            jnp.zeros(n, bool),
        )
        _, count, ops, inputs, _ = jax.lax.while_loop(lambda c: c[1] < budget, body, init)
        filled = jnp.arange(n) < count
        g = jax.random.gumbel(k_hid, (n,)) + jnp.where(filled, 0.0, -jnp.inf)
        chosen = jnp.argsort(-g)[: self.max_hidden]
        hidden = jnp.where(jnp.arange(self.max_hidden) < size, chosen, -1).astype(jnp.int8)
        return NBNLPArch(ops, inputs, hidden)

    def generator_ok(self, arch: NBNLPArch) -> jax.Array:
        """bool[]: the generator's sanity checks: valid, and no `h_prev` read directly by
        a node computing a new hidden state."""
        hidden = jnp.asarray(arch.hidden).astype(jnp.int32)
        rows = jnp.asarray(arch.inputs).astype(jnp.int32)[jnp.clip(hidden, 0, self.max_nodes - 1)]
        direct = jnp.any((rows >= 1) & (rows < self.num_sources) & (hidden >= 0)[:, None])
        return self.is_valid(arch) & ~direct

    def sample(self, key: jax.Array) -> NBNLPArch:
        """A cell as the benchmark's generator makes it: the number of hidden states and
        of intermediate vertices drawn uniformly, then graphs of that configuration
        redrawn until one passes the generator's sanity checks (as its authors generated
        each configuration), then compacted (jittable)."""
        k_h, k_i, key, sub = jax.random.split(key, 4)
        sizes, inter = jnp.asarray(self.hidden_sizes), jnp.asarray(self.intermediate)
        size = sizes[jax.random.randint(k_h, (), 0, len(self.hidden_sizes))]
        budget = size + inter[jax.random.randint(k_i, (), 0, len(self.intermediate))]

        def body(carry):
            key, _ = carry
            key, sub = jax.random.split(key)
            return key, self._draw(sub, size, budget)

        first = (key, self._draw(sub, size, budget))
        arch = jax.lax.while_loop(lambda c: ~self.generator_ok(c[1]), body, first)[1]
        return self.compact(arch)

    # -------------------------------------------------------------- neighbours
    def neighbors(self, arch: NBNLPArch) -> tuple[NBNLPArch, jax.Array]:
        """Every single edit and whether it is valid: one node's op changed (to any op of
        a compatible arity), one input rewired to another id, or one new hidden state
        moved to another node. Candidates are compacted (dead nodes dropped)."""
        edits = jnp.arange(len(self._edit_table()[0]))
        batch = jax.vmap(self._apply_edit, (None, 0))(arch, edits)
        ok = jax.vmap(self.is_valid)(batch) & self._changes(arch)
        return jax.vmap(self.compact)(batch), ok

    def _edit_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(kind, slot, position, value) of every single edit, `neighbors`' order: op
        changes (kind 0: slot j gets op o), rewires (1: input p of slot j reads id t),
        hidden moves (2: `h_new_p` moves to slot j). 2,425 at the benchmark's sizes."""
        n, h, v, k = self.max_nodes, self.max_hidden, self.num_ids, len(NBNLP_OPS)
        j_in, p_in, t_in = (
            a.reshape(-1)
            for a in np.meshgrid(np.arange(n), np.arange(MAX_INPUTS), np.arange(v), indexing="ij")
        )
        i_h, j_h = (a.reshape(-1) for a in np.meshgrid(np.arange(h), np.arange(n), indexing="ij"))
        kind = np.concatenate([np.full(n * k, 0), np.full(len(j_in), 1), np.full(len(i_h), 2)])
        slot = np.concatenate([np.repeat(np.arange(n), k), j_in, j_h])
        pos = np.concatenate([np.zeros(n * k, np.int64), p_in, i_h])
        value = np.concatenate([np.tile(np.arange(1, k + 1), n), t_in, j_h])
        return kind.astype(np.int32), slot.astype(np.int32), pos.astype(np.int32), value

    def _changes(self, arch: NBNLPArch) -> jax.Array:
        """bool[edits]: whether each edit of `_edit_table` changes the cell (an op of a live
        slot, a used input, a placed hidden state, set to another value)."""
        kind, slot, pos, value = self._edit_table()
        ops, ids = jnp.asarray(arch.ops), jnp.asarray(arch.inputs)
        hid = jnp.asarray(arch.hidden)
        h = self.max_hidden
        now = jnp.select(
            [kind == 0, kind == 1],
            [ops[slot], ids[slot, np.minimum(pos, MAX_INPUTS - 1)]],
            hid[np.minimum(pos, h - 1)],
        ).astype(jnp.int32)
        placed = jnp.where(kind == 0, now > 0, now >= 0)
        return placed & (now != value)

    def _apply_edit(self, arch: NBNLPArch, edit: jax.Array) -> NBNLPArch:
        """The cell with edit number `edit` of `_edit_table` made (not compacted)."""
        kind, slot, pos, value = (jnp.asarray(a)[edit] for a in self._edit_table())
        new = value.astype(jnp.int8)
        ops, ids = jnp.asarray(arch.ops), jnp.asarray(arch.inputs)
        hid = jnp.asarray(arch.hidden)
        p_in = jnp.minimum(pos, MAX_INPUTS - 1)
        p_h = jnp.minimum(pos, self.max_hidden - 1)
        return NBNLPArch(
            jnp.where(kind == 0, ops.at[slot].set(new), ops),
            jnp.where(kind == 1, ids.at[slot, p_in].set(new), ids),
            jnp.where(kind == 2, hid.at[p_h].set(new), hid),
        )

    def mutate(self, key: jax.Array, arch: NBNLPArch) -> NBNLPArch:
        """One valid single edit, uniform among them, compacted (the cell itself, compacted,
        in the rare case that it has none: every edit would break a rule).

        The draw is `random_choice_masked` over `neighbors`' validity, a Gumbel argmax:
        the valid edit with the largest noise. Only a few percent of the 2,425 edits are
        valid, so the edits are checked one at a time in descending noise and the first
        valid one is taken: the same edit for the same key, without checking (and
        compacting) all of them (64 mutations on one CPU core: 4.5 s -> 0.05 s)."""
        changes = self._changes(arch)
        m = changes.shape[0]
        noise = jnp.where(changes, jax.random.gumbel(key, (m,)), -jnp.inf)
        order = jnp.argsort(-noise)  # stable: ties as argmax breaks them, lowest first
        count = jnp.sum(changes)  # the changing edits come first in that order

        def valid(t: jax.Array | int) -> jax.Array:
            edit = order[jnp.minimum(t, m - 1)]
            return (t < count) & self.is_valid(self._apply_edit(arch, edit))

        def more(carry: tuple) -> jax.Array:
            t, ok = carry
            return (t < count) & ~ok

        t, ok = jax.lax.while_loop(more, lambda c: (c[0] + 1, valid(c[0] + 1)), (0, valid(0)))
        child = self._apply_edit(arch, order[jnp.minimum(t, m - 1)])
        return self.compact(jax.tree.map(lambda a, b: jnp.where(ok, a, b), child, arch))

    # ---------------------------------------------------------------- hashing
    def fingerprint(self, arch: NBNLPArch) -> jax.Array:
        """uint32[2]: a jittable graph-invariant key of the live cell (Weisfeiler-Lehman
        refinement with integer mixing, `blend`'s inputs by position, the others as
        multisets; the new hidden states by index). Equal for isomorphic cells, so a table
        finds its cells whatever their node names or order."""
        n, s = self.max_nodes, self.num_sources
        u32 = jnp.uint32
        live, used = self.live(arch)
        ops = jnp.asarray(arch.ops).astype(jnp.int32)
        ids = jnp.asarray(arch.inputs).astype(jnp.int32)
        hidden = jnp.asarray(arch.hidden).astype(jnp.int32)
        role = jnp.zeros(n, jnp.uint32)
        for i in range(self.max_hidden):
            at = jnp.arange(n) == hidden[i]
            role = jnp.where(at & (hidden[i] >= 0), u32(i + 1), role)
        node_label = (ops.astype(u32) + u32(16) * role) * u32(2654435761)
        src_label = (jnp.arange(s, dtype=u32) + u32(100)) * u32(2246822519)
        labels = jnp.concatenate([src_label, node_label])
        alive = jnp.concatenate([used[:s], live])
        pos = jnp.where(
            jnp.asarray(_ORDERED)[jnp.clip(ops, 0, 7)][:, None] > 0, jnp.arange(1, 4), 0
        )
        present = (ids >= 0) & live[:, None]
        keys = []
        for salt in (0x9E3779B9, 0x85EBCA77):

            def refine(_, hsh, salt=salt):
                g = mix32(hsh + u32(salt))
                src = g[jnp.clip(ids, 0, self.num_ids - 1)]
                msg = jnp.where(present, mix32(src + pos.astype(u32) * u32(0x27D4EB2F)), u32(0))
                into = jnp.concatenate([jnp.zeros(s, u32), jnp.sum(msg, axis=1, dtype=u32)])
                back = jnp.where(present, mix32(g[s:] + u32(0x165667B1))[:, None], u32(0))
                out = (
                    jnp.zeros(self.num_ids, u32)
                    .at[jnp.clip(ids, 0, self.num_ids - 1)]
                    .add(jnp.where(present, back + pos.astype(u32), u32(0)))
                )
                return mix32(
                    hsh * u32(0xCC9E2D51) + mix32(into ^ u32(0x1B873593)) + mix32(out) * u32(3)
                )

            hsh = jax.lax.fori_loop(0, n + 1, refine, mix32(labels + u32(salt)))
            keys.append(jnp.sum(jnp.where(alive, mix32(hsh), u32(0)), dtype=u32))
        return jnp.stack(keys)

    # ---------------------------------------------------------------- strings
    def recipe(self, arch: NBNLPArch) -> dict[str, dict[str, Any]]:
        """The benchmark's recipe dict of the live cell: hidden nodes `h_new_i`, the
        others `node_<slot>` (slots after `compact`)."""
        self.validate(arch)
        ops, ids, hidden = (np.asarray(a).astype(np.int64) for a in arch)
        s = self.num_sources
        rank: dict[int, int] = {}  # `post_order` on the host

        def visit(j: int) -> None:
            if j in rank:
                return
            for t in ids[j].tolist():
                if t >= s:
                    visit(t - s)
            rank[j] = len(rank)

        for j in hidden.tolist():
            if j >= 0:
                visit(j)
        names = {int(j): f"h_new_{i}" for i, j in enumerate(hidden.tolist()) if j >= 0}
        id_names = self.source_names() + [
            names.get(j, f"node_{rank.get(j)}") for j in range(self.max_nodes)
        ]
        return {
            id_names[s + j]: {
                "input": [id_names[t] for t in ids[j].tolist() if t >= 0],
                "op": NBNLP_OPS[ops[j] - 1],
            }
            for j in sorted(rank, key=rank.__getitem__)
        }

    def to_string(self, arch: NBNLPArch) -> str:
        """The recipe as the benchmark's JSON (keys sorted)."""
        return json.dumps(self.recipe(arch), sort_keys=True)

    def from_string(self, string: str) -> NBNLPArch:
        """Parse a recipe (JSON, the benchmark's form; any node names)."""
        where = "NBNLP.from_string"
        if not isinstance(string, str):
            raise bad(where, "string", "a JSON recipe str", type(string).__name__)
        try:
            recipe = json.loads(string)
        except json.JSONDecodeError as err:
            raise bad(where, "string", "a JSON recipe", string[:80]) from err
        return self.from_recipe(recipe)

    def from_recipe(self, recipe: dict[str, Any]) -> NBNLPArch:
        """An arch from a recipe dict `{node: {"op": ..., "input": [...]}}`. Nodes are
        placed in depth-first post-order from `h_new_0`, `h_new_1`, ... (inputs in their
        listed order), so the placement depends on the graph, not on the names; nodes no
        hidden state depends on are dropped."""
        arrays = self.recipe_arrays(recipe)
        return NBNLPArch(*(jnp.asarray(a) for a in arrays))

    def recipe_arrays(
        self, recipe: dict[str, Any], *, where: str = "NBNLP.from_recipe"
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """`from_recipe` on the host: (int8[N] ops, int8[N, 3] inputs, int8[H] hidden)."""
        if not isinstance(recipe, dict) or not recipe:
            raise bad(where, "recipe", "a non-empty dict of nodes", type(recipe).__name__)
        for name, node in recipe.items():
            if (
                not isinstance(node, dict)
                or node.get("op") not in NBNLP_OPS
                or not isinstance(node.get("input"), list)
            ):
                raise bad(
                    where,
                    f"recipe[{name!r}]",
                    f"{{'op': one of {NBNLP_OPS}, 'input': [...]}}",
                    node,
                )
        numbered = sorted(int(k[6:]) for k in recipe if k.startswith("h_new_") and k[6:].isdigit())
        if not numbered or numbered != list(range(len(numbered))):
            raise bad(
                where, "recipe", "new hidden states h_new_0, h_new_1, ... (contiguous)", numbered
            )
        size = len(numbered)
        if size > self.max_hidden:
            raise bad(where, "recipe", f"at most {self.max_hidden} hidden states", size)
        sources = {name: i for i, name in enumerate(self.source_names()[: 1 + size])}
        order: list[str] = []
        state: dict[str, int] = {}  # 1 = on the stack, 2 = placed

        def visit(name: str) -> None:
            if name in sources or state.get(name) == 2:
                return
            if state.get(name) == 1:
                raise bad(where, "recipe", "an acyclic graph", f"a cycle through {name!r}")
            if name not in recipe:
                raise bad(
                    where, "recipe", f"inputs among x, h_prev_0..{size - 1} and its nodes", name
                )
            state[name] = 1
            for parent in recipe[name]["input"]:
                visit(parent)
            state[name] = 2
            order.append(name)

        for i in range(size):
            visit(f"h_new_{i}")
        if len(order) > self.max_nodes:
            raise bad(where, "recipe", f"at most {self.max_nodes} live nodes", len(order))
        slot = {name: j for j, name in enumerate(order)}
        ops = np.zeros(self.max_nodes, np.int8)
        ids = np.full((self.max_nodes, MAX_INPUTS), -1, np.int8)
        for j, name in enumerate(order):
            node = recipe[name]
            if len(node["input"]) > MAX_INPUTS:
                raise bad(where, f"recipe[{name!r}]", f"at most {MAX_INPUTS} inputs", node["input"])
            ops[j] = NBNLP_OPS.index(node["op"]) + 1
            for p, parent in enumerate(node["input"]):
                ids[j, p] = (
                    sources[parent] if parent in sources else self.num_sources + slot[parent]
                )
        hidden = np.full(self.max_hidden, -1, np.int8)
        hidden[:size] = [slot[f"h_new_{i}"] for i in range(size)]
        self._check_host(where, ops, ids, hidden)
        return ops, ids, hidden

    def validate(self, arch: Any) -> None:
        """Raise `ValueError` naming what is wrong with `arch` (Python side)."""
        where = "NBNLP.validate"
        if not isinstance(arch, NBNLPArch):
            raise bad(where, "arch", "an NBNLPArch", type(arch).__name__)
        self._check_host(
            where,
            concrete(where, "arch.ops", arch.ops, (self.max_nodes,)),
            concrete(where, "arch.inputs", arch.inputs, (self.max_nodes, MAX_INPUTS)),
            concrete(where, "arch.hidden", arch.hidden, (self.max_hidden,)),
        )

    def _check_host(self, where: str, ops: np.ndarray, ids: np.ndarray, hidden: np.ndarray) -> None:
        s, n = self.num_sources, self.max_nodes
        ops, ids, hidden = (np.asarray(a).astype(np.int64) for a in (ops, ids, hidden))
        if ops.min() < 0 or ops.max() > len(NBNLP_OPS):
            raise bad(where, "arch.ops", f"op codes in [0, {len(NBNLP_OPS)}]", ops.tolist())
        size = int(np.sum(hidden >= 0))
        if size < 1 or np.any(hidden[:size] < 0) or np.any(hidden >= n):
            raise bad(
                where,
                "arch.hidden",
                f"node slots for h_new_0.. first, -1 after (< {n})",
                hidden.tolist(),
            )
        if len(set(hidden[:size].tolist())) != size or np.any(ops[hidden[:size]] == 0):
            raise bad(where, "arch.hidden", "distinct, non-empty node slots", hidden.tolist())
        names = self.source_names()
        for j in range(n):
            row = ids[j]
            k = int(np.sum(row >= 0))
            if np.any(row[:k] < 0) or np.any(row[k:] >= 0) or np.any(row >= self.num_ids):
                raise bad(where, f"arch.inputs[{j}]", "input ids first, then -1", row.tolist())
            if ops[j] == 0:
                if k:
                    raise bad(
                        where, f"arch.inputs[{j}]", "no inputs for an empty slot", row.tolist()
                    )
                continue
            op = NBNLP_OPS[ops[j] - 1]
            if not _MIN_IN[ops[j]] <= k <= _MAX_IN[ops[j]]:
                span = f"{_MIN_IN[ops[j]]}..{_MAX_IN[ops[j]]}"
                raise bad(where, f"arch.inputs[{j}]", f"{span} inputs for {op}", row.tolist())
            if len(set(row[:k].tolist())) != k:
                raise bad(where, f"arch.inputs[{j}]", "distinct inputs", row.tolist())
            for t in row[:k].tolist():
                if t == 0 and not _READS_X[ops[j]]:
                    raise bad(where, f"arch.inputs[{j}]", f"no `x` input for {op}", row.tolist())
                if 1 <= t < s and t - 1 >= size:
                    raise bad(where, f"arch.inputs[{j}]", f"h_prev_i with i < {size}", names[t])
                if t >= s and (t - s >= j or ops[t - s] == 0):
                    raise bad(where, f"arch.inputs[{j}]", "earlier, non-empty nodes", row.tolist())
        live = np.isin(np.arange(n), hidden[:size])  # `live` on the host
        for _ in range(n):
            for j in np.flatnonzero(live):
                live[ids[j][ids[j] >= s] - s] = True
        used = np.zeros(self.num_ids, bool)
        for j in np.flatnonzero(live):
            used[ids[j][ids[j] >= 0]] = True
        unused = [names[i] for i in range(1 + size) if not bool(used[i])]
        if unused:
            raise bad(
                where, "arch", "a cell that reads x and every h_prev it carries", f"{unused} unused"
            )

    # -------------------------------------------------------------- encodings
    def one_hot(self, arch: NBNLPArch) -> jax.Array:
        """float32: per slot the op one-hot (8), each input's id one-hot (ids + unused),
        each new hidden state's slot one-hot (slots + absent); of the compacted cell."""
        arch = self.compact(arch)
        k = len(NBNLP_OPS) + 1
        ops = jax.nn.one_hot(arch.ops.astype(jnp.int32), k).reshape(-1)
        ids = jax.nn.one_hot(arch.inputs.astype(jnp.int32) + 1, self.num_ids + 1).reshape(-1)
        hid = jax.nn.one_hot(arch.hidden.astype(jnp.int32) + 1, self.max_nodes + 1).reshape(-1)
        return jnp.concatenate([ops, ids, hid]).astype(jnp.float32)

    def adjacency(self, arch: NBNLPArch) -> AdjacencyEncoding:
        """The live cell as a labelled DAG over `x`, `h_prev_*`, the node slots and one
        output node per `h_new_i`; labels: op code - 1 for nodes, 7 + id for the sources,
        7 + num_sources + i for `h_new_i`. Dead nodes have no edges."""
        n, s, h = self.max_nodes, self.num_sources, self.max_hidden
        live, _ = self.live(arch)
        feeds = self._feeds(arch) * live[None, :].astype(jnp.int32)  # [ids, N]
        v = s + n + h
        m = (
            jnp.zeros((v, v), jnp.int8)
            .at[:, s : s + n]
            .set(jnp.concatenate([feeds, jnp.zeros((h, n), jnp.int32)]).astype(jnp.int8))
        )
        hidden = jnp.asarray(arch.hidden).astype(jnp.int32)
        out = (jnp.arange(n)[:, None] == hidden[None, :]) & (hidden >= 0)[None, :]
        m = m.at[s : s + n, s + n :].set(out.astype(jnp.int8))
        k = len(NBNLP_OPS)
        labels = jnp.concatenate(
            [
                jnp.arange(s) + k,
                jnp.asarray(arch.ops).astype(jnp.int32) - 1,
                jnp.arange(h) + k + s,
            ]
        )
        return AdjacencyEncoding(m, labels.astype(jnp.int8))

    def build(self, arch: NBNLPArch, **config: Any) -> Any:
        """The language model of the cell (`jnas.nn.RecurrentLM`; see its arguments)."""
        from jnas.nn import RecurrentLM

        return RecurrentLM(self.recipe(arch), **config)
