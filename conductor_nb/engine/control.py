"""The debugger's verbs: step, retry and rerun, on a run's driver (on its loop).

Each verb changes the driver's parts (the scheduler, the stepper, the journal)
and lets the one dispatch loop do the running: a step is a budget of one node
while paused, a retry resets a failed node and what it skipped and restarts the
loop, a rerun forces one node through the loop with pinned inputs whatever the
pause. The :class:`~conductor_nb.engine.run.Run` handle checks names and hands
these calls to the run's loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from conductor_nb.engine.driver import RunDriver
from conductor_nb.engine.events import NodeReset, RunPaused
from conductor_nb.engine.node_runner import NodeRun
from conductor_nb.engine.states import NodeState
from conductor_nb.errors import RunStateError


async def step(driver: RunDriver) -> NodeRun:
    """Run exactly the next ready node (stable order), then stay paused; its NodeRun."""
    if not driver.is_active:
        raise RunStateError(f"run {driver.id} is {driver.status.value}: nothing left to step")
    if not driver.stepper.paused:
        driver.pause("step")
    waiter = driver.stepper.request_step(asyncio.get_running_loop())
    driver.kick()
    record: NodeRun = await waiter
    if driver.is_active and driver.stepper.paused:
        driver.journal.publish(RunPaused(driver.id, reason="step", node_id=driver.scheduler.peek()))
    return record


def reset(driver: RunDriver, node_ids: list[str], reason: str) -> None:
    """Bring nodes back to pending (retry, rerun downstream)."""
    for node_id in node_ids:
        record = driver.node_runs[node_id]
        if record.status is not NodeState.PENDING:
            record.reset()
            driver.journal.publish(NodeReset(driver.id, node_id=node_id, reason=reason))
    driver.scheduler.reset(node_ids)


def _use_current_definition(driver: RunDriver, node_id: str) -> None:
    """The node runs with its type as registered now (its function fixed in a cell)."""
    planned = driver.plan.nodes[node_id]
    current = driver.blueprint.registry.find(planned.type.name, planned.node.version)
    if current is not None:
        driver.current_types[node_id] = current


def retry(driver: RunDriver, node_id: str) -> None:
    """Run a failed, cancelled or skipped node again, then what it held back."""
    record = driver.node_runs[node_id]
    if record.status not in (NodeState.FAILED, NodeState.CANCELLED, NodeState.SKIPPED):
        raise RunStateError(
            f"node {node_id!r} is {record.status.value}; retry() re-runs "
            "a failed, cancelled or skipped node (use rerun() for others)"
        )
    if driver.is_running(node_id):
        raise RunStateError(f"node {node_id!r} is running")
    _use_current_definition(driver, node_id)
    held_back = [
        d for d in driver.plan.descendants(node_id) if not driver.node_runs[d].status.is_success
    ]
    reset(driver, [node_id, *held_back], reason="retry")
    driver.ensure_running()


async def rerun(
    driver: RunDriver, node_id: str, inputs: Mapping[str, Any] | None, downstream: bool
) -> NodeRun:
    """Run one node again through the dispatch loop, with ``inputs`` pinned over its
    recorded ones, whatever the pause; with ``downstream``, its downstream nodes after."""
    if driver.is_running(node_id):
        raise RunStateError(f"node {node_id!r} is running; wait for it first")
    record = driver.node_runs[node_id]
    pinned = {**(record.inputs or {}), **(inputs or {})}
    was_active = driver.is_active
    if node_id in driver.scheduler.ready():  # not run yet: run it now, out of the normal order
        driver.scheduler.take(node_id)
    _use_current_definition(driver, node_id)
    record.reset()
    driver.journal.publish(NodeReset(driver.id, node_id=node_id, reason="rerun"))
    record.pinned = inputs is not None
    waiter = driver.stepper.force(node_id, pinned, asyncio.get_running_loop())
    driver.ensure_running()
    await waiter
    if downstream and record.status.is_success:
        reset(driver, driver.plan.descendants(node_id), reason="rerun")
        driver.ensure_running()
    elif not was_active and driver.task is not None:
        await asyncio.shield(driver.task)  # a finished run is settled again when this returns
    return record
