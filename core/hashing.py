"""Content hashes: of files (memoised for large weights), of JSON parts, and of the code behind a cache key.
"""
from __future__ import annotations

import functools
import hashlib
import inspect
import json
import marshal
import os
import re
import weakref
from pathlib import Path
from typing import Any, TypeVar

from probebank.paths import cache_dir


def file_sha256(path: str | Path) -> str:
    """sha256 of a file, memoised in the cache by (path, size, mtime) so large weights hash once."""
    path = Path(path).resolve()
    st = path.stat()
    memo = cache_dir("models", "hashes") / (hashlib.sha1(str(path).encode()).hexdigest()[:20] + ".json")
    stamp = {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    try:
        saved = json.loads(memo.read_text(encoding="utf-8"))
        if {k: saved.get(k) for k in stamp} == stamp and len(saved.get("sha256", "")) == 64:
            return str(saved["sha256"])
    except (OSError, ValueError):
        pass
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    digest = h.hexdigest()
    tmp = memo.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps({**stamp, "sha256": digest}), encoding="utf-8")
    tmp.replace(memo)
    return digest


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- code fingerprints

_K = TypeVar("_K")
_V = TypeVar("_V")


class RuntimeCache(dict[_K, _V]):
    """A module-level dict that fills while the program runs (memoised results, not code).

    `fingerprint` skips it: a cache key must be the same before and after the first run fills it.
    """


_PROJECT_ROOTS = ("probebank", "probebank_plugins")
_DATA = (str, bytes, int, float, bool, type(None))
_ADDRESS = re.compile(r" at 0x[0-9a-f]+")


def _root(module_name: str | None) -> str:
    return (module_name or "").split(".")[0]


class _Walker:
    """Collects the source of project code an object reaches, in a deterministic order."""

    def __init__(self, roots: set[str]) -> None:
        self.roots = roots
        self.seen: set[int] = set()
        self.parts: list[str] = []

    def is_project(self, obj: Any) -> bool:
        return _root(getattr(obj, "__module__", None)) in self.roots

    def walk(self, obj: Any) -> None:
        if isinstance(obj, functools.partial):
            self.walk(obj.func)
            self.data("partial", (obj.args, obj.keywords))
            return
        if inspect.ismethod(obj):
            obj = obj.__func__
        if id(obj) in self.seen:
            return
        if inspect.isclass(obj):
            if not self.is_project(obj):
                return
            self.seen.add(id(obj))
            self.source(obj)
            for base in obj.__mro__[1:]:
                self.walk(base)
            for name in sorted(vars(obj)):
                attr = vars(obj)[name]
                for fn in (getattr(attr, "__func__", None), getattr(attr, "fget", None), attr):
                    if inspect.isfunction(fn):
                        self.references(fn)
            return
        if inspect.isfunction(obj):
            if not self.is_project(obj):
                return
            self.seen.add(id(obj))
            self.source(obj)
            self.references(obj)
            return
        if self.is_project(type(obj)) and not isinstance(obj, _DATA):  # an instance: its class's code
            self.walk(type(obj))

    def source(self, obj: Any) -> None:
        self.parts.append(f"{getattr(obj, '__module__', '')}.{getattr(obj, '__qualname__', '')}\n{_source(obj)}")

    def references(self, fn: Any) -> None:
        """What a function's code names: globals (functions, classes, data, attributes of project modules)."""
        names: set[str] = set()
        stack = [fn.__code__]
        while stack:
            code = stack.pop()
            names.update(code.co_names)
            stack.extend(c for c in code.co_consts if inspect.iscode(c))
        glb = fn.__globals__
        for name in sorted(names):
            if name not in glb:
                continue
            value = glb[name]
            if inspect.ismodule(value):
                if _root(value.__name__) in self.roots:
                    for attr in sorted(names):
                        if attr in vars(value):
                            self.walk_value(f"{value.__name__}.{attr}", vars(value)[attr])
                continue
            self.walk_value(name, value)
        for cell in fn.__closure__ or ():
            try:
                self.walk_value("<closure>", cell.cell_contents)
            except ValueError:  # an empty cell
                continue
        self.data("defaults", (fn.__defaults__, fn.__kwdefaults__))

    def walk_value(self, name: str, value: Any) -> None:
        if isinstance(value, RuntimeCache):
            return
        if not inspect.isfunction(value) and inspect.isfunction(getattr(value, "__wrapped__", None)):
            value = inspect.unwrap(value)  # e.g. functools.cache: the code is the wrapped function's
        if inspect.isfunction(value) or inspect.isclass(value) or inspect.ismethod(value) \
                or isinstance(value, functools.partial):
            self.walk(value)
        elif isinstance(value, (_DATA, tuple, list, dict, frozenset, set)):
            self.data(name, value)
        elif self.is_project(type(value)):
            self.walk(type(value))
        else:  # e.g. a compiled regex: its repr, unless that is only an address
            self.data(name, value)

    def data(self, name: str, value: Any) -> None:
        self.parts.append(f"{name}={self.text(value)}")

    def text(self, value: Any) -> str:
        """A stable text of plain data; functions and classes inside it are walked and named."""
        if isinstance(value, _DATA):
            return repr(value)
        if isinstance(value, (list, tuple)):
            return "[" + ",".join(self.text(v) for v in value) + "]"
        if isinstance(value, (set, frozenset)):
            return "{" + ",".join(sorted(self.text(v) for v in value)) + "}"
        if isinstance(value, dict):
            return "{" + ",".join(f"{self.text(k)}:{self.text(v)}" for k, v in value.items()) + "}"
        if inspect.isfunction(value) or inspect.isclass(value):
            self.walk(value)
            return f"{value.__module__}.{value.__qualname__}"
        if self.is_project(type(value)):
            self.walk(type(value))
            return f"<{type(value).__module__}.{type(value).__qualname__}>"
        text = repr(value)
        if _ADDRESS.search(text):
            return f"<{type(value).__module__}.{type(value).__qualname__}>"
        return text


# inspect.getsource re-reads (and, for a class, re-parses) the whole module file on every call: a run's
# dozen cache keys walk the same few hundred functions, so each object's text is read once per process.
_SOURCES: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()


def _source(obj: Any) -> str:
    try:
        return _SOURCES[obj]
    except (KeyError, TypeError):  # not seen yet, or not weak-referenceable
        pass
    try:
        text = inspect.getsource(obj)
    except (OSError, TypeError):  # defined without a source file: its bytecode
        code = getattr(obj, "__code__", None)
        text = marshal.dumps(code).hex() if code is not None else repr(obj)
    try:
        _SOURCES[obj] = text
    except TypeError:
        pass
    return text


def fingerprint(*objs: Any) -> str:
    """sha256 of the code behind a cache key: the source of `objs` and of every project function and class
    they reach.

    A function reaches what its code names: the functions, classes and plain-data constants it loads
    from its module's globals, the attributes it reads from project modules, its closure and its
    defaults; a class reaches its methods and its project base classes; an instance, its class.
    "Project" means probebank, probebank_plugins and the top-level package of each object given (a
    third-party plugin's), so library code is not hashed: editing one builder never invalidates the
    cached builds of its neighbours, and editing a helper it imports from another module does.
    """
    roots = set(_PROJECT_ROOTS) | {_root(getattr(o, "__module__", None) or type(o).__module__) for o in objs}
    walker = _Walker(roots)
    for obj in objs:
        walker.walk(obj)
    return hashlib.sha256("\n".join(walker.parts).encode()).hexdigest()


def json_digest(parts: Any, length: int = 24) -> str:
    """The first `length` hex digits of the sha256 of canonical JSON (sorted keys, no spaces): a cache key."""
    blob = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]
