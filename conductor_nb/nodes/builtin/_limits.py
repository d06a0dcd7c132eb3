"""Sandboxed expressions with a time and size budget (``transform``, ``if``, ``loop``).

The language is the template sandbox of :mod:`conductor_nb.model.templates`
(same names, same refusals). On top of it, every call the expression makes (a
method, a filter, a test) first checks a deadline, and the sizes of strings,
lists and bytes it produces are added up against a budget. A runaway
expression (``range(100000) | map('center', 10**6) | list``) therefore fails
with :class:`ExpressionLimitError` after a bounded amount of work, instead of
hanging the node or exhausting memory.
"""

from __future__ import annotations

import contextvars
import functools
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, Undefined
from jinja2.exceptions import SecurityError, UndefinedError

from conductor_nb.model import templates

DEFAULT_TIME_LIMIT = 5.0
DEFAULT_SIZE_LIMIT = 50_000_000


class ExpressionLimitError(RuntimeError):
    """An expression ran past its time or size budget."""


class ExpressionError(templates.TemplateError):
    """An expression failed to parse or evaluate.

    ``detail`` says why without the expression; ``where`` (e.g. "(param 'expression',
    operation map) failed on item 2") says which use of it failed, for callers that
    evaluate it once per item.
    """

    def __init__(self, expression: str, detail: str, where: str = "") -> None:
        if where:
            message = f"expression {expression!r} {where}: {detail}"
        else:
            message = f"in expression {expression!r}: {detail}"
        super().__init__(message)
        self.expression, self.detail, self.where = expression, detail, where

    def __reduce__(self) -> tuple[Any, ...]:  # pickles whole (process pools, Dask workers)
        return (type(self), (self.expression, self.detail, self.where))


@dataclass
class Budget:
    deadline: float
    size_left: int
    expression: str = ""

    def check_time(self) -> None:
        if time.monotonic() > self.deadline:
            raise ExpressionLimitError(
                f"expression {self.expression!r} ran past its time limit; simplify it or "
                "raise the node's time_limit"
            )

    def spend(self, value: Any) -> None:
        if isinstance(value, str | bytes | list | tuple | dict | set):
            self.size_left -= len(value)
            if self.size_left < 0:
                raise ExpressionLimitError(
                    f"expression {self.expression!r} produced more data than its size limit "
                    "allows; it looks like a runaway"
                )


_budget: contextvars.ContextVar[Budget | None] = contextvars.ContextVar("budget", default=None)


def _charge(value: Any) -> Any:
    budget = _budget.get()
    if budget is not None:
        budget.check_time()
        budget.spend(value)
    return value


# The sandbox class of the template module, with every call metered.
_Base: Any = type(templates.environment())


class _MeteredSandbox(_Base):  # type: ignore[misc]
    def call(__self, __context: Any, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        _charge(None)
        return _charge(super().call(__context, __obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        _charge(None)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        _charge(None)
        return super().getitem(obj, argument)


def _metered(fn: Any) -> Any:
    @functools.wraps(fn)  # keeps jinja's pass_context/pass_environment markers
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        _charge(None)
        return _charge(fn(*args, **kwargs))

    return wrapper


@lru_cache(maxsize=1)
def environment() -> _MeteredSandbox:
    base = templates.environment()
    env = _MeteredSandbox(undefined=StrictUndefined, autoescape=False)
    env.intercepted_binops = base.intercepted_binops
    env.globals = {k: _metered(v) if callable(v) else v for k, v in base.globals.items()}
    env.filters = {k: _metered(v) for k, v in base.filters.items()}
    env.tests = {k: _metered(v) for k, v in base.tests.items()}
    return env


@lru_cache(maxsize=1024)
def _compiled(expr: str) -> Any:
    return environment().compile_expression(expr, undefined_to_none=False)


def check(expr: str) -> str | None:
    """Why ``expr`` is not a valid expression, or None."""
    try:
        _compiled(expr)
    except TemplateSyntaxError as exc:
        return _syntax(exc)
    return None


def _syntax(exc: TemplateSyntaxError) -> str:
    """Jinja's parser speaks of templates ("unexpected 'end of template'"); say expression."""
    message = templates.expression_syntax(exc).replace("'end of expression'", "end of expression")
    if message.endswith("chunk after expression"):
        message += " (two values with no operator between them?)"
    return message


@contextmanager
def budget(
    expression: str,
    time_limit: float = DEFAULT_TIME_LIMIT,
    size_limit: int = DEFAULT_SIZE_LIMIT,
) -> Iterator[Budget]:
    """One budget shared by every evaluation inside the block (e.g. all items of a map)."""
    spent = Budget(time.monotonic() + time_limit, size_limit, expression)
    token = _budget.set(spent)
    try:
        yield spent
    finally:
        _budget.reset(token)


def evaluate(expr: str, names: Mapping[str, Any]) -> Any:
    """Evaluate ``expr`` under the current budget; errors are :class:`ExpressionError`."""
    try:
        result = _compiled(expr)(**names)
        if isinstance(result, Undefined):  # an unsafe or missing name: raise its error now
            result._fail_with_undefined_error()
        return _charge(result)
    except TemplateSyntaxError as exc:
        raise ExpressionError(expr, _syntax(exc)) from None
    except UndefinedError as exc:
        available = ", ".join(sorted(names))
        raise ExpressionError(expr, f"{exc.message} (names available: {available})") from None
    except SecurityError as exc:
        raise ExpressionError(expr, f"refused by the sandbox: {exc}") from None
    except ExpressionLimitError:
        raise
    except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
        raise ExpressionError(expr, f"{type(exc).__name__}: {exc}") from None
