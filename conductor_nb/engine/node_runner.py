"""Running one node: resolve inputs, render templates, call it, retry, time out, record.

This module owns a node's attempts. The runner decides *when* a node runs;
this decides *how*: inputs come from upstream outputs (edge order for ``many``
ports), params are rendered in the template sandbox just before the call, the
executor runs the function, the result is split onto output ports. Failures
are retried with delay and exponential backoff when the node allows it; a
timeout counts as a failed attempt. Cancellation always propagates.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conductor_nb.engine import capture
from conductor_nb.engine.context import LineSink, NodeContextImpl, NodeHost
from conductor_nb.engine.events import (
    NodeCached,
    NodeFailed,
    NodeRetrying,
    NodeStarted,
    NodeSucceeded,
)
from conductor_nb.engine.executors import Call
from conductor_nb.engine.states import NodeState
from conductor_nb.errors import NodeExecutionError
from conductor_nb.model import templates
from conductor_nb.model.types import MISSING, SKIP, NodeType, kind_mismatch

if TYPE_CHECKING:
    from conductor_nb.engine.plain import Ended
    from conductor_nb.engine.plan import PlannedNode


@dataclass(slots=True)
class LogLine:
    time: float
    stream: str
    text: str
    level: str = ""


@dataclass(slots=True)
class NodeRun:
    """One node's record in a run."""

    node_id: str
    type: str
    status: NodeState = NodeState.PENDING
    inputs: dict[str, Any] | None = None
    outputs: dict[str, Any] | None = None
    error: NodeExecutionError | None = None
    traceback: str = ""
    attempts: int = 0
    queued_at: float | None = None
    started_at: float | None = None
    finished_at: float | None = None
    logs: list[LogLine] = field(default_factory=list)
    cache_key: str | None = None
    pinned: bool = False
    reason: str = ""  # why it was skipped, cancelled or reset

    @property
    def duration(self) -> float | None:
        if self.started_at is None:
            return None
        end = self.finished_at if self.finished_at is not None else time.time()
        return end - self.started_at

    @property
    def output(self) -> Any:
        """The main output (``output`` port, or the only one)."""
        if not self.outputs:
            return None
        if "output" in self.outputs:
            return self.outputs["output"]
        return next(iter(self.outputs.values()))

    @property
    def log_text(self) -> str:
        return "".join(line.text for line in self.logs)

    def reset(self) -> None:
        self.status = NodeState.PENDING
        self.inputs = self.outputs = self.error = None
        self.traceback = ""
        self.queued_at = self.started_at = self.finished_at = None
        self.cache_key = None
        self.reason = ""

    def __repr__(self) -> str:
        extra = f", error={self.error}" if self.error else ""
        dur = f", {self.duration:.3f}s" if self.duration is not None else ""
        return f"<NodeRun {self.node_id!r} {self.status.value}{dur}{extra}>"


class InjectedFault(RuntimeError):
    """Raised by fault injection (a debugging run option)."""


def resolve_inputs(
    host: NodeHost, planned: PlannedNode, first: Mapping[str, Mapping[str, Any]] | None = None
) -> dict[str, Any]:
    """Values arriving on edges, per input port (``many`` ports get a list); ``first``:
    outputs of nodes not recorded yet (a worker going on with successors reads them)."""
    values: dict[str, Any] = {}
    recorded = host.outputs_of
    outputs_of = (lambda node_id: first.get(node_id) or recorded(node_id)) if first else recorded
    ports = planned.type.facts.inputs_by_name
    for port_name, sources in planned.sources.items():
        port = ports.get(port_name)
        if port is not None and port.many:
            values[port_name] = [outputs_of(src.node).get(src.port) for src in sources]
        else:
            src = sources[0]
            values[port_name] = outputs_of(src.node).get(src.port)
    return values


def edge_mismatch(
    host: NodeHost, planned: PlannedNode, edge_inputs: Mapping[str, Any]
) -> str | None:
    """A value arriving on an edge that plainly cannot fit its port's declared type
    (``rows: list[dict]`` fed a dict), said with the feeding output and its siblings."""
    ports = planned.type.facts.inputs_by_name
    for port_name, sources in planned.sources.items():
        port = ports.get(port_name)
        if port is None or port.many or len(sources) != 1:
            continue
        problem = kind_mismatch(port.type, edge_inputs.get(port_name))
        if problem is None:
            continue
        src = sources[0]
        outputs = host.plan.nodes[src.node].type.outputs
        message = f"input {port_name!r}: {problem} (from {src.node}.{src.port})"
        fitting = sorted(
            (o for o in outputs if _fit(o.type, port.type) is not None),
            key=lambda o: _fit(o.type, port.type) or 0,
        )
        if fitting and src.port not in {o.name for o in fitting}:
            best = fitting[0]
            message += f"; hint: connect {src.node}.{best.name} ({best.type}) instead"
        else:
            listed = ", ".join(f"{o.name} ({o.type})" for o in outputs)
            message += f"; outputs of {src.node!r}: {listed}"
        return message
    return None


def _fit(output_type: str, port_type: str) -> int | None:
    """How well an output of ``output_type`` feeds a ``port_type`` input: 0 the same type,
    1 a table for a list (it arrives as records), 2 the same kind; None when it does not."""
    if output_type == port_type:
        return 0
    kind, out_kind = port_type.split("[", 1)[0], output_type.split("[", 1)[0]
    if out_kind == "table" and kind == "list":
        return 1
    return 2 if out_kind == kind else None


def build_arguments(
    host: NodeHost, planned: PlannedNode, node_type: NodeType, edge_inputs: Mapping[str, Any]
) -> dict[str, Any]:
    """Edge inputs, then rendered param values, then defaults: the function's keywords."""
    params = planned.node.params
    context: dict[str, Any] | None = None  # built only when a value holds a template

    def value_of(name: str) -> Any:
        nonlocal context
        value = params[name]
        if name in node_type.raw_params or not templates.has_template(value):
            return value
        if context is None:
            context = host.template_context(template_inputs(node_type, params, edge_inputs))
        try:
            return templates.render_value(value, context)
        except templates.TemplateError as exc:
            unconnected = [p.name for p in node_type.inputs if p.name not in edge_inputs]
            note = f" (inputs not connected: {', '.join(unconnected)})" if unconnected else ""
            raise templates.TemplateError(f"in {name!r}: {exc}{note}") from None

    kwargs: dict[str, Any] = {}
    for port in node_type.inputs:
        if port.name in edge_inputs:
            kwargs[port.name] = edge_inputs[port.name]
        elif port.name in params:
            kwargs[port.name] = value_of(port.name)
        elif port.default is not MISSING:
            kwargs[port.name] = port.default
    for spec in node_type.params:
        if spec.name in params:
            kwargs[spec.name] = value_of(spec.name)
        elif spec.default is not MISSING:
            kwargs[spec.name] = spec.default
    return kwargs


def template_inputs(
    node_type: NodeType, params: Mapping[str, Any], edge_inputs: Mapping[str, Any]
) -> dict[str, Any]:
    """``inputs`` as templates see them: every input port, fed by its edge, else its literal
    value in the params, else its default (None when it has none)."""
    names: dict[str, Any] = {}
    for port in node_type.inputs:
        if port.name in edge_inputs:
            names[port.name] = edge_inputs[port.name]
        elif port.name in params and not templates.has_template(params[port.name]):
            names[port.name] = params[port.name]
        else:
            names[port.name] = None if port.default is MISSING else port.default
    names.update({k: v for k, v in edge_inputs.items() if k not in names})
    return names


def cache_key(node_type: NodeType, kwargs: Mapping[str, Any]) -> str | None:
    """What a cached result depends on: type, version, code and the call's values.

    Values must be JSON-serialisable (with ``repr`` of other objects as a last resort);
    None when they cannot be turned into a stable key.
    """
    try:
        payload = json.dumps(
            [node_type.name, node_type.version, node_type.source_hash, kwargs],
            sort_keys=True,
            default=_stable_repr,
        )
    except (TypeError, ValueError):
        return None
    return hashlib.sha256(payload.encode()).hexdigest()


def _stable_repr(value: Any) -> Any:
    if isinstance(value, set | frozenset):
        return sorted(map(repr, value))
    if isinstance(value, bytes):
        return hashlib.sha256(value).hexdigest()
    text = repr(value)
    if " at 0x" in text:  # identity-based repr: not stable across runs
        raise TypeError("unstable")
    return text


Outcome = tuple[bool, set[str]]
"""(succeeded, the output ports that are SKIP): what the driver needs from a node."""


async def execute(
    host: NodeHost,
    planned: PlannedNode,
    node_run: NodeRun,
    pinned_inputs: Mapping[str, Any] | None = None,
    node_type: NodeType | None = None,
) -> Outcome:
    """Run one node to its final state: arguments, then the cache, then the attempts."""
    node_type = node_type or planned.type
    pinned = pinned_inputs is not None
    edge_inputs = dict(pinned_inputs or {}) if pinned else resolve_inputs(host, planned)
    if edge_inputs and templates.has_template(planned.node.params):
        edge_inputs = await host.executor.materialize(edge_inputs)  # templates read values
    kwargs = _arguments(host, planned, node_run, node_type, edge_inputs, pinned)
    if kwargs is None:
        return False, set()
    node_run.inputs = host.redact(kwargs)  # what is recorded; the function gets the real values
    # Types with raw params (loop/parallel/group bodies, edit-fields' per-record values)
    # render or run them themselves, so their result depends on more than the call's
    # values: never served from the cache (a body's own nodes are cached one by one).
    use_cache = (
        host.cache is not None and host.options.caches(planned.node) and not node_type.raw_params
    )
    if use_cache:
        node_run.cache_key = cache_key(node_type, kwargs)
        if _served_from_cache(host, planned, node_run):
            return True, _skipped_ports(node_run.outputs)
    if not await _attempts(host, planned, node_run, node_type, kwargs):
        return False, set()
    cached = use_cache and node_run.cache_key and host.cache is not None
    if cached and host.cache is not None and not host.holds_secret(node_run.outputs):
        host.cache.put(node_run.cache_key or "", node_run.outputs or {})  # secrets never do
    return True, _skipped_ports(node_run.outputs)


def _arguments(
    host: NodeHost,
    planned: PlannedNode,
    node_run: NodeRun,
    node_type: NodeType,
    edge_inputs: dict[str, Any],
    pinned: bool,
) -> dict[str, Any] | None:
    """The call's keywords; None when the node already failed (wrong input, bad template)."""
    mismatch = None if pinned else edge_mismatch(host, planned, edge_inputs)
    if mismatch is not None:
        fail_before_call(host, planned, node_run, TypeError(mismatch), f"TypeError: {mismatch}")
        return None
    try:
        kwargs = build_arguments(host, planned, node_type, edge_inputs)
    except templates.TemplateError as exc:
        fail_before_call(host, planned, node_run, exc, f"template error {exc}")
        return None
    if pinned:
        kwargs.update({k: v for k, v in edge_inputs.items() if k in node_type.value_names})
    return kwargs


def _served_from_cache(host: NodeHost, planned: PlannedNode, node_run: NodeRun) -> bool:
    key = node_run.cache_key
    hit = host.cache.get(key) if key and host.cache is not None else None
    if hit is None:
        return False
    node_run.started_at = node_run.finished_at = time.time()
    node_run.outputs = dict(hit)
    host.publish(
        NodeCached(host.run_id, node_id=planned.id, key=key or "", outputs=node_run.outputs)
    )
    return True


async def _attempts(
    host: NodeHost,
    planned: PlannedNode,
    node_run: NodeRun,
    node_type: NodeType,
    kwargs: dict[str, Any],
) -> bool:
    """Call the node until it succeeds or has no attempt left (retry delay and backoff)."""
    node = planned.node
    max_attempts = 1 + max(0, node.retries)
    while True:
        node_run.attempts += 1
        attempt = node_run.attempts
        node_run.started_at = time.time()
        host.publish(
            NodeStarted(host.run_id, node_id=planned.id, attempt=attempt, inputs=node_run.inputs)
        )
        try:
            result = await _attempt(host, planned, node_run, node_type, kwargs)
            outputs = host.executor.split_outputs(node_type, result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if attempt < max_attempts and _retryable(node.retry_on, exc):
                delay = node.retry_delay * (node.retry_backoff ** (attempt - 1))
                host.publish(
                    NodeRetrying(
                        host.run_id,
                        node_id=planned.id,
                        attempt=attempt,
                        delay=delay,
                        error=_describe(exc),
                    )
                )
                if delay > 0:
                    await asyncio.sleep(delay)
                continue
            _fail(host, planned, node_run, exc, _describe(exc))
            return False
        node_run.finished_at = time.time()
        node_run.outputs = outputs
        host.publish(
            NodeSucceeded(
                host.run_id,
                node_id=planned.id,
                duration=node_run.duration or 0.0,
                attempt=attempt,
                outputs=outputs,
                time=node_run.finished_at,
            )
        )
        return True


def record_started(
    host: NodeHost, planned: PlannedNode, node_run: NodeRun, kwargs: dict[str, Any], when: float
) -> None:
    """A worker started ``planned`` at ``when`` (see :mod:`~conductor_nb.engine.follow`)."""
    node_run.attempts += 1
    node_run.started_at = when
    node_run.inputs = host.redact(kwargs)
    host.publish(
        NodeStarted(
            host.run_id,
            node_id=planned.id,
            attempt=node_run.attempts,
            inputs=node_run.inputs,
            time=when,
        )
    )


async def record_ended(
    host: NodeHost, planned: PlannedNode, node_run: NodeRun, ended: Ended
) -> Outcome:
    """A worker ended ``planned``'s call: its success or failure, with the time it ended
    (an awaitable result is awaited here, as the executor does)."""
    outputs, error, finished = ended.outputs, ended.error, ended.finished
    if ended.result is not None:
        try:
            outputs = host.executor.split_outputs(planned.type, await ended.result)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            error = exc
        finished = time.time()
    if error is not None or outputs is None:
        error = error or RuntimeError("the node gave no outputs")
        _fail(host, planned, node_run, error, _describe(error))
        return False, set()
    node_run.finished_at, node_run.outputs = finished, outputs
    host.publish(
        NodeSucceeded(
            host.run_id,
            node_id=planned.id,
            duration=finished - (node_run.started_at or finished),
            attempt=node_run.attempts,
            outputs=outputs,
            time=finished,
        )
    )
    return True, _skipped_ports(outputs)


def _skipped_ports(outputs: Mapping[str, Any] | None) -> set[str]:
    if outputs:
        for value in outputs.values():
            if value is SKIP:
                return {port for port, value in outputs.items() if value is SKIP}
    return _NO_PORTS


_NO_PORTS: set[str] = set()  # shared and never changed: most nodes skip no port


def fail_internal(host: NodeHost, planned: PlannedNode, node_run: NodeRun, exc: Exception) -> None:
    """An engine bug while running the node: it fails with it (the run goes on)."""
    _fail(host, planned, node_run, exc, f"internal error: {exc!r}")


def fail_before_call(
    host: NodeHost, planned: PlannedNode, node_run: NodeRun, exc: Exception, message: str
) -> None:
    """A failure before the function is called counts as an attempt that failed."""
    node_run.attempts += 1
    node_run.started_at = time.time()
    _fail(host, planned, node_run, exc, message)


async def _attempt(
    host: NodeHost,
    planned: PlannedNode,
    node_run: NodeRun,
    node_type: NodeType,
    kwargs: dict[str, Any],
) -> Any:
    node = planned.node
    call_kwargs = node_type.adapt_inputs(dict(kwargs))  # tables as the type hints ask
    if node_type.context_arg:
        call_kwargs[node_type.context_arg] = NodeContextImpl(host, planned, node_run)
    sink = LineSink(host, planned.id) if host.options.capture else None
    token = capture.current_sink.set(sink) if sink is not None else None
    try:
        if host.executor.inline_async and node_type.is_async:
            coro = node_type.fn(**call_kwargs)  # fast path: no executor hop for local async
        else:
            coro = host.executor.submit(_call(planned, node_type, call_kwargs))
        debug = host.options.debug
        if debug.faults or debug.fault_rate:
            coro = _with_faults(host, planned.id, coro)
        if node.timeout:
            try:
                return await asyncio.wait_for(coro, node.timeout)
            except TimeoutError:
                raise TimeoutError(f"timed out after {node.timeout:g}s") from None
        return await coro
    finally:
        if token is not None and sink is not None:
            capture.current_sink.reset(token)
            sink.flush()


def _call(planned: PlannedNode, node_type: NodeType, kwargs: dict[str, Any]) -> Call:
    return Call(
        node_type.fn,
        kwargs,
        planned.id,
        node_type.name,
        dict(planned.node.resources),
        local=node_type.runs_beside_engine,
        context_arg=node_type.context_arg,
    )


async def _with_faults(host: NodeHost, node_id: str, coro: Any) -> Any:
    debug = host.options.debug
    fault = debug.faults.get(node_id)
    if fault is None and debug.fault_rate and host.draw_fault() < debug.fault_rate:
        fault = "fail"
    if fault == "fail":
        coro.close()
        raise InjectedFault(f"fault injected into node {node_id!r}")
    try:
        if isinstance(fault, int | float) and not isinstance(fault, bool):
            await asyncio.sleep(float(fault))
        elif fault == "hang":
            await asyncio.sleep(3600 * 24)
    except BaseException:
        coro.close()  # cancelled while delayed: the node's own call never starts
        raise
    return await coro


def _retryable(retry_on: list[str], exc: BaseException) -> bool:
    if not retry_on:
        return True
    names = {cls.__name__ for cls in type(exc).__mro__} | {
        f"{cls.__module__}.{cls.__name__}" for cls in type(exc).__mro__
    }
    return any(name in names for name in retry_on)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _fail(
    host: NodeHost, planned: PlannedNode, node_run: NodeRun, exc: BaseException, message: str
) -> None:
    node_run.finished_at = time.time()
    node_run.traceback = host.redact("".join(traceback.format_exception(exc)))
    if host.redact(message) != message:  # a secret in the error: keep it out of the chain too
        message = host.redact(message)
        exc = RuntimeError(f"{type(exc).__name__}: {host.redact(str(exc))}")
    attempts = 1 + max(0, planned.node.retries)
    error = NodeExecutionError(
        f"node {planned.id!r} ({planned.type.name}) failed on attempt "
        f"{node_run.attempts}/{attempts}: {message}",
        node_id=planned.id,
        attempt=node_run.attempts,
        attempts=attempts,
        original=exc,
    )
    error.__cause__ = exc
    node_run.error = error
    host.publish(
        NodeFailed(
            host.run_id,
            node_id=planned.id,
            error=message,
            error_type=type(exc).__name__,
            traceback=node_run.traceback,
            attempt=node_run.attempts,
            duration=node_run.duration or 0.0,
        )
    )


__all__ = ["InjectedFault", "LogLine", "NodeContextImpl", "NodeRun", "execute"]
