"""``@cnb.node``: turn a typed function into a registered node type."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

from conductor_nb.model.types import NodeType, Registry
from conductor_nb.model.types import registry as default_registry

F = TypeVar("F", bound=Callable[..., Any])


@overload
def node(fn: F, /) -> F: ...


@overload
def node(
    *,
    name: str | None = None,
    version: int = 1,
    outputs: Sequence[str] | None = None,
    description: str | None = None,
    category: str = "function",
    concurrency: int | None = None,
    side_effects: bool = False,
    registry: Registry | None = None,
) -> Callable[[F], F]: ...


def node(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    version: int = 1,
    outputs: Sequence[str] | None = None,
    description: str | None = None,
    category: str = "function",
    concurrency: int | None = None,
    side_effects: bool = False,
    registry: Registry | None = None,
) -> Any:
    """Register a function as a node type; the function stays callable as before.

    Arguments become input ports (required unless defaulted); the return value is
    the ``output`` port, or, with ``outputs=[...]``, a dict or tuple of named outputs.
    Re-running a cell that redefines the function replaces the registered type.
    ``side_effects=True`` declares that the function changes the world outside the run
    (writes a file, calls an API): its success is committed to the run history before the
    run goes on, so a resume after a kill does not call it again.
    """
    target = registry if registry is not None else default_registry

    def wrap(func: F) -> F:
        node_type = NodeType.from_function(
            func,
            name=name,
            version=version,
            outputs=outputs,
            description=description,
            category=category,
            concurrency=concurrency,
            side_effects=side_effects,
        )
        target.register(node_type)
        try:
            func.__conductor_node__ = node_type  # type: ignore[attr-defined]
        except (AttributeError, TypeError):
            pass
        return func

    if fn is not None:
        return wrap(fn)
    return wrap


def node_type_of(obj: Any) -> NodeType | None:
    """The NodeType behind a decorated function, if any."""
    found = getattr(obj, "__conductor_node__", None)
    return found if isinstance(found, NodeType) else None
