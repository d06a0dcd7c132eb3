"""Run options, run ids and blueprint params resolved for one run."""

from __future__ import annotations

import datetime as _dt
import os
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from conductor_nb.errors import BlueprintError, problem
from conductor_nb.model.types import check_type

if TYPE_CHECKING:
    from conductor_nb.model.blueprint import Blueprint


class ResultCache(Protocol):
    """Where cached node outputs live (the storage layer provides one)."""

    def get(self, key: str) -> dict[str, Any] | None: ...

    def put(self, key: str, outputs: Mapping[str, Any]) -> None: ...


@dataclass
class RunOptions:
    concurrency: int = 8
    executor: Any = None
    fail_fast: bool = False
    cache: bool | None = None  # None: each node's cache setting; True/False: every node
    breakpoints: Sequence[str] = ()
    paused: bool = False
    type_limits: Mapping[str, int] = field(default_factory=dict)
    slow_motion: float = 0.0
    faults: Mapping[str, Any] = field(default_factory=dict)
    fault_rate: float = 0.0
    fault_seed: int | None = None
    history: Any = None  # None = the default history; False = do not record
    result_cache: Any = None  # a ResultCache; None = the default when caching is used
    env: bool = False  # expose os.environ to templates as `env`
    capture: bool = True  # capture stdout/stderr/logging into node logs
    settings: Mapping[str, Any] = field(default_factory=dict)  # for node types (file roots...)
    run_id: str | None = None
    completed: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Outputs of nodes that already succeeded (resume): they are reused, never run again."""

    def caches(self, node: Any) -> bool:
        """Whether ``node``'s result may come from (and go to) the result cache."""
        return bool(node.cache) if self.cache is None else self.cache

    @classmethod
    def from_kwargs(cls, options: Mapping[str, Any]) -> RunOptions:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(options) - known)
        if unknown:
            raise TypeError(
                f"unknown run option{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}; options: {', '.join(sorted(known))}"
            )
        made = cls(**options)
        made.check()
        return made

    def check(self) -> None:
        """Reject option values the engine cannot work with, naming the option."""
        problems = [
            f"{name}: {why}"
            for name, why in (
                ("concurrency", _whole(self.concurrency, minimum=1)),
                ("slow_motion", _seconds(self.slow_motion)),
                ("fault_rate", _fraction(self.fault_rate)),
                ("type_limits", _limits(self.type_limits)),
                ("breakpoints", _names(self.breakpoints)),
                ("settings", None if isinstance(self.settings, Mapping) else "expected a mapping"),
                ("faults", None if isinstance(self.faults, Mapping) else "expected a mapping"),
            )
            if why
        ]
        if problems:
            raise ValueError("bad run option " + "; ".join(problems))


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


def _names(value: Any) -> str | None:
    if isinstance(value, str) or not all(isinstance(n, str) for n in value):
        return f"expected a list of node ids, got {value!r}"
    return None


def _type_mismatch(type_name: str, value: Any) -> str | None:
    if type_name in ("str", "path") and isinstance(value, os.PathLike):
        return None  # a Path for a path param: templates render it as text
    return check_type(type_name, value)


def new_run_id() -> str:
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{uuid.uuid4().hex[:6]}"


def resolve_params(bp: Blueprint, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """The run's param values: the given ones (checked against the declared types), then
    defaults. Every problem (unknown, missing, mistyped) is reported at once."""
    given = dict(given or {})
    unknown = [k for k in given if k not in bp.params]
    problems = [
        problem(
            f"params.{k}",
            f"blueprint {bp.id!r} has no param {k!r}",
            f"declared params: {', '.join(sorted(bp.params)) or 'none'}",
        )
        for k in unknown
    ]
    values = {}
    for name, spec in bp.params.items():
        if name in given:
            values[name] = given[name]
            mismatch = _type_mismatch(spec.type, given[name])
            if mismatch:
                problems.append(
                    problem(
                        f"params.{name}",
                        f"param {name!r} is declared {spec.type}: {mismatch}",
                        f"fix: pass a value of type {spec.type} (the CLI converts -p text; "
                        "Python does not)",
                    )
                )
        elif spec.required and spec.default is None:
            problems.append(
                problem(
                    f"params.{name}",
                    f"param {name!r} is required"
                    + (f" ({spec.description})" if spec.description else ""),
                )
            )
        else:
            values[name] = spec.default
    if problems:
        raise BlueprintError(problems, name=bp.id, source=bp.source)
    return values
