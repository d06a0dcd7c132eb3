"""What a node's execution may see of its run: a narrow host, and the NodeContext.

The driver owns a run's state; running one node needs only a few things from it.
:class:`NodeHost` names them (publish an event, move a record's state, the
template context, the result cache, logging, outputs upstream, running a body),
so :mod:`~conductor_nb.engine.node_runner` and the node functions never hold the
driver. A node function that asks for a ``NodeContext`` gets a
:class:`NodeContextImpl` built on the host, or, when it runs in another process,
a picklable :class:`DetachedContext` with the same facts.
"""

from __future__ import annotations

import datetime as _dt
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from conductor_nb.engine import capture, environ
from conductor_nb.errors import ExecutorError
from conductor_nb.model import templates
from conductor_nb.model.types import NodeType

if TYPE_CHECKING:
    from conductor_nb.engine.driver import RunDriver
    from conductor_nb.engine.events import Event
    from conductor_nb.engine.executors import Executor
    from conductor_nb.engine.node_runner import NodeRun
    from conductor_nb.engine.options import ResultCache, RunOptions
    from conductor_nb.engine.plan import Plan, PlannedNode


@dataclass(frozen=True, eq=False)
class NodeHost:
    """The part of a run that executing its nodes uses (built once per run by the driver)."""

    run_id: str
    plan: Plan
    params: Mapping[str, Any]
    options: RunOptions
    executor: Executor
    cache: ResultCache | None
    handle: Any
    """The Run users hold (``ctx.run``)."""
    publish: Callable[[Event], None]
    template_context: Callable[[Mapping[str, Any]], dict[str, Any]]
    redact: Callable[[Any], Any]
    holds_secret: Callable[[Any], bool]
    """Whether a value holds a secret of the run (outputs that do are not cached)."""
    log: Callable[[str, str, str, str], None]
    """(node id, stream, text, level): a line for a node's record; callable from any thread."""
    outputs_of: Callable[[str], Mapping[str, Any]]
    draw_fault: Callable[[], float]
    is_cancelling: Callable[[], bool]
    run_body: Callable[[Any, Mapping[str, Any], str], Awaitable[dict[str, Any]]]
    """Run a sub-blueprint as part of a node (blueprint, params, prefix) -> its outputs."""


def build_host(driver: RunDriver) -> NodeHost:
    """The host of ``driver``'s nodes: its parts that node execution may use."""
    loop = driver.loop

    def call_soon(fn: Callable[..., Any], *args: Any) -> None:
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(fn, *args)

    def template_context(inputs: Mapping[str, Any]) -> dict[str, Any]:
        started = (  # a datetime, like `now`: {{ run.started_at.strftime('%Y-%m-%d') }}
            _dt.datetime.fromtimestamp(driver.started_at, _dt.UTC) if driver.started_at else None
        )
        env = environ.variables(driver.options.env)
        context = templates.base_context(driver.params, driver.id, started, env=env)
        return {**context, "inputs": dict(inputs)}

    return NodeHost(
        run_id=driver.id,
        plan=driver.plan,
        params=driver.params,
        options=driver.options,
        executor=driver.executor,
        cache=driver.cache,
        handle=driver.handle,
        publish=driver.journal.publish,
        template_context=template_context,
        redact=driver.journal.redact,
        holds_secret=driver.journal.holds_secret,
        log=on_thread(threading.get_ident(), driver.journal.log, call_soon),
        outputs_of=lambda node_id: driver.node_runs[node_id].outputs or {},
        draw_fault=driver.fault_rng.random,
        is_cancelling=lambda: driver.is_cancelling,
        run_body=lambda bp, params, prefix: _bodies().run_body(driver, bp, params, prefix),
    )


def _bodies() -> Any:
    from conductor_nb.engine import bodies  # it builds drivers, which build hosts

    return bodies


class NodeContextImpl:
    """What a node function annotated with ``NodeContext`` (or named ``ctx``) receives.

    The contract: ``run_id``, ``node_id``, ``node`` (the Node: id, params as written,
    settings), ``node_type``, ``run`` (the Run handle), ``attempt``, ``params`` (the
    blueprint params), ``options`` and ``settings`` (run options; e.g. ``file_roots``),
    ``cancelled``, ``log(text)``, ``await run_blueprint(bp, params=..., prefix=...)``
    and ``load_blueprint(name)``.
    """

    def __init__(self, host: NodeHost, planned: PlannedNode, node_run: NodeRun) -> None:
        self._host = host
        self.run: Any = host.handle
        self.run_id: str = host.run_id
        self.node_id = planned.id
        self.node = planned.node
        self.node_type = planned.type
        self.node_run = node_run
        self.params: Mapping[str, Any] = host.params
        self.options: RunOptions = host.options
        self.attempt = node_run.attempts

    @property
    def cancelled(self) -> bool:
        return self._host.is_cancelling()

    @property
    def settings(self) -> Mapping[str, Any]:
        return self.options.settings

    def log(self, text: str, level: str = "INFO") -> None:
        self._host.log(self.node_id, "log", text.rstrip("\n") + "\n", level)

    async def run_blueprint(
        self,
        blueprint: Any,
        params: Mapping[str, Any] | None = None,
        prefix: str | None = None,
    ) -> dict[str, Any]:
        """Run a sub-blueprint as part of this node and return its declared outputs.

        ``params`` are the sub-blueprint's params (values flow in through them); its node
        states appear in this run as ``prefix.inner`` (default prefix: this node's id).
        """
        return await self._host.run_body(blueprint, params or {}, prefix or self.node_id)

    def load_blueprint(self, name: str) -> Any:
        """A blueprint from the configured store, by name (``group`` nodes use this)."""
        from conductor_nb.engine import hooks

        return hooks.load_blueprint(name)

    def detached(self) -> DetachedContext:
        """A picklable snapshot for a node that runs in another process."""
        return DetachedContext(
            run_id=self.run_id,
            node_id=self.node_id,
            node=self.node,
            node_type=self.node_type,
            attempt=self.attempt,
            params=dict(self.params),
            settings=dict(self.settings),
        )


@dataclass(frozen=True)
class DetachedContext:
    """The NodeContext of a node running in a process pool or on a Dask worker.

    It carries the same facts (ids, node, attempt, blueprint params, settings) and
    ``log``; what needs the live run (``run``, ``run_blueprint``, ``load_blueprint``,
    run ``options``) is not there, and asking for it says so. ``cancelled`` stays
    False: the engine cancels such a node by cancelling its task or future.
    """

    run_id: str
    node_id: str
    node: Any
    node_type: NodeType
    attempt: int
    params: dict[str, Any]
    settings: dict[str, Any]
    cancelled: bool = False

    def log(self, text: str, level: str = "INFO") -> None:
        line = text.rstrip("\n") + "\n"
        sink = capture.current_sink.get()
        if sink is None:
            print(line, end="")
        else:
            sink("log", line, level)

    def _engine_only(self, what: str) -> ExecutorError:
        return ExecutorError(
            f"node {self.node_id!r} runs in another process (a process pool or a Dask "
            f"worker), where {what} is not available; a node type that runs sub-blueprints "
            "or steers the run must run beside the engine: give its NodeType "
            "runs_beside_engine=True"
        )

    @property
    def run(self) -> Any:
        raise self._engine_only("the run handle (ctx.run)")

    @property
    def options(self) -> Any:
        raise self._engine_only("the run options (ctx.options; ctx.settings is)")

    async def run_blueprint(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        raise self._engine_only("ctx.run_blueprint")

    def load_blueprint(self, name: str) -> Any:
        raise self._engine_only("ctx.load_blueprint")


class LineSink:
    """A node's log sink: whole lines become NodeLog events (``print("a", 1)`` is one)."""

    __slots__ = ("log", "node_id", "partial", "redact")

    def __init__(self, host: NodeHost, node_id: str) -> None:
        self.log = host.log
        self.redact = host.redact  # the capture tee masks what reaches the terminal too
        self.node_id = node_id
        self.partial: dict[str, str] = {}

    def __call__(self, stream: str, text: str, level: str) -> None:
        if stream != "log":
            buffered = self.partial.get(stream, "") + text
            if "\n" not in buffered and len(buffered) < 65536:
                self.partial[stream] = buffered
                return
            head, _, tail = buffered.rpartition("\n")
            self.partial[stream] = tail
            text = head + "\n" if head or not tail else buffered
        self.log(self.node_id, stream, text, level)

    def flush(self) -> None:
        if not self.partial:
            return
        for stream, text in list(self.partial.items()):
            if text:
                self.log(self.node_id, stream, text, "")
        self.partial.clear()


def on_thread(loop_thread: int, here: Callable[..., None], soon: Callable[..., None]) -> Any:
    """A function that calls ``here`` on the loop's thread, else hands it over with ``soon``."""

    def call(*args: Any) -> None:
        if threading.get_ident() == loop_thread:
            here(*args)
        else:
            soon(here, *args)

    return call
