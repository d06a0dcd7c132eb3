"""``file-system``: read, write, list, exists, create, delete, copy and move files.

Every path is confined to the allowed roots: the run option
``settings={'file_roots': [...]}``, or the working directory when unset.
Relative paths start at the first root. A path is resolved (``..`` collapsed,
symlinks followed) *before* it is checked, so neither ``../`` nor a symlink
pointing outside can escape. Writes are atomic: a temporary file in the same
directory, flushed, then renamed over the target.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conductor_nb.model.types import Port
from conductor_nb.nodes.builtin._define import define, is_given_empty, param

OPERATIONS = ("read", "write", "append", "list", "exists", "create", "delete", "copy", "move")


class PathNotAllowed(PermissionError):
    """A path resolves outside every allowed root."""


def allowed_roots(settings: Mapping[str, Any] | None) -> list[Path]:
    roots = (settings or {}).get("file_roots") or [os.getcwd()]
    if isinstance(roots, str | os.PathLike):
        roots = [roots]
    return [Path(r).expanduser().resolve() for r in roots]


def confine(path: str | os.PathLike[str], roots: Sequence[Path]) -> Path:
    """The resolved ``path``, if it lies inside one of ``roots``; else PathNotAllowed."""
    if not str(path):
        raise ValueError("path is empty")
    candidate = Path(path).expanduser()
    if not candidate.is_absolute():
        candidate = roots[0] / candidate
    resolved = candidate.resolve()  # collapses .. and follows symlinks, existing or not
    if any(resolved == root or resolved.is_relative_to(root) for root in roots):
        return resolved
    raise PathNotAllowed(
        f"path {str(path)!r} resolves to {str(resolved)!r}, outside the allowed roots "
        f"({', '.join(map(str, roots))}); allow another folder with the run option "
        "settings={'file_roots': [...]}"
    )


def _umask() -> int:
    """The process umask, read without changing it (os.umask would race other threads)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


def atomic_write(target: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``target``, then rename it into place.
    The temporary name carries this process's id, so the next write to ``target`` removes
    what a killed writer left behind (a process that no longer exists)."""
    _remove_orphaned_temps(target)
    prefix = f".{target.name}.{os.getpid()}."
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=prefix, suffix=".tmp")
    done = False
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        if target.exists():
            shutil.copymode(target, tmp)
        else:  # mkstemp makes 0600 files; a new file gets the usual umask-based mode
            os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, target)
        done = True
    finally:
        if not done:  # a failed write leaves the old file as it was, and no temporary behind
            Path(tmp).unlink(missing_ok=True)


def _remove_orphaned_temps(target: Path) -> None:
    for stale in target.parent.glob(f".{glob.escape(target.name)}.*.tmp"):
        pid = stale.name[len(target.name) + 2 :].split(".", 1)[0]
        if pid.isdigit() and not _is_alive(int(pid)):
            stale.unlink(missing_ok=True)


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True


def _as_bytes(content: Any, binary: bool, encoding: str) -> bytes:
    if isinstance(content, bytes | bytearray):
        return bytes(content)
    if content is None:
        return b""
    if isinstance(content, str):
        return content.encode(encoding)
    if binary:
        raise TypeError(f"binary content must be bytes, got a {type(content).__name__}")
    return json.dumps(content, indent=2, default=str).encode(encoding)


def _entry(path: Path, base: Path) -> dict[str, Any]:
    kind = "symlink" if path.is_symlink() else "dir" if path.is_dir() else "file"
    info: dict[str, Any] = {"name": path.name, "path": str(path.relative_to(base)), "type": kind}
    if kind == "file":
        info["size"] = path.stat().st_size
    return info


def _list(target: Path, recursive: bool, pattern: str) -> list[dict[str, Any]]:
    if not target.is_dir():
        raise NotADirectoryError(f"{str(target)!r} is not a directory")
    found: dict[Path, None] = {}
    for one in _braces(pattern or "*"):  # *.{jpg,png}: each alternative, listed once
        # rglob does not descend into symlinked directories: nothing outside is listed
        found.update(dict.fromkeys(target.rglob(one) if recursive else target.glob(one)))
    return sorted((_entry(p, target) for p in found), key=lambda e: e["path"])


def _braces(pattern: str) -> list[str]:
    """``*.{jpg,png}`` -> ``*.jpg``, ``*.png`` (the first brace group, then the rest)."""
    start = pattern.find("{")
    end = pattern.find("}", start)
    if start < 0 or end < 0:
        return [pattern]
    head, tail = pattern[:start], pattern[end + 1 :]
    return [x for alt in pattern[start + 1 : end].split(",") for x in _braces(head + alt + tail)]


def _read(target: Path, binary: bool, encoding: str) -> dict[str, Any]:
    data = target.read_bytes()
    content: Any = data if binary else data.decode(encoding)
    return {"path": str(target), "content": content, "size": len(data)}


def _write(target: Path, content: Any, opts: Mapping[str, Any]) -> dict[str, Any]:
    if target.exists() and not opts["overwrite"]:
        raise FileExistsError(f"{str(target)!r} exists; set overwrite: true to replace it")
    if not opts["createDirectories"] and not target.parent.is_dir():
        raise FileNotFoundError(
            f"the folder {str(target.parent)!r} does not exist; set createDirectories: true "
            "to create it"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    data = _as_bytes(content, opts["binary"], opts["encoding"])
    if opts["operation"] == "append":
        with target.open("ab") as fh:
            fh.write(data)
    else:
        atomic_write(target, data)
    return {"path": str(target), "size": target.stat().st_size}


def _delete(target: Path, recursive: bool, missing_ok: bool) -> dict[str, Any]:
    if not target.exists():
        if missing_ok:
            return {"path": str(target), "deleted": False}
        raise FileNotFoundError(f"{str(target)!r} does not exist")
    if target.is_dir():
        if recursive:
            shutil.rmtree(target)
        else:
            target.rmdir()
    else:
        target.unlink()
    return {"path": str(target), "deleted": True}


def _transfer(source: Path, dest: Path, move: bool, overwrite: bool) -> dict[str, Any]:
    if not source.exists():
        raise FileNotFoundError(f"{str(source)!r} does not exist")
    if dest.exists() and not overwrite:
        raise FileExistsError(f"{str(dest)!r} exists; set overwrite: true to replace it")
    dest.parent.mkdir(parents=True, exist_ok=True)
    if move:
        shutil.move(str(source), str(dest))
    elif source.is_dir():
        shutil.copytree(source, dest, symlinks=True, dirs_exist_ok=overwrite)
    else:
        shutil.copy2(source, dest)
    return {"path": str(dest), "source": str(source)}


def file_system(
    ctx: Any,
    input: Any = None,
    operation: str = "read",
    path: str = "",
    destination: str = "",
    content: Any = None,
    binary: bool = False,
    encoding: str = "utf-8",
    recursive: bool = False,
    pattern: str = "",
    overwrite: bool = True,
    missing_ok: bool = False,
    createDirectories: bool = True,
) -> dict[str, Any]:
    """Do one file operation inside the allowed roots."""
    roots = allowed_roots(getattr(ctx, "settings", None))
    target = confine(path, roots)
    if operation in ("read",):
        return _read(target, binary, encoding)
    if operation in ("write", "append"):
        opts = {"operation": operation, "overwrite": overwrite, "binary": binary}
        opts["createDirectories"] = createDirectories
        data = content if content is not None else input
        return _write(target, data, {**opts, "encoding": encoding})
    if operation == "list":
        entries = _list(target, recursive, pattern)
        files = [str(target / e["path"]) for e in entries if e["type"] == "file"]
        return {"path": str(target), "entries": entries, "files": files}
    if operation == "exists":
        return {"path": str(target), "exists": target.exists()}
    if operation == "create":
        target.mkdir(parents=True, exist_ok=True)
        return {"path": str(target)}
    if operation == "delete":
        return _delete(target, recursive, missing_ok)
    if operation in ("copy", "move"):
        dest = confine(destination, roots)
        return _transfer(target, dest, operation == "move", overwrite)
    raise ValueError(f"unknown operation {operation!r}; operations: {', '.join(OPERATIONS)}")


def _check(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = []
    if is_given_empty(values, "path"):
        problems.append(("path", "path is empty: file-system needs a file or folder path"))
    if values.get("operation") in ("copy", "move") and not values.get("destination"):
        problems.append(("destination", f"operation {values['operation']!r} needs a destination"))
    return problems


FILE_SYSTEM = define(
    "file-system",
    file_system,
    category="files",
    description="Read, write (atomically), list, check, create, delete, copy or move files, "
    "confined to the allowed roots (default: the working directory).",
    inputs=[Port("content", description="what to write (else the input)", default=None)],
    outputs=[
        Port("content", description="read: the file's text or bytes"),
        Port("path", type="str", description="the resolved path"),
        Port("entries", type="list", description="list: the entries"),
        Port("files", type="list[str]", description="list: the full paths of the files"),
        Port("exists", type="bool", description="exists: whether the path exists"),
    ],
    params=[
        param("operation", "str", "read", "what to do", choices=OPERATIONS),
        param("path", "path", "", "the file or folder (relative to the first root)", required=True),
        param("destination", "path", "", "copy/move: where to"),
        param("binary", "bool", False, "read/write bytes instead of text"),
        param("encoding", "str", "utf-8", "text encoding"),
        param("recursive", "bool", False, "list/delete: include subfolders"),
        param("pattern", "str", "", "list: a glob pattern such as *.csv"),
        param("overwrite", "bool", True, "write/copy/move: replace an existing target"),
        param("missing_ok", "bool", False, "delete: a missing path is not an error"),
        param(
            "createDirectories",
            "bool",
            True,
            "write/append: create missing parent folders (else a missing folder is an error)",
        ),
    ],
    example={
        "type": "file-system",
        "params": {"operation": "write", "path": "out/hello.txt", "content": "Hello"},
    },
    validate=_check,
    takes_context=True,
    side_effects=True,
)

NODE_TYPES = [FILE_SYSTEM]
