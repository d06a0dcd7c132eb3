"""Running blueprint nodes on a Dask cluster (``dask.distributed``).

:class:`DaskExecutor` submits each node's function to the cluster and hands the
engine the resulting :class:`distributed.Future`, not the value: a node's
outputs stay on the workers and travel to downstream nodes as futures nested in
their keyword arguments (Dask resolves those on the worker that runs the
consumer), so a large intermediate result never passes through the client.
Values come back only when the engine must read them (templates that mention
``inputs``, via :meth:`materialize`), when a node runs locally, or when the
user reads ``run.outputs`` (:meth:`resolve`).

The model, step by step:

- ``submit`` sends one task per node, keyed ``"<node-type>-<uuid>"``. The prefix
  is the node *type*: the scheduler keeps per-prefix bookkeeping, and one prefix
  per node made a 10,000-node fan-out quadratic.
- The task is a small wrapper (:func:`run_node`) that calls the function (async
  functions in a fresh event loop in the worker thread), checks a multi-output
  result's shape where the node type is known, and captures what the function
  prints or logs. Captured lines go to the client as a Dask event on this
  executor's topic, ahead of the task's completion on the same ordered streams,
  and reach the node's record through the run's log sink.
- Completion is bridged with ``Future.add_done_callback`` and
  ``loop.call_soon_threadsafe``: no thread blocks per node, and the engine's
  loop stays free. A task that failed re-raises the original exception (type,
  message and the worker's traceback), so retries and error messages work.
- Before the first node of a run (:meth:`prepare`), the cluster is checked and the
  user's code shipped (:mod:`~conductor_nb.engine.dask_remote`): versions must match,
  the modules defining the node functions travel by value, and each distinct function
  (bodies' nodes included) must load on every worker. Any problem fails the run once.
  What was found is kept while the cluster has the same workers
  (:mod:`~conductor_nb.engine.dask_check`): later runs pay one scheduler round trip.
- Cancellation (``run.cancel()``, a timeout) releases the Dask futures at once, in one
  batch per loop turn. Tasks already running on a worker cannot be interrupted by Dask:
  the executor asks the scheduler which ones are, says so (the node's log and a
  ``conductor_nb.dask`` warning), and sets the cancel event of those whose function takes
  a ``NodeContext``, so a function that checks ``ctx.cancelled`` stops.
- ``split_outputs`` maps a remote result onto ports without fetching it: one
  port keeps the future itself; more ports each get a tiny selector task.
- Nodes that steer the run (``Call.local``: ``if`` returns ``SKIP`` to the
  engine; ``loop``, ``parallel`` and ``group`` run sub-blueprints) run on the
  engine's loop, after their inputs are gathered. Other nodes that take a
  ``NodeContext`` run on the cluster with a picklable snapshot of it.

Lifecycle: with no client or address, a small ``LocalCluster`` starts on the
first ``start()``. ``close()`` (called at the end of every run) does not shut
the cluster down: the run's records hold futures that live on it, and
``run.outputs``, ``retry`` and ``rerun`` need them after the run ends. Call
:meth:`DaskExecutor.shutdown` (or use the executor as a context manager) to
stop a cluster or client it started; a Client you pass in is never closed.
Unreferenced executors shut their own cluster down when garbage collected.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import threading
import uuid
import weakref
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from conductor_nb._extras import require
from conductor_nb.engine import capture, dask_check, dask_remote
from conductor_nb.engine.executors import (
    Call,
    Executor,
    LocalExecutor,
    call_to_completion,
    detach,
)
from conductor_nb.errors import ConductorError, ExecutorError

if TYPE_CHECKING:
    from distributed import Client, Future

    from conductor_nb.engine.plan import Plan
    from conductor_nb.model.types import NodeType

log = logging.getLogger("conductor_nb.dask")

_LOCAL_CLUSTER_DEFAULTS: dict[str, Any] = {
    "n_workers": 2,
    "threads_per_worker": 1,
    "processes": True,
    "host": "127.0.0.1",
    "dashboard_address": "127.0.0.1:0",  # ":0" would bind every interface
    "worker_dashboard_address": "127.0.0.1:0",  # in-process workers serve one too
}


def _on_loopback(link: str) -> str:
    parts = urlsplit(link)
    port = f":{parts.port}" if parts.port else ""
    return urlunsplit(parts._replace(netloc=f"127.0.0.1{port}"))


def cluster_options(given: dict[str, Any]) -> dict[str, Any]:
    """The LocalCluster options: ours, then the user's. Everything listens on 127.0.0.1
    unless the user passes an address; with ``processes=False`` the workers talk in-process
    (``inproc://``), which takes no host, so our host default is left out."""
    options = {**_LOCAL_CLUSTER_DEFAULTS, **given}
    if options.get("processes") is False and "host" not in given:
        del options["host"]
    return options


class DaskExecutor(Executor):
    """Runs node functions on a Dask cluster; results stay there until someone reads them.

    ``client_or_address`` is a :class:`distributed.Client`, a scheduler address
    (``"tcp://10.0.0.5:8786"``) or ``None`` for a LocalCluster started on first use
    (``local_cluster_kwargs`` go to it; by default 2 worker processes, 1 thread each).

    >>> run = bp.run(executor=cnb.DaskExecutor(client))  # doctest: +SKIP
    """

    name = "dask"

    def __init__(
        self,
        client_or_address: Any = None,
        *,
        connect_timeout: float = 10.0,
        **local_cluster_kwargs: Any,
    ) -> None:
        require("distributed", "dask", "the Dask executor")
        if client_or_address is not None and local_cluster_kwargs:
            raise TypeError(
                "LocalCluster options were given together with a client or address; "
                "pass one or the other"
            )
        if client_or_address is not None and not (
            isinstance(client_or_address, str) or _is_client(client_or_address)
        ):
            raise TypeError(
                "DaskExecutor takes a distributed.Client, a scheduler address such as "
                f"'tcp://127.0.0.1:8786', or nothing (got {type(client_or_address).__name__!r})"
            )
        self._target = client_or_address
        self._connect_timeout = connect_timeout  # seconds to reach a scheduler address
        self._cluster_kwargs = cluster_options(local_cluster_kwargs)
        self._client: Client | None = client_or_address if _is_client(client_or_address) else None
        self._cluster: Any = None
        self._owns_client = False
        self._topic = f"conductor-nb-logs-{uuid.uuid4().hex[:12]}"
        self._subscribed = False
        self._sinks: dict[str, capture.Sink] = {}
        self._connect_lock = threading.Lock()
        self._local = LocalExecutor()
        self._canceller: concurrent.futures.ThreadPoolExecutor | None = None
        self._cancelling: list[_Cancelled] = []  # cancelled this loop turn, sent together
        self._events_set: set[str] = set()  # cancel events this executor set on the cluster
        self._check = dask_check.ClusterCheck()  # what the cluster was found to have
        self._shipped: dict[int, tuple[Any, dask_remote.ShippedFunction]] = {}  # this run's
        self._finalizer: weakref.finalize[Any, DaskExecutor] | None = None

    # ---------------------------------------------------------------- lifecycle
    @property
    def client(self) -> Client:
        """The connected client (after ``start()``, or once a Client was passed in)."""
        if self._client is None:
            raise ExecutorError(
                "the Dask executor has not started: await executor.start() (or call "
                "executor.connect()) first"
            )
        return self._client

    @property
    def dashboard_link(self) -> str | None:
        """The Dask dashboard's address, when connected and the scheduler serves one."""
        if self._client is None:
            return None
        try:
            link = str(self._client.dashboard_link)
        except Exception:  # no dashboard (bokeh missing, dashboard disabled)
            return None
        return _on_loopback(link) if self._binds_loopback() else link

    def _binds_loopback(self) -> bool:
        """Our own cluster with its dashboard on 127.0.0.1 (distributed's link names the
        machine's address when the workers are in-process, where nothing answers)."""
        given = str(self._cluster_kwargs.get("dashboard_address", ""))
        return self._cluster is not None and given.startswith("127.0.0.1:")

    def connect(self) -> None:
        """Connect now (or start the LocalCluster), blocking: a scheduler address that
        answers nothing fails here, before a run starts."""
        self._connect()

    async def start(self) -> None:
        """Connect (or start a LocalCluster) off the event loop; a no-op once connected."""
        if self._client is None or not self._subscribed:
            await asyncio.to_thread(self._connect)
        await self._local.start()

    def _connect(self) -> None:
        with self._connect_lock:
            if self._client is None:
                distributed = require("distributed", "dask", "the Dask executor")
                if isinstance(self._target, str):
                    self._client = self._client_at(distributed, self._target)
                else:
                    self._cluster = distributed.LocalCluster(**self._cluster_kwargs)
                    self._client = distributed.Client(self._cluster)
                self._owns_client = True
                self._finalizer = weakref.finalize(
                    self, _shutdown_owned, self._client, self._cluster
                )
            if not self._subscribed:
                self._client.subscribe_topic(self._topic, _weak_handler(self._on_log_event))
                self._subscribed = True

    def _client_at(self, distributed: Any, address: str) -> Client:
        try:
            return distributed.Client(address, timeout=self._connect_timeout)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ExecutorError(
                f"cannot connect to a Dask scheduler at {address} within "
                f"{self._connect_timeout:g}s ({why})",
                hints=(
                    "is a Dask scheduler running there? start one with `dask scheduler` (it "
                    "listens on port 8786), or leave the address out to start a local "
                    "cluster; a slow network may need a longer connect timeout",
                ),
            ) from None

    async def close(self) -> None:
        """End of a run: local resources go; the cluster and its results stay (see above)."""
        await self._local.close()

    def shutdown(self) -> None:
        """Stop what this executor started (its client, its LocalCluster). Blocking."""
        if self._canceller is not None:
            self._canceller.shutdown(wait=True)
            self._canceller = None
        if self._client is not None and self._subscribed:
            with contextlib.suppress(Exception):
                self._client.unsubscribe_topic(self._topic)
            self._clear_events()
        self._subscribed = False
        if self._finalizer is not None:
            self._finalizer()  # closes the owned client and cluster, once
            self._finalizer = None
        if self._owns_client:
            self._client = self._cluster = None
            self._owns_client = False

    def __enter__(self) -> DaskExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()

    def __repr__(self) -> str:
        scheduler = getattr(self._client, "scheduler", None)
        where = getattr(scheduler, "address", None) or "not started"
        return f"<DaskExecutor {where}>"

    # --------------------------------------------------------------- running
    async def prepare(self, plan: Plan) -> None:
        """Before a run's first node: versions match, user code is shipped, and every node
        function loads on the cluster; otherwise the run fails once, saying what to fix."""
        functions = dask_remote.node_functions(plan)  # bodies' nodes included
        self._shipped.clear()  # pickled again for each run: they capture module globals
        await asyncio.to_thread(self._check_cluster, functions)

    def _check_cluster(self, functions: dict[str, Any]) -> None:
        if self._in_process():
            return  # the workers are threads of this process: same code, same versions
        self._check.run(self.client, self._address(), functions, lambda fn: self._ship(fn).blob)

    def _ship(self, fn: Any) -> Any:
        """``fn`` as it travels to the workers (pickled once per run)."""
        if self._in_process():
            return fn  # workers in this process call the very function (and see its globals)
        held = self._shipped.get(id(fn))
        if held is not None and held[0] is fn:
            return held[1]
        dask_remote.ship_modules([getattr(fn, "__module__", "")])
        shipped = dask_remote.ShippedFunction.of(fn)
        self._shipped[id(fn)] = (fn, shipped)  # the function is held: its id stays its own
        return shipped

    def _in_process(self) -> bool:
        return self._address().startswith("inproc://")

    def _address(self) -> str:
        scheduler = getattr(self._client, "scheduler", None)
        return str(getattr(scheduler, "address", None) or "(not connected)")

    async def submit(self, call: Call) -> Any:
        """Run one node: on the cluster (returns its Future), or locally (returns the value)."""
        await self.start()
        if call.local:
            kwargs = await self.materialize(call.kwargs)
            return await self._local.submit(dataclasses.replace(call, kwargs=kwargs))
        shipped = self._ship(call.fn)
        call = detach(call)
        client = self.client
        key = f"{call.type_name}-{uuid.uuid4().hex}"
        cooperative = call.context_arg is not None and call.context_arg in call.kwargs
        if cooperative:
            assert call.context_arg is not None
            context = dask_remote.ClusterContext.around(
                call.kwargs[call.context_arg], dask_remote.cancel_event_name(key)
            )
            call = dataclasses.replace(call, kwargs={**call.kwargs, call.context_arg: context})
        sink = capture.current_sink.get()
        if sink is not None:
            self._sinks[key] = sink
        try:
            future = client.submit(
                run_node,
                shipped,
                key,
                self._topic if sink is not None else None,
                call.kwargs,  # positional: a node's inputs may be named like submit's options
                key=key,
                resources=dict(call.resources) or None,
                pure=False,
            )
            try:
                await self._settled(future)
            except asyncio.CancelledError:
                self._cancel_soon(_Cancelled(future, call.node_id, sink, cooperative))
                raise
        finally:
            self._sinks.pop(key, None)
        return future

    async def _settled(self, future: Future) -> None:
        """Wait for ``future`` without blocking a thread; raise the task's own error."""
        loop = asyncio.get_running_loop()
        waiter: asyncio.Future[tuple[Any, Any, Any]] = loop.create_future()

        def deliver(outcome: tuple[Any, Any, Any]) -> None:
            if not waiter.done():
                waiter.set_result(outcome)

        def on_done(fut: Future) -> None:  # a Dask callback thread
            status, error, tb = fut.status, None, None
            if status == "error":
                error, tb = fut.exception(), fut.traceback()
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting
                loop.call_soon_threadsafe(deliver, (status, error, tb))

        future.add_done_callback(on_done)
        status, error, tb = await waiter
        if status == "finished":
            return
        if error is not None:
            if type(error).__name__ == "KilledWorker":
                raise _worker_died(error) from error
            raise error.with_traceback(tb)
        raise RuntimeError(f"the Dask task {future.key!r} was {status} on the cluster")

    def _cancel_soon(self, cancelled: _Cancelled) -> None:
        """Release a cancelled node's future; the nodes cancelled in one loop turn (a run's
        cancel) go to the cluster together, off the loop (they are round trips)."""
        if self._client is None:
            return
        if not self._cancelling:
            asyncio.get_running_loop().call_soon(self._send_cancels)
        self._cancelling.append(cancelled)

    def _send_cancels(self) -> None:
        batch, self._cancelling = self._cancelling, []
        if not batch:
            return
        if self._canceller is None:
            self._canceller = concurrent.futures.ThreadPoolExecutor(
                1, thread_name_prefix="conductor-dask-cancel"
            )
        self._canceller.submit(self._cancel_on_cluster, batch)

    def _cancel_on_cluster(self, batch: list[_Cancelled]) -> None:
        """Which cancelled tasks were running, their cancel events, then the release."""
        from distributed import Event

        client = self._client
        if client is None:
            return
        keys = [str(item.future.key) for item in batch]
        try:
            running = client.run_on_scheduler(dask_remote.on_scheduler_running, keys=keys)
        except Exception:  # the scheduler is gone: nothing runs there any more
            running = {}
        stopped, left = [], []
        for item in batch:
            worker = running.get(str(item.future.key))
            if worker is None:
                continue
            if item.cooperative:
                name = dask_remote.cancel_event_name(str(item.future.key))
                with contextlib.suppress(Exception):
                    Event(name, client=client).set()
                    self._events_set.add(name)
                stopped.append(item.node_id)
                text = (
                    f"cancelled while running on Dask worker {worker}: asked it to stop "
                    "(ctx.cancelled is True there now)"
                )
            else:
                left.append(item.node_id)
                text = (
                    f"cancelled while running on Dask worker {worker}, which cannot interrupt "
                    "it: it runs to its end there and its result is dropped (a function that "
                    "takes a NodeContext can stop early by checking ctx.cancelled)"
                )
            if item.sink is not None:
                with contextlib.suppress(Exception):
                    item.sink("log", text + "\n", "WARNING")
        with contextlib.suppress(Exception):
            client.cancel([item.future for item in batch])
        if left or stopped:
            log.warning(_cancel_summary(len(batch), left, stopped))

    def _clear_events(self) -> None:
        """Drop the cancel events this executor set (a cleared event is deleted)."""
        from distributed import Event

        for name in self._events_set:
            with contextlib.suppress(Exception):
                Event(name, client=self._client).clear()
        self._events_set.clear()

    def _on_log_event(self, event: tuple[float, Any]) -> None:
        """Lines a node printed or logged on a worker, routed to its run's log sink."""
        _, message = event
        sink = self._sinks.get(message.get("key", ""))
        if sink is None:
            return
        for stream, text, level in message.get("lines", ()):
            with contextlib.suppress(Exception):  # a log sink must never break a run
                sink(stream, text, level)

    # ------------------------------------------------------- remote values
    def split_outputs(self, node_type: NodeType, result: Any) -> dict[str, Any]:
        """Output ports of a remote result, as futures; local results split as usual."""
        if not _is_future(result):
            return node_type.split_outputs(result)
        names = [port.name for port in node_type.outputs]
        if len(names) == 1:
            return {names[0]: result}
        client = self.client
        mode = node_type.output_mode
        outputs = {names[0]: result} if mode == "single" else {}
        for name in names[1:] if mode == "single" else names:
            outputs[name] = client.submit(
                port_value,
                result,
                mode,
                names,
                name,
                key=f"{node_type.name}-{uuid.uuid4().hex}",
                pure=False,
            )
        return outputs

    async def materialize(self, value: Any) -> Any:
        """``value`` with every Dask future in it (nested in dicts, lists, tuples) gathered."""
        if self._client is None or not _has_future(value):
            return value
        return await asyncio.to_thread(self._client.gather, value)

    def resolve(self, value: Any) -> Any:
        """The blocking form of :meth:`materialize`, for user-facing reads."""
        if self._client is None or not _has_future(value):
            return value
        if self._client.status in ("closing", "closed"):
            raise ConductorError(
                "these results stayed on the Dask cluster, and its client is closed now; "
                "read run.outputs (or node outputs) before closing the client or shutting "
                "the executor down"
            )
        return self._client.gather(value)


# ------------------------------------------------------------------ helpers
@dataclasses.dataclass(frozen=True)
class _Cancelled:
    future: Any
    node_id: str
    sink: capture.Sink | None
    cooperative: bool  # its function takes a NodeContext: it can see ctx.cancelled


def _cancel_summary(total: int, left: list[str], stopped: list[str]) -> str:
    def names(ids: list[str]) -> str:
        shown = ", ".join(map(repr, ids[:8]))
        return shown + (f" and {len(ids) - 8} more" if len(ids) > 8 else "")

    parts = [f"cancelled {total} node(s) on the Dask cluster"]
    if left:
        parts.append(
            f"{len(left)} running could not be interrupted (they finish on their workers and "
            f"their results are dropped): {names(left)}"
        )
    if stopped:
        parts.append(
            f"{len(stopped)} running were asked to stop via ctx.cancelled: {names(stopped)}"
        )
    return "; ".join(parts)


def _worker_died(error: BaseException) -> ExecutorError:
    """Dask's KilledWorker, said for a node: the worker process died running it."""
    last = getattr(error, "last_worker", None)
    address = getattr(last, "address", None) or "unknown"
    tries = getattr(error, "allowed_failures", None)
    count = f"{tries + 1} times" if isinstance(tries, int) else "repeatedly"
    return ExecutorError(
        f"the Dask worker running this node died {count} (the last: {address}), so Dask "
        "gave up on it: the function crashed its process (os._exit, a segfault) or it ran "
        "out of memory",
        hints=(
            "see that worker's log; a worker that dies for an unrelated reason is retried by "
            "Dask up to distributed.scheduler.allowed-failures times",
        ),
    )


def _is_client(obj: Any) -> bool:
    if obj is None:
        return False
    from distributed import Client

    return isinstance(obj, Client)


def _is_future(obj: Any) -> bool:
    from distributed import Future

    return isinstance(obj, Future)


def _walk(value: Any, depth: int = 0) -> Iterator[Any]:
    yield value
    if depth > 50:
        return
    if isinstance(value, Mapping):
        for item in value.values():
            yield from _walk(item, depth + 1)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            yield from _walk(item, depth + 1)


def _has_future(value: Any) -> bool:
    from distributed import Future

    return any(isinstance(item, Future) for item in _walk(value))


def _weak_handler(method: Callable[[Any], None]) -> Callable[[Any], None]:
    """A topic handler that does not keep the executor alive (its cluster closes on GC)."""
    ref = weakref.WeakMethod(method)

    def handler(event: Any) -> None:
        target = ref()
        if target is not None:
            target(event)

    return handler


def _shutdown_owned(client: Any, cluster: Any) -> None:
    with contextlib.suppress(Exception):
        client.close()
    if cluster is not None:
        with contextlib.suppress(Exception):
            cluster.close()


# --------------------------------------------------------------- worker side
def run_node(
    fn: Callable[..., Any] | dask_remote.ShippedFunction,
    key: str,
    topic: str | None,
    kwargs: Mapping[str, Any],
) -> Any:
    """On a worker: call a node function, capturing its output lines for ``topic``."""
    function = fn.load() if isinstance(fn, dask_remote.ShippedFunction) else fn
    with capture.collecting(topic is not None) as lines:
        try:
            result = call_to_completion(function, dict(kwargs))
            node_type = getattr(function, "__conductor_node__", None)
            if node_type is not None and node_type.output_mode == "mapping":
                node_type.split_outputs(result)  # a wrong shape fails this node, not a consumer
            return result
        finally:
            if lines and topic is not None:
                _send_lines(topic, key, lines)
            for value in kwargs.values():
                if isinstance(value, dask_remote.ClusterContext):
                    value.release()


def _send_lines(topic: str, key: str, lines: list[tuple[str, str, str]]) -> None:
    from distributed import get_worker

    with contextlib.suppress(Exception):  # not on a worker (a local test call): drop them
        get_worker().log_event(topic, {"key": key, "lines": lines})


def port_value(value: Any, mode: str, names: list[str], name: str) -> Any:
    """On a worker: one output port's value out of a node's result."""
    if mode == "single":
        return value.get(name) if isinstance(value, Mapping) else None
    if isinstance(value, Mapping):
        return value[name]
    return value[names.index(name)]


__all__ = ["DaskExecutor", "port_value", "run_node"]
