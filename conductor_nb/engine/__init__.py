"""The engine: plans, the scheduler, the runner, node execution, events, executors.

Layers inside, each leaning only on those before it:

- ``options`` (what a user may say about a run, typed), ``plan`` (compile),
  ``events``, ``states``;
- ``scheduler`` (which node is ready: a pure state machine) and ``stepper``
  (pause, steps, breakpoints: another);
- ``executors`` (where a function runs, by name), ``context`` (the narrow
  ``NodeHost`` a node's execution sees) and ``node_runner`` (one node's attempts);
- ``journal`` (records and the event stream), ``limits`` (slots shared by a run
  and its bodies), ``driver`` (a run's state and its one dispatch loop),
  ``bodies`` (loop/parallel/group bodies through that loop), ``control``
  (step, retry, rerun);
- ``run`` (the handle users hold, wrapping a driver) and ``api`` (where runs
  execute).

Observers (history, views, progress) subscribe to ``events``; nothing reaches
into the driver.
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
