"""Conditional and latent neural processes against MAML on sinusoid regression (#19 §4).

    python experiments/np_sinusoid.py --steps 20000 --out benchmarks/results

K = 5 and 10 context (support) points, 10 query points, meta-batch 25, 600 test tasks.
MAML: Finn et al.'s 1-40-40-1 ReLU MLP, one inner SGD step (lr 0.01), Adam 1e-3. CNP:
Garnelo et al.'s encoder and decoder of three 128-unit layers, Adam 1e-4 (the paper's)
and 1e-3. Latent NP (Garnelo et al. 2018b): the same encoder into a 128-d Gaussian latent,
trained on the ELBO, alone and with the CNP's deterministic path beside it (Kim et al.
2019's NP), its log-likelihood a 32-draw estimate of log p(y | context). Reported: query MSE (mean, 95% CI) and the predictive log-likelihood per point;
MAML predicts a point, so its log-likelihood is that of the best constant-variance Gaussian
around its prediction (variance = its test MSE), a bound in MAML's favour. Writes
`np_sinusoid.json`.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import time

import jax
import numpy as np
import optax

from jnas import meta


def _train(learner, sample, steps: int, batch: int, key: jax.Array):
    def one(state, k):
        state, metrics = learner.step(state, meta.task_batch(sample, k, batch))
        return state, metrics["loss"]

    run = jax.jit(lambda s, ks: jax.lax.scan(one, s, ks))
    k_init, k_run = jax.random.split(key)
    state, _ = run(learner.init(k_init), jax.random.split(k_run, steps))
    return state


def _ci(v: np.ndarray) -> dict:
    return {"mean": float(v.mean()), "ci95": float(1.96 * v.std() / np.sqrt(len(v)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20000)
    parser.add_argument("--meta-batch", type=int, default=25)
    parser.add_argument("--test-tasks", type=int, default=600)
    parser.add_argument("--out", default="benchmarks/results")
    args = parser.parse_args()
    rows = []
    for shots in (5, 10):
        sample = meta.sinusoid(shots, 10)
        tasks = meta.task_batch(sample, jax.random.key(10_000), args.test_tasks)
        learners = {
            "maml": meta.maml(
                meta.mlp(), loss="mse", inner_lr=0.01, inner_steps=1, task_map="vmap"
            ),
            "cnp (Adam 1e-4)": meta.cnp(1, 1),
            "cnp (Adam 1e-3)": meta.cnp(1, 1, optimizer=optax.adam(1e-3)),
            "latent np (Adam 1e-3)": meta.lnp(1, 1, optimizer=optax.adam(1e-3)),
            "latent np + deterministic path (Adam 1e-3)": meta.lnp(
                1, 1, deterministic=True, optimizer=optax.adam(1e-3)
            ),
        }
        for name, learner in learners.items():
            start = time.perf_counter()
            state = _train(learner, sample, args.steps, args.meta_batch, jax.random.key(0))
            seconds = time.perf_counter() - start
            out = jax.jit(learner.evaluate)(state.params, tasks)
            mse = np.asarray(out["metric_after"])
            if name == "maml":
                ll = -0.5 * np.log(2 * np.pi * mse.mean()) - 0.5 + 0 * mse
            else:
                ll = -np.asarray(out["loss_after"])
            rows.append(
                {
                    "method": name,
                    "shots": shots,
                    "mse": _ci(mse),
                    "log_likelihood": _ci(ll),
                    "train_seconds": round(seconds, 1),
                }
            )
            print(rows[-1], flush=True)
    result = {"steps": args.steps, "meta_batch": args.meta_batch, "rows": rows}
    result["device"] = jax.default_backend()
    out = pathlib.Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "np_sinusoid.json").write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
