"""The engine: plans, the scheduler, the runner, node execution, events, executors.

Layers inside: ``options`` (what a user may say about a run, typed) and ``plan``
(compile) -> ``scheduler`` (pure state machine) -> ``executors`` (where a function
runs, by name) and ``node_runner`` (one node's attempts) -> ``limits`` (slots shared by
a run and its bodies) and ``driver`` (a run's state and dispatch loop) -> ``run`` (the
handle users hold) -> ``api`` (where runs execute). Observers (history, views,
progress) subscribe to ``events``; nothing reaches into the runner.
"""

from conductor_nb.engine.events import (
    Event,
    NodeCached,
    NodeCancelled,
    NodeEvent,
    NodeFailed,
    NodeLog,
    NodeQueued,
    NodeReset,
    NodeRetrying,
    NodeSkipped,
    NodeStarted,
    NodeSucceeded,
    RunFinished,
    RunPaused,
    RunProgress,
    RunResumed,
    RunStarted,
)
from conductor_nb.engine.executors import Call, Executor, LocalExecutor, ProcessExecutor
from conductor_nb.engine.node_runner import NodeRun
from conductor_nb.engine.options import DebugOptions, RunOptions
from conductor_nb.engine.plan import Plan, compile_plan
from conductor_nb.engine.run import Run
from conductor_nb.engine.scheduler import Scheduler
from conductor_nb.engine.states import NodeState, RunState

__all__ = [
    "Call",
    "DebugOptions",
    "Event",
    "Executor",
    "LocalExecutor",
    "NodeCached",
    "NodeCancelled",
    "NodeEvent",
    "NodeFailed",
    "NodeLog",
    "NodeQueued",
    "NodeReset",
    "NodeRetrying",
    "NodeRun",
    "NodeSkipped",
    "NodeStarted",
    "NodeState",
    "NodeSucceeded",
    "Plan",
    "ProcessExecutor",
    "Run",
    "RunFinished",
    "RunOptions",
    "RunPaused",
    "RunProgress",
    "RunResumed",
    "RunStarted",
    "RunState",
    "Scheduler",
    "compile_plan",
]
