"""Run recipes and paper presets the CLI, the experiments and the benchmarks share: data
sources, methods with their papers' settings, whole runs that write records, checkpoints,
plots and a summary. The CLI (`jnas.commands`) only parses flags and prints.

- `jnas.recipes.oneshot`: `run_oneshot`, `load_nb201_if_present`
- `jnas.recipes.meta`: `task_sources`, `make_learner`, `run_meta`, `METHODS`, `DATASETS`
- `jnas.recipes.train`: `run_train`
- `jnas.recipes.transfer`: `run_warm_start` (a leave-one-dataset-out rotation),
  `run_latency` (HELP on the latency tables)
- `jnas.recipes.load`: `load(run_dir)`, a run command's result rebuilt to use it (also
  `jnas.load`)
"""
