"""The import rules of ARCHITECTURE.md that `lint-imports` cannot express."""

import ast
import os
import pathlib
import subprocess
import sys

import pytest

import jnas

ROOT = pathlib.Path(jnas.__file__).parent


def _imports(path: pathlib.Path) -> list[tuple[int, str]]:
    """(line, module) of every import in `path`, function-level ones included."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
        elif isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
    return out


def test_no_package_imports_another_packages_private_modules():
    bad = []
    for path in ROOT.rglob("*.py"):
        rel = path.relative_to(ROOT)
        own = rel.parts[0] if len(rel.parts) > 1 else None  # a subpackage, or a root module
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] != "jnas" or len(parts) < 3:
                continue
            package, private = parts[1], parts[2].startswith("_")
            if (
                private
                and package != own
                and not (own is None and rel.stem == "cli" and package == "commands")
            ):
                bad.append(f"jnas/{rel}:{line} imports {module}")
    assert not bad, "\n".join(bad)


def test_the_checker_sees_function_level_imports(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from jnas.search._registry import REGISTRY\n")
    assert _imports(f) == [(2, "jnas.search._registry")]


def test_experiments_and_benchmarks_call_the_library_not_the_cli():
    """`jnas.commands` is the CLI's face (flags, printing); scripts use `jnas.recipes` and
    the packages below it."""
    bad = []
    for folder in ("experiments", "benchmarks"):
        assert (ROOT.parent / folder).is_dir(), folder
        for path in (ROOT.parent / folder).rglob("*.py"):
            bad += [
                f"{folder}/{path.name}:{line} imports {module}"
                for line, module in _imports(path)
                if module == "jnas.commands"
                or module.startswith("jnas.commands.")
                or module == "jnas.cli"
            ]
    assert not bad, "\n".join(bad)


def test_tensorflow_datasets_is_an_optional_extra(monkeypatch):
    """Only the TFDS data path needs it (`pip install jnas[tfds]`): importing every package
    and the CLI leaves it unimported, and the TFDS path without it says what to install."""
    code = (
        "import sys, jnas, jnas.cli, jnas.data, jnas.meta, jnas.oneshot, jnas.search, "
        "jnas.bench, jnas.train, jnas.recipes\n"
        "print('tensorflow_datasets' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "False", out.stderr
    from jnas import data

    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'jnas\[tfds\]'"):
        data.TFDSSource("mnist", "train")


def test_importing_jnas_leaves_jax_unconfigured():
    """Importing every module of the library starts no JAX backend: XLA's flags, the
    process' CPU affinity (the NB201 Table 5 script pins each worker to a core, and XLA
    sizes its thread pool by the cores it sees when the backend starts) and
    `jax.distributed` must still be settable after `import jnas...`. A module-level JAX
    array (NEAT's XOR data was one) starts it."""
    code = (
        "import importlib, os, pkgutil, jnas\n"
        "for m in pkgutil.walk_packages(jnas.__path__, 'jnas.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
        "os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=3'\n"
        "import jax\n"
        "print(jax.device_count())"
    )
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert out.stdout.strip().splitlines()[-1:] == ["3"], out.stderr[-2000:]
