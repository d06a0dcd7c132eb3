"""Executors: where a node's function actually runs.

The node runner hands an executor a :class:`Call` (function, keyword arguments
and the node it belongs to) and awaits the result. Executors differ only in
*where*: :class:`LocalExecutor` runs async functions on the run's event loop
and sync ones in a thread pool (so a notebook kernel stays responsive);
:class:`ProcessExecutor` runs them in worker processes; the Dask executor sends
them to a cluster. Events, retries, timeouts and debugging are the same on all.

Cancelling a sync function running in a thread cannot stop the thread: the
node is marked cancelled at once and the thread's result, when it comes, is
dropped. Functions that must stop (shell commands) watch ``ctx.cancelled``
or run in a subprocess that is killed.

Nodes that steer the run (``if`` hands SKIP to the engine; ``loop``,
``parallel`` and ``group`` run sub-blueprints) have a node type marked
``runs_beside_engine``: their calls are ``local`` and run on the engine's loop
whatever the executor. Every other node may run in another process: there its
``NodeContext`` is a picklable snapshot (:func:`detach`), and what it prints or
logs travels back with the result into the node's record.

Executors have names in one registry (:func:`register_executor`): the API
(``executor="process"``), the CLI's ``--executor`` choices and its
``--scheduler`` flag all read it, so adding an executor is one module and one
registration. The capabilities some executors have (keeping results remote,
a dashboard, connecting early, stopping workers) are methods of
:class:`Executor` with defaults that do the plain thing.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import pickle
from collections.abc import Callable
from concurrent.futures import Executor as _PoolExecutor
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, ClassVar

from conductor_nb import _children
from conductor_nb.engine import capture
from conductor_nb.engine.threads import ThreadLane
from conductor_nb.errors import RunOptionError, UnknownNameError

if TYPE_CHECKING:
    from conductor_nb.model.types import NodeType


@dataclass
class Call:
    fn: Callable[..., Any]
    kwargs: dict[str, Any]
    node_id: str
    type_name: str
    resources: dict[str, float] = field(default_factory=dict)
    key: str = ""
    local: bool = False  # steers the run: runs on the engine's loop on every executor
    context_arg: str | None = None  # the keyword holding the node's NodeContext, if any


def detach(call: Call) -> Call:
    """``call`` ready for another process: its NodeContext becomes a picklable snapshot."""
    name = call.context_arg
    if name is None or name not in call.kwargs:
        return call
    return replace(call, kwargs={**call.kwargs, name: call.kwargs[name].detached()})


class Executor:
    """Runs node functions. Subclass it and implement :meth:`submit`; every other method
    has a default that fits an executor whose results are plain local values.

    ``start``/``close`` bracket each run; ``shutdown`` stops what the executor started
    (workers, a cluster) for good. Executors that keep results where they were computed
    (Dask) override ``split_outputs``, ``materialize`` and ``resolve``.
    """

    name: ClassVar[str] = ""
    inline_async: ClassVar[bool] = False
    """Async node functions may be awaited on the engine's loop directly (no executor hop)."""

    async def start(self) -> None:
        """Get ready for a run (called at its start, on the run's loop)."""

    async def prepare(self, plan: Any) -> None:
        """Check, once per run and before any node is dispatched, that ``plan``'s nodes can
        run here (the Dask executor ships user code and compares versions with the
        cluster). Raise a :class:`~conductor_nb.errors.ConductorError` to fail the run once,
        instead of every node with the same error."""

    async def submit(self, call: Call) -> Any:
        """Run one call and return its result (or raise its exception)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement submit()")

    async def close(self) -> None:
        """The run ended (its results may still be read: keep what they need)."""

    def shutdown(self) -> None:
        """Stop what this executor started (workers, a cluster); it may start again later."""

    def connect(self) -> None:
        """Reach remote resources now, so a bad address fails before a run starts
        (blocking; the default has nothing to reach)."""

    def thread_lane(self) -> ThreadLane | None:
        """Worker threads in this process that the engine may hand plain sync calls to
        directly (:mod:`~conductor_nb.engine.follow`); None: every call goes through
        :meth:`submit`."""
        return None

    @property
    def dashboard_link(self) -> str | None:
        """Where to watch the executor work (a Dask dashboard), if anywhere."""
        return None

    def split_outputs(self, node_type: NodeType, result: Any) -> dict[str, Any]:
        """A node's result mapped onto its output ports."""
        return node_type.split_outputs(result)

    async def materialize(self, value: Any) -> Any:
        """``value`` with remote parts fetched (templates must read the values themselves)."""
        return value

    def resolve(self, value: Any) -> Any:
        """The same, blocking, for what users read (``run.outputs``)."""
        return value


class LocalExecutor(Executor):
    """Async functions on the event loop; sync functions in a thread pool."""

    name = "local"
    inline_async = True

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers
        self._pool: ThreadLane | None = None

    async def start(self) -> None:
        if self._pool is None:
            workers = self.max_workers or 32  # started only while all are busy
            self._pool = ThreadLane(workers, name="conductor-node")

    async def submit(self, call: Call) -> Any:
        if inspect.iscoroutinefunction(call.fn):
            return await call.fn(**call.kwargs)
        if self._pool is None:
            await self.start()
        assert self._pool is not None
        # results come back in batches; logs and the node context follow into the thread
        result = await self._pool.call(call.fn, call.kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    def thread_lane(self) -> ThreadLane | None:
        """The pool (started by :meth:`start`), unless a subclass runs calls its own way."""
        return self._pool if type(self).submit is LocalExecutor.submit else None

    async def close(self) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the thread pool (threads still running finish on their own)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown()


class ProcessExecutor(Executor):
    """Runs node functions in worker processes (CPU-bound work, isolation).

    Functions and values travel pickled; functions defined in a notebook travel with
    cloudpickle when it is installed (it comes with the ``dask`` extra). The worker
    pool starts with the first node and outlives the run (starting one costs about a
    second): ``executor="process"`` shares one per process; call :meth:`shutdown` to
    stop an executor's workers (they also stop when it is garbage collected or the
    interpreter exits). A pool broken by a dying worker is replaced on the next call.
    """

    name = "process"

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers
        self._pool: _PoolExecutor | None = None
        self._local = LocalExecutor()

    def __repr__(self) -> str:
        workers = self.max_workers or os.cpu_count() or 1
        state = "running" if self._pool is not None else "not started"
        return f"<ProcessExecutor {workers} workers, {state}>"

    async def start(self) -> None:
        if self._pool is None:
            import multiprocessing

            self._pool = ProcessPoolExecutor(
                self.max_workers or os.cpu_count() or 1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_children.die_with_parent,  # workers die with the runner
                initargs=(os.getpid(),),
            )

    async def submit(self, call: Call) -> Any:
        if call.local:
            return await self._local.submit(call)
        await self.start()
        assert self._pool is not None
        sink = capture.current_sink.get()
        payload = dumps((call.fn, detach(call).kwargs, sink is not None))
        loop = asyncio.get_running_loop()
        try:
            blob = await loop.run_in_executor(self._pool, run_pickled, payload)
        except BrokenProcessPool:
            self.shutdown()  # a worker died: the next call starts a fresh pool
            raise
        except Exception as exc:
            capture.replay(getattr(exc, "conductor_lines", ()), sink)  # what it printed first
            raise
        result, lines = pickle.loads(blob)
        capture.replay(lines, sink)
        return result

    async def close(self) -> None:
        """The end of a run: the workers stay for the next one (see the class docstring)."""

    def shutdown(self) -> None:
        """Stop the worker processes (running calls finish first) and the threads that ran
        the engine-side nodes."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)
        self._local.shutdown()


def dumps(obj: Any) -> bytes:
    try:
        import cloudpickle
    except ImportError:
        return pickle.dumps(obj)
    return cloudpickle.dumps(obj)


def run_pickled(payload: bytes) -> bytes:
    """Worker side: unpickle, run (async functions in a fresh loop), pickle the result.

    With ``collect``, what the function prints or logs is kept and sent back with the
    result (or, on failure, on the exception as ``conductor_lines``).
    """
    fn, kwargs, collect = pickle.loads(payload)
    with capture.collecting(collect) as lines:
        try:
            result = call_to_completion(fn, kwargs)
        except Exception as exc:
            exc.conductor_lines = list(lines)  # type: ignore[attr-defined]
            raise
    return dumps((result, lines))


def call_to_completion(fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
    """Call ``fn``; an async function (or an awaitable result) runs in a fresh event loop."""
    result = fn(**kwargs)
    if inspect.isawaitable(result):
        result = asyncio.run(_await(result))
    return result


async def _await(awaitable: Any) -> Any:
    return await awaitable


# ------------------------------------------------------------------ the registry

ExecutorFactory = Callable[..., Executor]
"""Called with ``address`` (a scheduler to connect to, or None) and ``connect_timeout``
(seconds, or None for the executor's default)."""


@dataclass(frozen=True)
class ExecutorKind:
    """One named executor: how to make it, and what it is for."""

    name: str
    factory: ExecutorFactory
    description: str
    takes_address: bool = False
    """It connects to a scheduler at an address (the CLI's ``--scheduler``)."""

    def create(self, address: str | None = None, connect_timeout: float | None = None) -> Executor:
        return self.factory(address=address, connect_timeout=connect_timeout)


_kinds: dict[str, ExecutorKind] = {}


def register_executor(
    name: str, factory: ExecutorFactory, description: str, *, takes_address: bool = False
) -> None:
    """Make ``executor=name`` (and ``--executor name``) mean ``factory(...)``."""
    _kinds[name] = ExecutorKind(name, factory, description, takes_address)


def executor_kinds() -> dict[str, ExecutorKind]:
    """The registered executors, by name."""
    return dict(_kinds)


def executor_kind(name: str) -> ExecutorKind:
    try:
        return _kinds[name]
    except KeyError:
        raise UnknownNameError("executor", name, _kinds, where="") from None


def make_executor(spec: str | Executor | None) -> Executor:
    """The executor a run option names (None: ``"local"``)."""
    if spec is None:
        spec = "local"
    if isinstance(spec, str):
        return executor_kind(spec).create()
    if not isinstance(spec, Executor):
        raise RunOptionError(
            f"executor: expected a name ({', '.join(map(repr, _kinds))}) or an Executor "
            f"(a subclass of conductor_nb.Executor), got {type(spec).__name__!r}"
        )
    return spec


def _local(address: str | None = None, connect_timeout: float | None = None) -> Executor:
    return LocalExecutor()


_shared_process: ProcessExecutor | None = None


def _shared_process_executor(
    address: str | None = None, connect_timeout: float | None = None
) -> Executor:
    global _shared_process
    if _shared_process is None:
        _shared_process = ProcessExecutor()
    return _shared_process


def _dask(address: str | None = None, connect_timeout: float | None = None) -> Executor:
    from conductor_nb.engine.dask_executor import DaskExecutor

    if address is None:
        return DaskExecutor()
    return DaskExecutor(
        address, connect_timeout=10.0 if connect_timeout is None else connect_timeout
    )


register_executor("local", _local, "async nodes on the event loop, sync ones in threads")
register_executor(
    "process", _shared_process_executor, "nodes in worker processes (shared per process)"
)
register_executor(
    "dask",
    _dask,
    "nodes on a Dask cluster (a local one, or a scheduler at an address)",
    takes_address=True,
)
