"""jnas: JAX-native, functional neural architecture search."""

from jnas import _huge_pages

_huge_pages.reexec_command()  # the `jnas` command only, before JAX loads (see the module)

from jnas import _memory, nn, spaces  # noqa: E402

_memory.install_from_environment()

__version__ = "0.1.0"
__all__ = ["load", "nn", "spaces"]


def load(run_dir):
    """The run in `run_dir` (written by `jnas meta|oneshot|search|train`) rebuilt to use:
    a `jnas.recipes.load.LoadedRun` with the learner / method / searcher / trained network,
    its latest state, records and summary (`predict`, `logits`, `arch`)."""
    from jnas.recipes.load import load as _load

    return _load(run_dir)
