"""A DARTS recurrent-cell search and the found cell's training, on CPU in minutes (#20).

    python experiments/darts_rnn_search.py --out benchmarks/results

The corpus is the Python standard library's sources, character level
(`jnas.data.python_corpus`; PTB / WikiText need a download). A one-shot method (DARTS-V1
by default) searches the 8-node cell with a small model (emsize = nhid = 64); the derived
cell, DARTS-V2's published cell and random cells are then each trained from scratch the
same way (`jnas.train.train_lm`) and their test perplexities reported. Writes
`darts_rnn_search.json`. Scaled far down from DARTS' PTB runs (850 units, days of GPU):
a smoke test of the whole path with real text, not a reproduction.
"""

from __future__ import annotations

import argparse
import functools
import json
import pathlib
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jnas import oneshot
from jnas.data import bptt_batches, python_corpus
from jnas.spaces import DARTSRecurrent
from jnas.train import train_lm

DARTS_V2 = (
    "Genotype(recurrent=[('sigmoid', 0), ('relu', 1), ('relu', 1), ('identity', 1), "
    "('tanh', 2), ('sigmoid', 5), ('tanh', 3), ('relu', 5)], concat=range(1, 9))"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--method", default="darts-v1", choices=list(oneshot.REGISTRY))
    parser.add_argument("--chars", type=int, default=400_000)
    parser.add_argument("--units", type=int, default=64)
    parser.add_argument("--search-steps", type=int, default=300)
    parser.add_argument("--train-epochs", type=int, default=3)
    parser.add_argument("--random-cells", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    space = DARTSRecurrent()
    corpus = python_corpus(args.chars)
    size = {"emsize": args.units, "nhid": args.units}
    x, y = (jnp.asarray(a) for a in bptt_batches(corpus.train, 16, 35))
    half = x.shape[0] // 2  # DARTS: the training data split in two, weights / α
    start = time.perf_counter()
    method = oneshot.REGISTRY[args.method].make(
        space,
        epochs=1,
        steps_per_epoch=args.search_steps,
        vocab_size=len(corpus.vocab),
        w_lr=3e-3,
        w_optimizer=optax.chain(optax.clip_by_global_norm(0.25), optax.adam(3e-3)),
        alpha_optimizer=optax.adam(3e-3),
        **size,
    )
    key = jax.random.key(args.seed)
    state = method.init(key)
    step = oneshot.jit_step(method)  # with its CPU compiler options
    losses = []
    for i in range(args.search_steps):
        j = i % half
        state, metrics = step(
            jax.random.fold_in(key, i), state, (x[j], y[j]), (x[half + j], y[half + j])
        )
        losses.append(float(metrics["w_loss"]))
    found = method.derive(state, jax.random.fold_in(key, 999_999), (x[half], y[half]))
    search_s = time.perf_counter() - start
    print(f"{args.method}: {space.to_string(found)} ({search_s:.0f} s)", flush=True)
    cells = {"found": found, "DARTS-V2 (published)": space.from_string(DARTS_V2)}
    for r in range(args.random_cells):
        cells[f"random {r}"] = space.sample(jax.random.fold_in(key, 1000 + r))
    trained = {}
    for name, arch in cells.items():
        t = time.perf_counter()
        run = train_lm(
            jax.random.fold_in(key, 7),
            functools.partial(space.build, arch),
            corpus,
            epochs=args.train_epochs,
            batch_size=16,
            bptt=35,
            alpha=0.0,
            beta=1e-3,
            dropout=0.2,
            dropouth=0.1,
            dropoutx=0.1,
            dropouti=0.1,
            dropoute=0.0,
            **size,
        )
        trained[name] = {
            "genotype": space.to_string(arch),
            "valid_ppl": [round(float(v), 3) for v in run.valid_ppl],
            "test_ppl": round(run.test_ppl, 3),
            "train_s": round(time.perf_counter() - t, 1),
        }
        print(f"{name}: test perplexity {run.test_ppl:.2f} ({trained[name]['train_s']} s)")
    counts = np.bincount(corpus.train, minlength=len(corpus.vocab)) + 1.0
    unigram = float(np.exp(-np.mean(np.log(counts / counts.sum())[corpus.test])))
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "corpus": corpus.source,
        "vocab": len(corpus.vocab),
        "tokens": {
            "train": len(corpus.train),
            "valid": len(corpus.valid),
            "test": len(corpus.test),
        },
        "method": args.method,
        "units": args.units,
        "search_steps": args.search_steps,
        "search_s": round(search_s, 1),
        "search_w_loss_first_last": [losses[0], float(np.mean(losses[-20:]))],
        "alpha_softmax": np.round(np.asarray(jax.nn.softmax(state.alpha, -1)), 3).tolist()
        if hasattr(state, "alpha")
        else None,
        "unigram_test_ppl": round(unigram, 3),
        "cells": trained,
        "device": jax.devices()[0].platform,
    }
    (out / "darts_rnn_search.json").write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "alpha_softmax"}, indent=2))


if __name__ == "__main__":
    main()
