"""Stored traces: a one-shot run's step program kept on disk as a `jax.export` module, so a
warm start skips JAX's tracing of it (issue #21's goal 2).

The persistent XLA cache (`jnas.commands._common.enable_compilation_cache`) answers XLA's
compile, but every process still traces, differentiates and lowers the step before it can
ask: 1.5-3.2 s of a 5-12 s warm start on 2 CPU cores for the NB201 supernet (C=16, N=5),
against 0.2-0.4 s to read a stored module and lower a call of it
(`benchmarks/trace_cache_probe.py`). The store keeps that module.

A stored program is right only while everything traced into it is unchanged, and a stale
one would run the wrong program without a sign. So a program is stored and found under a
key (sha256) over everything that decides it, and nothing is stored when a part cannot be
named:

- the function's *identity*, a string its maker gives: the one-shot registry names a method
  by its registry name and `make`'s arguments (`name_of`: plain values, jnas' own
  dataclass spaces, module-level jnas functions); a user's own optimiser, space or
  augmentation names nothing, and the run traces as before;
- the source of every module of `jnas` (a digest of the files), the versions of Python,
  JAX, jaxlib, Flax, optax, chex, NumPy, ml_dtypes and opt_einsum, JAX's settings
  (`jax.config`, less its cache, logging and dump paths), the backend, its platform
  version, device kind and count;
- the arguments' tree and abstract values, and the XLA options the step compiles with.

The store is on only where the `jnas` command turns it on (`enable`, beside the XLA cache:
`$JNAS_XLA_CACHE/traces`) and only for runs on one device. Files are written to a
temporary name and renamed; a module whose bytes do not match its record's sha256, or that
fails to load, is traced again and stored anew; a load marks the module used, so that the
cache's size bound (`jnas._cache_prune`) removes the least recently used entries first. A
function `jax.export` cannot serialise (host callbacks) runs as a plain `jax.jit`. The stored call gives the plain step's
outputs bit for bit (`tests/test_trace_store.py`).
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import os
import pathlib
import secrets
import sys
import types
import weakref
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from jnas import _cache_prune

_log = logging.getLogger("jnas")
FORMAT = 1
_state: dict[str, pathlib.Path | None] = {"folder": None}
_AMBIGUOUS = ""  # a function registered under two identities names nothing
_identities: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
# programs traced and stored / loaded from the store in this process (what the tests read)
counts = {"traced": 0, "loaded": 0}
# JAX settings that do not change a traced program (paths, logging, caches, dumps)
_IGNORED_CONFIG = ("cache", "log", "dump", "traceback", "pprint", "explain", "timeout")


def enable(folder: str | os.PathLike) -> None:
    """Store and look up step programs under `folder` (created when first written)."""
    _state["folder"] = pathlib.Path(folder)


def disable() -> None:
    _state["folder"] = None


def folder() -> pathlib.Path | None:
    """Where programs are stored; None while the store is off."""
    return _state["folder"]


def name_of(value: Any) -> str:
    """A string that names `value` completely, for a key: plain values (None, bool, int,
    float, str, and tuples, lists, dicts of them), NumPy dtypes and scalar types, frozen
    dataclasses defined in jnas (its spaces), and module-level jnas functions or partials
    of them. Raises TypeError for anything else (a closure, an optax transformation, a
    user's class): the caller stores nothing then."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        inner = ",".join(name_of(v) for v in value)
        return f"{type(value).__name__}({inner})"
    if isinstance(value, dict):
        items = sorted((name_of(k), name_of(v)) for k, v in value.items())
        return "{" + ",".join(f"{k}:{v}" for k, v in items) + "}"
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return f"dtype({np.dtype(value).name})"
    if type(value).__name__ == "_ScalarMeta" and isinstance(
        getattr(value, "dtype", None), np.dtype
    ):
        return f"dtype({value.dtype.name})"  # jnp.bfloat16 and its kind
    if isinstance(value, functools.partial):
        return f"partial({name_of(value.func)},{name_of(value.args)},{name_of(value.keywords)})"
    if isinstance(value, types.FunctionType) and _module_level_jnas(value):
        return f"fn({value.__module__}.{value.__qualname__})"
    kind = type(value)
    if (
        dataclasses.is_dataclass(value)
        and kind.__dataclass_params__.frozen  # type: ignore[attr-defined]
        and _module_level_jnas(kind)
    ):
        fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
        return f"{kind.__module__}.{kind.__qualname__}{name_of(fields)}"
    raise TypeError(f"name_of: cannot name a {kind.__module__}.{kind.__qualname__}")


def _module_level_jnas(obj: Any) -> bool:
    module = getattr(obj, "__module__", None) or ""
    if not (module == "jnas" or module.startswith("jnas.")):
        return False
    return getattr(sys.modules.get(module), obj.__qualname__, None) is obj


def register(fn: Callable, identity: str) -> None:
    """Mark `fn` (a one-shot method's `step`) as named by `identity` while it lives."""
    try:
        known = _identities.get(fn)
        _identities[fn] = identity if known in (None, identity) else _AMBIGUOUS
    except TypeError:  # not weakly referenceable: it stays unnamed
        pass


def identity_of(fn: Callable) -> str | None:
    """The identity `register` gave `fn`; None when it has none (or two)."""
    try:
        return _identities.get(fn) or None
    except TypeError:  # not weakly referenceable: never registered
        return None


@functools.cache
def source_digest() -> str:
    """sha256 over the path and bytes of every Python module of the jnas package."""
    root = pathlib.Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()


def _versions() -> dict[str, str]:
    from importlib import metadata

    found = {"python": sys.version}
    # opt_einsum: jnp.einsum's contraction order is chosen while tracing
    for package in ("jax", "jaxlib", "flax", "optax", "chex", "numpy", "ml_dtypes", "opt_einsum"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "absent"
    return found


def _settings() -> dict[str, str]:
    return {
        name: repr(value)
        for name, value in sorted(jax.config.values.items())
        if not any(part in name for part in _IGNORED_CONFIG)
    }


def _aval(x: Any) -> tuple[tuple[int, ...], str, bool]:
    aval = jax.typeof(x)
    return tuple(aval.shape), str(aval.dtype), bool(getattr(aval, "weak_type", False))


def key_of(identity: str, tree: Any, avals: tuple, options: dict[str, Any] | None) -> dict:
    """Everything a stored program depends on (see the module); its JSON's sha256 names it."""
    device = jax.devices()[0]
    return {
        "format": FORMAT,
        "identity": identity,
        "in_tree": str(tree),
        "avals": [list(a) for a in avals],
        "compiler_options": sorted((k, repr(v)) for k, v in (options or {}).items()),
        "source": source_digest(),
        "versions": _versions(),
        "config": _settings(),
        "backend": [
            jax.default_backend(),
            device.client.platform_version,  # e.g. the CUDA and driver versions on a GPU
            device.device_kind,
            jax.device_count(),
        ],
    }


def _digest(key: dict) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _write(path: pathlib.Path, data: bytes) -> None:
    """`data` to `path` whole or not at all: a temporary file in its folder, renamed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # a name no other writer takes, opened as the XLA cache's files are (the umask's mode)
    tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(6)}"
    try:
        with open(tmp, "xb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def export_flat(fn: Callable[..., Any], args: tuple) -> tuple[Any, Any]:
    """`fn(*args)` traced once as a `jax.export` module over `args`' flattened leaves
    (abstract values, weak types kept) returning its flattened outputs, so that storing it
    needs no pytree registry; and the outputs' tree."""
    from jax import export

    leaves, tree = jax.tree.flatten(args)
    out: dict[str, Any] = {}

    def flat(*xs: Any) -> list:
        values, out["tree"] = jax.tree.flatten(fn(*jax.tree.unflatten(tree, xs)))
        return values

    specs = [
        jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type)
        for a in map(jax.typeof, leaves)
    ]
    exported = export.export(jax.jit(flat))(*specs)
    return exported, out["tree"]


def _step_out_tree(in_tree: Any, names: list[str]) -> Any:
    """The output tree of a step `(carry, x) -> (carry, {name: leaf})` for inputs `in_tree`."""
    carry = jax.tree_util.treedef_children(in_tree)[0]
    like = jax.tree.unflatten(carry, [0] * carry.num_leaves)
    return jax.tree.structure((like, dict.fromkeys(names, 0)))


class StoredStep:
    """`step(carry, x) -> (carry, {name: array})` jitted with `compiler_options`, its
    program stored (and on later starts loaded) as a `jax.export` module under the key of
    `identity` and the arguments (see the module)."""

    def __init__(
        self,
        step: Callable[[Any, Any], tuple[Any, Any]],
        identity: str,
        compiler_options: dict[str, Any] | None = None,
    ):
        self.step, self.identity, self.options = step, identity, compiler_options
        self.plain = jax.jit(step, compiler_options=compiler_options)
        self._calls: dict[Any, Any] = {}

    def __call__(self, carry: Any, x: Any) -> tuple[Any, Any]:
        leaves, tree = jax.tree.flatten((carry, x))
        signature = (tree, tuple(_aval(leaf) for leaf in leaves))
        call = self._calls.get(signature)
        if call is None:
            call = self._calls[signature] = self._prepare(tree, leaves, signature[1])
        if call is False:
            return self.plain(carry, x)
        run, out_tree = call
        return jax.tree.unflatten(out_tree, run(*leaves))

    def _prepare(self, tree: Any, leaves: list, avals: tuple) -> Any:
        """(compiled call, output tree) from the store or a fresh export; False: plain."""
        where = folder()
        if where is None or any(
            isinstance(leaf, jax.Array) and len(leaf.sharding.device_set) > 1 for leaf in leaves
        ):
            return False
        key = key_of(self.identity, tree, avals, self.options)
        name = _digest(key)
        module, record = where / f"{name}.exported", where / f"{name}.json"
        loaded = self._load(module, record, tree)
        if loaded is not None:
            counts["loaded"] += 1
            exported, out_tree = loaded
        else:
            try:
                exported, out_tree = export_flat(self.step, jax.tree.unflatten(tree, leaves))
            except Exception as error:  # host callbacks, effects: run plainly
                _log.info("trace store: %s not exported (%s); tracing as usual", name, error)
                return False
            counts["traced"] += 1
            names = _output_names(out_tree, tree)
            if names is not None:  # else a step of another shape: used, not stored
                self._store(exported, module, record, names, key)
        run = jax.jit(exported.call, compiler_options=self.options)
        return run, out_tree

    @staticmethod
    def _store(exported: Any, module: pathlib.Path, record: pathlib.Path, names: list, key: dict):
        """Write the module, then its record (the record names the module's sha256, so a
        module without a matching record is never used)."""
        try:
            data = bytes(exported.serialize())
            _write(module, data)
            meta = {"sha256": hashlib.sha256(data).hexdigest(), "outputs": names, "key": key}
            _write(record, json.dumps(meta, indent=1).encode())
        except Exception as error:  # a full disk, no flatbuffers: run unstored
            _log.warning("trace store: %s not written (%s)", module.name, error)

    @staticmethod
    def _load(module: pathlib.Path, record: pathlib.Path, tree: Any) -> tuple[Any, Any] | None:
        """The stored module and its output tree, or None (absent, torn or unreadable)."""
        try:
            meta = json.loads(record.read_text())
            data = module.read_bytes()
            if hashlib.sha256(data).hexdigest() != meta["sha256"]:
                raise ValueError("the module's bytes do not match its record")
            from jax import export

            exported = export.deserialize(bytearray(data))
            out_tree = _step_out_tree(tree, meta["outputs"])
            if len(exported.out_avals) != out_tree.num_leaves:
                raise ValueError("the module's outputs do not match its record")
            _cache_prune.touch(module)  # used now: the cache's bound removes it last
            return exported, out_tree
        except FileNotFoundError:
            return None
        except Exception as error:  # a damaged entry: trace and store anew
            _log.warning("trace store: %s unreadable (%s); tracing anew", module.name, error)
            return None


def _output_names(out_tree: Any, in_tree: Any) -> list[str] | None:
    """The output names of a step whose `out_tree` is `(carry as in in_tree, {name: leaf})`
    (what the record keeps to rebuild it); None for any other output."""
    try:
        names = sorted(out_tree.children()[1].node_data()[1])
    except (IndexError, TypeError):  # not a pair, or its second part not a dict
        return None
    return names if out_tree == _step_out_tree(in_tree, names) else None
