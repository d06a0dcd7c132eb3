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
``parallel`` and ``group`` run sub-blueprints) are marked ``local`` and run on
the engine's loop whatever the executor. Every other node may run in another
process: there its ``NodeContext`` is a picklable snapshot (:func:`detach`), and
what it prints or logs travels back with the result into the node's record.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import os
import pickle
from collections.abc import Callable
from concurrent.futures import Executor as _PoolExecutor
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from conductor_nb.engine import capture

if TYPE_CHECKING:
    from conductor_nb.model.types import NodeType

ENGINE_SIDE_MODULES = ("conductor_nb.nodes.builtin.control",)
"""Node functions from these modules steer the run, so they run on the engine's loop."""


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


def runs_on_engine(node_type: NodeType) -> bool:
    """Whether a node type must run beside the engine (control flow, sub-blueprints)."""
    return node_type.module in ENGINE_SIDE_MODULES or bool(node_type.raw_params)


def detach(call: Call) -> Call:
    """``call`` ready for another process: its NodeContext becomes a picklable snapshot."""
    name = call.context_arg
    if name is None or name not in call.kwargs:
        return call
    return replace(call, kwargs={**call.kwargs, name: call.kwargs[name].detached()})


@runtime_checkable
class Executor(Protocol):
    """Runs node functions. ``start``/``close`` bracket a run; ``submit`` runs one call."""

    name: str

    async def start(self) -> None: ...

    async def submit(self, call: Call) -> Any: ...

    async def close(self) -> None: ...


# Optional executor methods, used when present (remote executors keep data where it is):
#   split_outputs(node_type, result) -> dict   map a (remote) result onto output ports
#   async materialize(value) -> value          fetch remote values the engine must read
#   resolve(value) -> value                    the same, blocking, for user-facing reads


class LocalExecutor:
    """Async functions on the event loop; sync functions in a thread pool."""

    name = "local"

    def __init__(self, max_workers: int | None = None) -> None:
        self.max_workers = max_workers
        self._pool: ThreadPoolExecutor | None = None

    async def start(self) -> None:
        if self._pool is None:
            workers = self.max_workers or min(32, (os.cpu_count() or 1) + 4)
            self._pool = ThreadPoolExecutor(workers, thread_name_prefix="conductor-node")

    async def submit(self, call: Call) -> Any:
        if inspect.iscoroutinefunction(call.fn):
            return await call.fn(**call.kwargs)
        if self._pool is None:
            await self.start()
        assert self._pool is not None
        ctx = contextvars.copy_context()  # logs and the node context follow into the thread
        loop = asyncio.get_running_loop()
        result = await loop.run_in_executor(self._pool, _run_in_context, ctx, call.fn, call.kwargs)
        if inspect.isawaitable(result):
            result = await result
        return result

    async def close(self) -> None:
        self.shutdown()

    def shutdown(self) -> None:
        """Stop the thread pool (threads still running finish on their own)."""
        pool, self._pool = self._pool, None
        if pool is not None:
            pool.shutdown(wait=False, cancel_futures=True)


def _run_in_context(
    ctx: contextvars.Context, fn: Callable[..., Any], kwargs: dict[str, Any]
) -> Any:
    return ctx.run(fn, **kwargs)


class ProcessExecutor:
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


_shared_process: ProcessExecutor | None = None


def _shared_process_executor() -> ProcessExecutor:
    global _shared_process
    if _shared_process is None:
        _shared_process = ProcessExecutor()
    return _shared_process


def make_executor(spec: str | Executor | None) -> Executor:
    if spec is None or spec == "local":
        return LocalExecutor()
    if spec == "process":
        return _shared_process_executor()
    if spec == "dask":
        from conductor_nb.engine.dask_executor import DaskExecutor

        return DaskExecutor()
    if isinstance(spec, str):
        raise ValueError(f"unknown executor {spec!r}; use 'local', 'process' or 'dask'")
    return spec
