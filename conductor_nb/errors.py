"""The one exception family of conductor_nb.

::

    ConductorError                 root: catch this to catch everything conductor_nb raises
    ├── BlueprintError             an invalid blueprint document; ``.problems`` lists every one
    ├── NodeTypeError              an unknown node type or version, or a bad node definition
    ├── NodeExecutionError         a node failed; ``.node_id``, ``.attempt``, ``__cause__``
    ├── RunCancelled               a run (or the node being awaited) was cancelled
    ├── RunStateError              a run handle was used in a state that forbids it
    ├── RunTimeout                 (also TimeoutError) ``run.wait(timeout=)`` gave up waiting
    ├── UnknownNameError           (also KeyError) no node, input, breakpoint or executor by
    │                              that name; ``.name``, ``.choices``, did-you-mean in the text
    ├── RunOptionError             (also ValueError) a run option with a value the engine refuses
    │   └── UnknownOptionError     (also TypeError) a run option name that does not exist
    ├── ExecutorError              an executor cannot do what was asked (not started, no such
    │                              capability, a value that must stay on the engine)
    ├── StoreError                 a blueprint store or the run history refused an operation
    └── MissingExtraError          an optional feature whose extra is not installed

Messages put the location first, then what was expected and found, then a fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


class ConductorError(Exception):
    """Base of every error conductor_nb raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a blueprint, located by a dotted path (``nodes.write.params.path``)."""

    path: str
    message: str
    hints: tuple[str, ...] = ()
    line: int | None = None
    column: int | None = None

    def render(self) -> str:
        where = self.path or "(document)"
        if self.line is not None:
            where += (
                f" (line {self.line}" + (f", column {self.column}" if self.column else "") + ")"
            )
        lines = [f"{where}: {self.message}"]
        lines += [f"    {hint}" for hint in self.hints]
        return "\n".join(lines)


def problem(path: str, message: str, *hints: str) -> Problem:
    """A Problem with any number of hint lines."""
    return Problem(path, message, tuple(hints))


class BlueprintError(ConductorError):
    """A blueprint document is invalid; ``problems`` lists every problem found."""

    def __init__(
        self, problems: Iterable[Problem], *, name: str | None = None, source: str | None = None
    ) -> None:
        self.problems: list[Problem] = list(problems)
        self.blueprint_name = name
        self.source = source
        super().__init__(self._message())

    def _message(self) -> str:
        count = len(self.problems)
        head = f"{count} problem{'s' if count != 1 else ''}"
        if self.blueprint_name:
            head += f" in blueprint {self.blueprint_name!r}"
        if self.source:
            head += f" ({self.source})"
        return (
            head + "\n" + "\n".join("  " + p.render().replace("\n", "\n  ") for p in self.problems)
        )

    @property
    def paths(self) -> list[str]:
        return [p.path for p in self.problems]


class NodeTypeError(ConductorError):
    """An unknown node type or version, or a function that cannot become a node type."""


class NodeExecutionError(ConductorError):
    """A node failed for good (after its retries). The original exception is ``__cause__``."""

    def __init__(
        self,
        message: str,
        *,
        node_id: str,
        attempt: int = 1,
        attempts: int = 1,
        original: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.node_id = node_id
        self.attempt = attempt
        self.attempts = attempts
        self.original = original


class RunCancelled(ConductorError):
    """The run was cancelled (``run.cancel()``, the view's Stop, or a kernel interrupt)."""


class RunStateError(ConductorError):
    """A run handle method was called in a state that does not allow it."""


class RunTimeout(ConductorError, TimeoutError):
    """``run.wait(timeout=...)`` gave up before the run finished or paused (the run goes on)."""


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """``"; did you mean 'x'?"`` when a choice is close to ``name``, else ``""``."""
    import difflib

    close = difflib.get_close_matches(name, list(choices), n=2, cutoff=0.5)
    if not close:
        return ""
    return f"; did you mean {' or '.join(map(repr, close))}?"


class UnknownNameError(ConductorError, KeyError):
    """A name that names nothing: a node, an input, a breakpoint, an executor.

    The message says what kind of thing was looked for, the closest names and the
    choices (``str()`` is the message itself, not the quoted key ``KeyError`` shows).
    """

    def __init__(self, kind: str, name: str, choices: Iterable[str], where: str = "") -> None:
        self.kind = kind
        self.name = name
        self.choices: tuple[str, ...] = tuple(choices)
        listed = ", ".join(map(repr, self.choices[:20])) + (
            ", ..." if len(self.choices) > 20 else ""
        )
        message = (
            f"{where}no {kind} {name!r}{did_you_mean(name, self.choices)} "
            f"({kind}s: {listed or 'none'})"
        )
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


class RunOptionError(ConductorError, ValueError):
    """A run option (``bp.run(concurrency=...)``) whose value the engine cannot work with."""


class UnknownOptionError(RunOptionError, TypeError):
    """A run option name that does not exist (like an unexpected keyword argument)."""


class ExecutorError(ConductorError):
    """An executor cannot do what was asked of it (not started, a value it cannot reach).

    ``hints`` say what to try; the message shows them on lines of their own.
    """

    def __init__(self, message: str, *, hints: Iterable[str] = ()) -> None:
        self.reason = message
        self.hints: tuple[str, ...] = tuple(hints)
        super().__init__("\n".join([message, *(f"    {hint}" for hint in self.hints)]))


class StoreError(ConductorError):
    """A blueprint store or the run history refused an operation (bad name, missing entry...)."""


class MissingExtraError(ConductorError, ImportError):
    """An optional feature needs an extra that is not installed."""


@dataclass
class ProblemList:
    """Collects problems while a validator walks a document; raise once at the end."""

    problems: list[Problem] = field(default_factory=list)

    def add(
        self,
        path: str,
        message: str,
        *hints: str,
        line: int | None = None,
        column: int | None = None,
    ) -> None:
        self.problems.append(Problem(path, message, tuple(hints), line, column))

    def __bool__(self) -> bool:
        return bool(self.problems)
