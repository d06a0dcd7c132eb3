"""conductor_nb: build, view, run and step through workflow blueprints in Jupyter.

Layers (each imports only those below it)::

    widgets | headless      views in JupyterLab; CLI, papermill, export, reports
    storage                 blueprint stores, run history (SQLite), result cache
    engine                  plan, scheduler, runner, node execution, events, executors
    nodes                   @node, the built-in node library, plugins
    model                   Blueprint, Node, Edge, Port, validation, file format

``import conductor_nb`` loads only the core: no Jupyter, papermill or Dask.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conductor_nb.engine import (
    Event,
    NodeRun,
    NodeState,
    Run,
    RunState,
)
from conductor_nb.engine.executors import (
    Executor,
    LocalExecutor,
    ProcessExecutor,
    register_executor,
)
from conductor_nb.engine.options import DebugOptions, RunOptions
from conductor_nb.errors import (
    BlueprintError,
    ConductorError,
    ExecutorError,
    MissingExtraError,
    NodeExecutionError,
    NodeTypeError,
    Problem,
    RunCancelled,
    RunOptionError,
    RunStateError,
    RunTimeout,
    StoreError,
    UnknownNameError,
    UnknownOptionError,
)
from conductor_nb.model import (
    Blueprint,
    Edge,
    Node,
    NodeContext,
    NodeType,
    ParamField,
    Port,
    Registry,
    registry,
)
from conductor_nb.model.types import SKIP
from conductor_nb.nodes import node

__version__ = "0.1.0"


def load(
    path: Any,
    *,
    registry: Registry | None = None,
    lenient: bool = False,
    path_map: Mapping[str, str] | None = None,
) -> Blueprint:
    """Load a blueprint from a ``.yaml``/``.yml``/``.json`` file.

    An Atomiton flow (the desktop app's ``*.flow.yaml``, any shape) is converted in
    memory; ``lenient=True`` converts what it can and lists the rest in a warning, and
    ``path_map={"/data": "./data"}`` remaps the flow's absolute paths.
    """
    return Blueprint.load(path, registry=registry, lenient=lenient, path_map=path_map)


_LAZY = {
    "BlueprintStore": ("conductor_nb.storage", "BlueprintStore"),
    "runs": ("conductor_nb.storage", "runs"),
    "load_run": ("conductor_nb.storage", "load_run"),
    "resume": ("conductor_nb.storage", "resume"),
    "RunHistory": ("conductor_nb.storage", "RunHistory"),
    "DaskExecutor": ("conductor_nb.engine.dask_executor", "DaskExecutor"),
    "run_notebook": ("conductor_nb.headless.papermill", "run_notebook"),
    "sweep": ("conductor_nb.headless.sweep", "sweep"),
    "record": ("conductor_nb.nodes.record", "record"),
    "BlueprintView": ("conductor_nb.widgets", "BlueprintView"),
}


def _wire_upper_layers() -> None:
    """Point the engine's plug-in points at storage, widgets and headless, imported lazily."""
    import importlib

    from conductor_nb.engine import hooks

    def call(module: str, attr: str) -> Any:
        return lambda *args, **kwargs: getattr(importlib.import_module(module), attr)(
            *args, **kwargs
        )

    hooks.run_created.append(call("conductor_nb.storage", "on_run_created"))
    hooks.set_cache_factory(call("conductor_nb.storage", "default_cache"))
    hooks.set_blueprint_loader(call("conductor_nb.storage", "load_blueprint"))
    hooks.set_view_factory(call("conductor_nb.widgets", "view_run"))
    hooks.set_report_writer(call("conductor_nb.headless.report", "write_report"))


_wire_upper_layers()


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attr = _LAZY[name]
        value = getattr(importlib.import_module(module), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'conductor_nb' has no attribute {name!r}")


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext conductor_nb``: the ``%%blueprint`` cell magic."""
    import importlib  # the facade reaches the widget layer only when Jupyter asks for it

    importlib.import_module("conductor_nb.widgets.magic").register(ipython)


__all__ = [
    "SKIP",
    "Blueprint",
    "BlueprintError",
    "BlueprintStore",
    "BlueprintView",
    "ConductorError",
    "DaskExecutor",
    "DebugOptions",
    "Edge",
    "Event",
    "Executor",
    "ExecutorError",
    "LocalExecutor",
    "MissingExtraError",
    "Node",
    "NodeContext",
    "NodeExecutionError",
    "NodeRun",
    "NodeState",
    "NodeType",
    "NodeTypeError",
    "ParamField",
    "Port",
    "Problem",
    "ProcessExecutor",
    "Registry",
    "Run",
    "RunCancelled",
    "RunHistory",
    "RunOptionError",
    "RunOptions",
    "RunState",
    "RunStateError",
    "RunTimeout",
    "StoreError",
    "UnknownNameError",
    "UnknownOptionError",
    "__version__",
    "load",
    "load_ipython_extension",
    "load_run",
    "node",
    "record",
    "register_executor",
    "registry",
    "resume",
    "run_notebook",
    "sweep",
    "runs",
]
