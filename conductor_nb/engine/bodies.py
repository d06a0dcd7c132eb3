"""Body runs: the sub-blueprints of loop, parallel and group nodes, run inside a node.

A body run is a child :class:`~conductor_nb.engine.driver.RunDriver` driven by the
same loop as any run, awaited inside its container node's task. It shares the
root run's limits (the container lends its permit while the body runs, see
:mod:`~conductor_nb.engine.limits`), result cache, executor and event stream.
Its result is its declared outputs; a failed inner node fails the container with
a :class:`~conductor_nb.errors.NodeExecutionError` naming the inner node by path,
and a cancelled body cancels the container.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from conductor_nb.engine.driver import RunDriver
from conductor_nb.engine.limits import current_permit
from conductor_nb.engine.options import resolve_params
from conductor_nb.engine.plan import compile_plan
from conductor_nb.engine.states import NodeState
from conductor_nb.errors import NodeExecutionError


async def run_body(
    parent: RunDriver, blueprint: Any, params: Mapping[str, Any], prefix: str
) -> dict[str, Any]:
    """Run a sub-blueprint as part of the current node of ``parent``, in its task, with
    that run's options, limits, cache, executor and event stream: its outputs, or its
    failure."""
    child = RunDriver(
        blueprint,
        compile_plan(blueprint),
        resolve_params(blueprint, params),
        parent.options.for_body(parent.executor, parent.cache),
        parent=parent,
        prefix=f"{parent.prefix}.{prefix}" if parent.prefix else prefix,  # the path from the root
    )
    parent.children.append(child)
    try:
        return await drive_body(child, prefix)
    finally:
        parent.children.remove(child)


async def drive_body(child: RunDriver, prefix: str) -> dict[str, Any]:
    """Drive ``child`` to its end in the current task; its outputs or its failure."""
    permit = current_permit.get()
    if permit is None:
        await child.drive()
    else:
        async with permit.lent():  # the body's nodes need the slots, not this node
            await child.drive()
    return body_result(child, prefix)


def body_result(child: RunDriver, prefix: str) -> dict[str, Any]:
    """The body's outputs, or the exception its container node fails with."""
    if child.error is not None:
        raise child.error
    failed = child.journal.failed_nodes()
    if failed:
        error = child.node_runs[failed[0]].error
        inner = f"{prefix}.{failed[0]}"
        raise NodeExecutionError(
            f"inner node {inner!r} failed: {error}",
            node_id=inner,
            attempt=error.attempt if error else 1,
            attempts=error.attempts if error else 1,
            original=error,
        ) from error
    if any(r.status is NodeState.CANCELLED for r in child.node_runs.values()):
        raise asyncio.CancelledError()
    return child.outputs
