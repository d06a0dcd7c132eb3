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
        return cls(**options)


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
