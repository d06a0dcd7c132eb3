"""Blueprint stores: named, versioned blueprints in a folder, in memory, or at any fsspec URL.

The model is a flat namespace of names (``sales``, ``sales-v2``), each with a
current document and its numbered versions::

    <root>/sales.yaml                 the current version (what ``load("sales")`` reads)
    <root>/.versions/sales/1.yaml     every saved version, oldest first
    <root>/.versions/sales/2.yaml

A local store is an ordinary folder, so ``bp.save("blueprints/sales.yaml")``
followed by ``BlueprintStore("blueprints").load("sales")`` works; a file put
there by hand counts as version 1. Each ``save`` writes a new version, then the
current file; both writes are atomic (a temporary file renamed into place), so
a reader never sees half a document.

Backends are picked from the location: a path (default ``./blueprints``), the
string ``":memory:"`` (a private in-process dict), or any fsspec URL
(``memory://x``, ``file:///srv/bps``, ``s3://bucket/bps`` once ``s3fs`` is
installed). fsspec is imported only when a URL is used.

Names are plain file names: letters, digits, ``_``, ``-`` and ``.``, starting
with a letter, digit or ``_``. Anything else (``..``, ``/``, ``\\``, absolute
paths, NUL, control characters) is refused with a :class:`StoreError`.
"""

from __future__ import annotations

import os
import re
import threading
import uuid
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from conductor_nb.errors import StoreError

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint
    from conductor_nb.model.types import Registry

Names = list[str]  # aliases: inside BlueprintStore, ``list`` is the method
Versions = list[int]
SUFFIXES = (".yaml", ".yml", ".json")
VERSIONS_DIR = ".versions"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
DEFAULT_LOCATION = "blueprints"
ENV_LOCATION = "CONDUCTOR_BLUEPRINTS"
"""Environment variable naming the default store (used by ``group`` nodes); else ./blueprints."""


def check_name(name: Any) -> str:
    """Return the bare name (a known suffix removed) or raise StoreError saying why not."""
    if not isinstance(name, str):
        raise StoreError(
            f"a blueprint name must be a string (got {name!r} that is a {type(name).__name__})"
        )
    bare = name
    for suffix in SUFFIXES:
        if bare.lower().endswith(suffix) and len(bare) > len(suffix):
            bare = bare[: -len(suffix)]
            break
    problem = _name_problem(bare)
    if problem:
        raise StoreError(
            f"blueprint name {name!r} is not allowed: {problem}; use a plain "
            "name such as 'sales' or 'sales-v2' (letters, digits, '_', '-', '.')"
        )
    return bare


def _name_problem(name: str) -> str | None:
    if not name:
        return "it is empty"
    if "\x00" in name:
        return "it contains a NUL character"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it contains a control character"
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        return "it is an absolute path"
    if ":" in name:
        return "it contains ':' (a URL or drive)"
    if "/" in name or "\\" in name or os.sep in name:
        return "it contains a path separator"
    if ".." in name:
        return "it contains '..'"
    if not NAME_PATTERN.match(name) or name.endswith("."):
        return "it has characters other than letters, digits, '_', '-' and '.'"
    return None


class Backend(Protocol):
    """What a store needs from where it keeps files (paths are '/'-joined, relative)."""

    def read(self, path: str) -> bytes | None: ...

    def write(self, path: str, data: bytes) -> None: ...

    def delete(self, path: str) -> None: ...

    def listdir(self, path: str) -> list[str]: ...


class LocalBackend:
    """A folder on this machine; writes go through a temporary file and ``os.replace``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __str__(self) -> str:
        return str(self.root)

    def read(self, path: str) -> bytes | None:
        try:
            return (self.root / path).read_bytes()
        except FileNotFoundError:
            return None

    def write(self, path: str, data: bytes) -> None:
        from conductor_nb.model.document import atomic_write

        atomic_write(self.root / path, data)

    def delete(self, path: str) -> None:
        target = self.root / path
        if target.is_dir():
            import shutil

            shutil.rmtree(target)
        else:
            target.unlink(missing_ok=True)

    def listdir(self, path: str) -> list[str]:
        folder = self.root / path if path else self.root
        if not folder.is_dir():
            return []
        return sorted(p.name for p in folder.iterdir())


class MemoryBackend:
    """A private dict: nothing touches disk, nothing is shared with other stores."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __str__(self) -> str:
        return ":memory:"

    def read(self, path: str) -> bytes | None:
        return self.files.get(path)

    def write(self, path: str, data: bytes) -> None:
        with self._lock:
            self.files[path] = bytes(data)

    def delete(self, path: str) -> None:
        with self._lock:
            for key in [k for k in self.files if k == path or k.startswith(path + "/")]:
                del self.files[key]

    def listdir(self, path: str) -> list[str]:
        prefix = path + "/" if path else ""
        return sorted(
            {k[len(prefix) :].split("/", 1)[0] for k in self.files if k.startswith(prefix)}
        )


class FsspecBackend:
    """Any fsspec filesystem; writes go to a temporary name, then ``mv`` into place."""

    def __init__(self, url: str, **storage_options: Any) -> None:
        import fsspec  # imported here: only stores at a URL pay for it

        self.url = url
        self.fs, self.root = fsspec.core.url_to_fs(url, **storage_options)
        self.root = self.root.rstrip("/")

    def __str__(self) -> str:
        return self.url

    def _full(self, path: str) -> str:
        return f"{self.root}/{path}" if path else self.root

    def read(self, path: str) -> bytes | None:
        try:
            data: bytes = self.fs.cat_file(self._full(path))
        except (FileNotFoundError, IsADirectoryError):
            return None
        return data

    def write(self, path: str, data: bytes) -> None:
        full = self._full(path)
        parent = full.rsplit("/", 1)[0]
        self.fs.makedirs(parent, exist_ok=True)
        tmp = f"{parent}/.tmp-{uuid.uuid4().hex}"
        self.fs.pipe_file(tmp, data)
        try:
            self.fs.mv(tmp, full)
        except BaseException:
            self._quiet_rm(tmp)
            raise

    def _quiet_rm(self, path: str) -> None:
        try:
            self.fs.rm(path)
        except (FileNotFoundError, OSError):
            pass

    def delete(self, path: str) -> None:
        full = self._full(path)
        if self.fs.exists(full):
            self.fs.rm(full, recursive=True)

    def listdir(self, path: str) -> list[str]:
        full = self._full(path)
        try:
            entries = self.fs.ls(full, detail=False)
        except FileNotFoundError:
            return []
        return sorted(str(e).rstrip("/").rsplit("/", 1)[-1] for e in entries)


def make_backend(location: str | PathLike[str] | None, **storage_options: Any) -> Backend:
    if location is None:
        location = os.environ.get(ENV_LOCATION) or DEFAULT_LOCATION
    if isinstance(location, str) and location == ":memory:":
        return MemoryBackend()
    if isinstance(location, str) and "://" in location:
        return FsspecBackend(location, **storage_options)
    return LocalBackend(Path(location))


class BlueprintStore:
    """Named, versioned blueprints in a folder (default ``./blueprints``), in memory
    (``":memory:"``) or at any fsspec URL (``"memory://x"``, ``"s3://bucket/bps"``).

    >>> store = BlueprintStore(":memory:")
    >>> store.list()
    []
    """

    def __init__(
        self,
        location: str | PathLike[str] | None = None,
        *,
        format: str = "yaml",
        **storage_options: Any,
    ) -> None:
        if format not in ("yaml", "json"):
            raise StoreError(f"store format must be 'yaml' or 'json' (got {format!r})")
        self.backend: Backend = make_backend(location, **storage_options)
        self.format = format

    @property
    def location(self) -> str:
        return str(self.backend)

    def __repr__(self) -> str:
        return f"BlueprintStore({self.location!r})"

    # ----------------------------------------------------------------- reading
    def list(self) -> Names:
        """The names of stored blueprints, sorted."""
        names = set()
        for entry in self.backend.listdir(""):
            stem, dot, suffix = entry.rpartition(".")
            if dot and f".{suffix.lower()}" in SUFFIXES and _name_problem(stem) is None:
                names.add(stem)
        return sorted(names)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._current(check_name(name)) is not None

    def versions(self, name: str) -> Versions:
        """Saved version numbers of ``name``, oldest first ([] if it is not stored)."""
        bare = check_name(name)
        found = self._history(bare)
        if not found and self._current(bare) is not None:
            return [1]
        return found

    def load(
        self, name: str, version: int | None = None, *, registry: Registry | None = None
    ) -> Blueprint:
        """The current blueprint called ``name``, or one of its saved versions."""
        from conductor_nb.model.blueprint import Blueprint

        text, fmt, where = self._read(check_name(name), version)
        source = f"{self.location}:{where}"
        if fmt == "json":
            return Blueprint.from_json(text, registry=registry, source=source)
        return Blueprint.from_yaml(text, registry=registry, source=source)

    def read_text(self, name: str, version: int | None = None) -> str:
        """The stored document, as text (no parsing)."""
        return self._read(check_name(name), version)[0]

    def _read(self, bare: str, version: int | None) -> tuple[str, str, str]:
        if version is None:
            current = self._current(bare)
            if current is None:
                raise StoreError(self._missing(bare))
            path, data = current
            return data.decode("utf-8"), _format_of(path), path
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise StoreError(f"version must be a whole number >= 1 (got {version!r})")
        for path in self._version_paths(bare, version):
            stored = self.backend.read(path)
            if stored is not None:
                return stored.decode("utf-8"), _format_of(path), path
        if version == 1 and not self._history(bare) and self._current(bare) is not None:
            return self._read(bare, None)
        known = self.versions(bare)
        if not known:
            raise StoreError(self._missing(bare))
        raise StoreError(
            f"blueprint {bare!r} in {self.location} has no version {version}; "
            f"saved versions: {', '.join(map(str, known))}"
        )

    def _missing(self, bare: str) -> str:
        names = self.list()
        import difflib

        close = difflib.get_close_matches(bare, names, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else ""
        return (
            f"no blueprint {bare!r} in {self.location}{hint} (stored: {', '.join(names) or 'none'})"
        )

    def _current(self, bare: str) -> tuple[str, bytes] | None:
        for suffix in SUFFIXES:
            data = self.backend.read(bare + suffix)
            if data is not None:
                return bare + suffix, data
        return None

    def _history(self, bare: str) -> Versions:
        found = set()
        for entry in self.backend.listdir(f"{VERSIONS_DIR}/{bare}"):
            stem, _, suffix = entry.partition(".")
            if stem.isdigit() and f".{suffix}" in SUFFIXES:
                found.add(int(stem))
        return sorted(found)

    def _version_paths(self, bare: str, version: int) -> Names:
        return [f"{VERSIONS_DIR}/{bare}/{version}{suffix}" for suffix in SUFFIXES]

    # ----------------------------------------------------------------- writing
    def save(self, bp: Blueprint, name: str | None = None) -> int:
        """Save ``bp`` as ``name`` (default: its id) as a new version; returns the version."""
        bare = check_name(bp.id if name is None else name)
        history = self._history(bare)
        current = self._current(bare)
        if not history and current is not None:  # a file put here by hand: keep it as v1
            path, data = current
            self.backend.write(f"{VERSIONS_DIR}/{bare}/1.{_format_of(path)}", data)
            history = [1]
        version = (history[-1] + 1) if history else 1
        text = bp.to_json() if self.format == "json" else bp.to_yaml()
        data = text.encode("utf-8")
        self.backend.write(f"{VERSIONS_DIR}/{bare}/{version}.{self.format}", data)
        target = f"{bare}.{self.format}"
        self.backend.write(target, data)
        for suffix in SUFFIXES:  # one current file per name, whatever its format
            if bare + suffix != target and self.backend.read(bare + suffix) is not None:
                self.backend.delete(bare + suffix)
        return version

    def delete(self, name: str, version: int | None = None) -> None:
        """Delete ``name`` and all its versions, or just one saved version."""
        bare = check_name(name)
        if version is not None:
            if version not in self._history(bare):
                raise StoreError(f"blueprint {bare!r} has no saved version {version!r}")
            for path in self._version_paths(bare, version):
                self.backend.delete(path)
            return
        if self._current(bare) is None and not self._history(bare):
            raise StoreError(self._missing(bare))
        for suffix in SUFFIXES:
            self.backend.delete(bare + suffix)
        self.backend.delete(f"{VERSIONS_DIR}/{bare}")


def _format_of(path: str) -> str:
    return "json" if path.lower().endswith(".json") else "yaml"


_default_store: BlueprintStore | None = None


def default_store() -> BlueprintStore:
    """The store ``group`` nodes load from: $CONDUCTOR_BLUEPRINTS or ./blueprints."""
    location = os.environ.get(ENV_LOCATION) or DEFAULT_LOCATION
    global _default_store
    if _default_store is None or _default_store.location != str(
        location if "://" in str(location) else Path(location)
    ):
        _default_store = BlueprintStore(location)
    return _default_store
