"""Run options, run ids and blueprint params resolved for one run.

The model: what a user may say about a run is one frozen, keyword-only
:class:`RunOptions` (concurrency, executor, limits, cache, history...); the
debugging aids (slow motion, fault injection) are their own small
:class:`DebugOptions` inside it; what the engine itself passes when it resumes a
recorded run (the run id, the outputs to reuse) is a :class:`RunSetup`, never a
user option. ``bp.run(**keywords)`` reaches :meth:`RunOptions.from_keywords`, which
checks every name (an unknown one is an :class:`UnknownOptionError` with a
did-you-mean) and every value. A nested run (a loop, parallel or group body)
derives its options from its parent's with :func:`dataclasses.replace`, so every
limit and setting holds inside bodies too.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol, TypedDict

from conductor_nb.errors import RunOptionError, UnknownOptionError, did_you_mean
from conductor_nb.model.params import resolve_params as resolve_params  # the model's rule

if TYPE_CHECKING:
    from conductor_nb.engine.executors import Executor
    from conductor_nb.engine.plan import Plan

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _empty() -> Mapping[str, Any]:
    return _EMPTY


class ResultCache(Protocol):
    """Where cached node outputs live (the storage layer provides one)."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, outputs: Mapping[str, Any]) -> None: ...


@dataclass(frozen=True, kw_only=True)
class DebugOptions:
    """Debugging aids: watch a run in slow motion, or inject faults to test failure paths.

    ``faults`` maps node id -> ``"fail"``, ``"hang"`` or a delay in seconds;
    ``fault_rate`` fails that fraction of node calls at random (``fault_seed`` makes
    it repeatable).
    """

    slow_motion: float = 0.0
    faults: Mapping[str, Any] = field(default_factory=_empty)
    fault_rate: float = 0.0
    fault_seed: int | None = None

    @property
    def injects_faults(self) -> bool:
        return bool(self.faults) or bool(self.fault_rate)


@dataclass(frozen=True, kw_only=True)
class RunOptions:
    """Everything a user may say about one run (``bp.run(**options)``).

    Bodies of loop, parallel and group nodes run with the same options (their own
    breakpoints, pause and history aside): see :meth:`for_body`.
    """

    concurrency: int = 8
    """Nodes running at once, in the whole run (bodies included)."""
    executor: str | Executor | None = None
    """Where node functions run: a registered name (``"local"``, ``"process"``, ``"dask"``)
    or an Executor object."""
    fail_fast: bool = False
    cache: bool | None = None
    """None: each node's ``cache`` setting; True/False: every node."""
    breakpoints: tuple[str, ...] = ()
    paused: bool = False
    """Start paused before the first node (``bp.debug()``)."""
    type_limits: Mapping[str, int] = field(default_factory=_empty)
    """Node type name -> how many of its nodes run at once, in the whole run."""
    history: Any = None
    """None: the default run history; False: do not record; a RunHistory or a folder."""
    result_cache: ResultCache | None = None
    """Where cached results live; None: the history's cache when some node caches."""
    env: bool | tuple[str, ...] = False
    """Environment variables exposed to templates as ``env``: names (the blueprint's own
    ``env:`` list is added), or True for all of ``os.environ``. Their values are masked
    in records (see :mod:`conductor_nb.engine.environ`)."""
    capture: bool = True
    """Capture what nodes print and log into their records."""
    settings: Mapping[str, Any] = field(default_factory=_empty)
    """Settings for node types (``file_roots`` for the file nodes...)."""
    debug: DebugOptions = DebugOptions()

    def caches(self, node: Any) -> bool:
        """Whether ``node``'s result may come from (and go to) the result cache."""
        return bool(node.cache) if self.cache is None else self.cache

    def caches_some(self, plan: Plan) -> bool:
        """Whether some node of ``plan`` may use the result cache (:meth:`caches` for each,
        from what the plan worked out once)."""
        return bool(plan.caching_nodes) if self.cache is None else bool(self.cache and plan.nodes)

    def for_body(self, executor: Executor, result_cache: ResultCache | None) -> RunOptions:
        """The options of a nested run: the same limits and settings, the parent's executor
        and cache; no breakpoints, no pause, no history of its own (it is recorded in the
        parent's)."""
        return dataclasses.replace(
            self,
            executor=executor,
            result_cache=result_cache,
            breakpoints=(),
            paused=False,
            history=False,
        )

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Any]) -> RunOptions:
        """Options from ``bp.run(...)`` keywords: names checked, then values (all at once)."""
        unknown = sorted(set(keywords) - set(OPTION_NAMES))
        if unknown:
            raise UnknownOptionError(
                "; ".join(
                    f"unknown run option {name!r}{did_you_mean(name, OPTION_NAMES)}"
                    for name in unknown
                )
                + f" (options: {', '.join(OPTION_NAMES)})"
            )
        _check(keywords)
        debug = {k: v for k, v in keywords.items() if k in _DEBUG_NAMES}
        given = {k: v for k, v in keywords.items() if k not in _DEBUG_NAMES}
        if "breakpoints" in given:
            given["breakpoints"] = tuple(given["breakpoints"])
        if "env" in given and not isinstance(given["env"], bool):
            given["env"] = tuple(given["env"])
        for name in ("type_limits", "settings"):
            if name in given:
                given[name] = MappingProxyType(dict(given[name]))
        if "faults" in debug:
            debug["faults"] = MappingProxyType(dict(debug["faults"]))
        return cls(**given, debug=DebugOptions(**debug))


class RunKeywords(TypedDict, total=False):
    """The keywords of ``bp.run``/``arun``/``start``/``debug`` (a type checker reads these;
    :class:`RunOptions` and :class:`DebugOptions` hold their defaults and meaning)."""

    concurrency: int
    executor: str | Executor | None
    fail_fast: bool
    cache: bool | None
    breakpoints: Sequence[str]
    paused: bool
    type_limits: Mapping[str, int]
    history: Any
    result_cache: ResultCache | None
    env: bool | Sequence[str]
    capture: bool
    settings: Mapping[str, Any]
    slow_motion: float
    faults: Mapping[str, Any]
    fault_rate: float
    fault_seed: int | None


_DEBUG_NAMES = tuple(f.name for f in dataclasses.fields(DebugOptions))
OPTION_NAMES: tuple[str, ...] = tuple(
    sorted([f.name for f in dataclasses.fields(RunOptions) if f.name != "debug"] + [*_DEBUG_NAMES])
)
"""Every keyword ``bp.run`` takes besides ``params``."""


@dataclass(frozen=True, kw_only=True)
class RunSetup:
    """What the engine passes when it starts a run for its own reasons (resume): not options
    a user sets."""

    run_id: str | None = None
    completed: Mapping[str, Mapping[str, Any]] = field(default_factory=_empty)
    """Outputs of nodes that already succeeded (resume): they are reused, never run again."""


def _check(keywords: Mapping[str, Any]) -> None:
    """Reject option values the engine cannot work with, naming each option."""
    checks = {
        "concurrency": lambda v: _whole(v, minimum=1),
        "slow_motion": _seconds,
        "fault_rate": _fraction,
        "type_limits": _limits,
        "breakpoints": _names,
        "env": _env_names,
        "settings": lambda v: None if isinstance(v, Mapping) else "expected a mapping",
        "faults": lambda v: None if isinstance(v, Mapping) else "expected a mapping",
    }
    problems = [
        f"{name}: {why}"
        for name, check in checks.items()
        if name in keywords and (why := check(keywords[name]))
    ]
    if problems:
        raise RunOptionError("bad run option " + "; ".join(problems))


def _whole(value: Any, minimum: int) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return None
    return f"expected an integer >= {minimum}, got {value!r}"


def _seconds(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return None
    return f"expected a number of seconds >= 0, got {value!r}"


def _fraction(value: Any) -> str | None:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 <= value <= 1:
        return None
    return f"expected a number between 0 and 1, got {value!r}"


def _limits(value: Any) -> str | None:
    if not isinstance(value, Mapping):
        return f"expected a mapping of node type -> limit, got {value!r}"
    bad = {k: v for k, v in value.items() if _whole(v, minimum=1)}
    return f"limits must be integers >= 1, got {bad!r}" if bad else None


def _env_names(value: Any) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str) or not isinstance(value, Sequence | set | frozenset):
        return f"expected True or a list of environment variable names, got {value!r}"
    return None if all(isinstance(n, str) for n in value) else f"expected names, got {value!r}"


def _names(value: Any) -> str | None:
    if (
        isinstance(value, str)
        or not isinstance(value, Sequence | set | frozenset)
        or not all(isinstance(n, str) for n in value)
    ):
        return f"expected a list of node ids, got {value!r}"
    return None


def new_run_id() -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"
