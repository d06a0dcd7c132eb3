"""The curated public surface, and the promise that the core import stays light."""

from __future__ import annotations

import subprocess
import sys

import conductor_nb as cnb

PUBLIC = {
    "SKIP", "Blueprint", "BlueprintError", "BlueprintStore", "BlueprintView", "ConductorError",
    "DaskExecutor", "Edge", "Event", "Executor", "LocalExecutor", "MissingExtraError", "Node",
    "NodeContext", "NodeExecutionError", "NodeRun", "NodeState", "NodeType", "NodeTypeError",
    "ParamField", "Port", "Problem", "ProcessExecutor", "Registry", "Run", "RunCancelled",
    "RunHistory", "RunState", "RunStateError", "StoreError", "__version__", "load",
    "load_ipython_extension", "load_run", "node", "record", "registry", "resume", "run_notebook",
    "runs", "sweep", "RunOptions", "DebugOptions", "register_executor", "ExecutorError",
    "RunOptionError", "RunTimeout", "UnknownNameError", "UnknownOptionError",
}  # fmt: skip


def test_all_is_the_curated_surface() -> None:
    assert set(cnb.__all__) == PUBLIC


def test_error_family() -> None:
    for name in (
        "BlueprintError",
        "NodeTypeError",
        "NodeExecutionError",
        "RunCancelled",
        "UnknownNameError",
        "RunOptionError",
        "UnknownOptionError",
        "RunTimeout",
        "ExecutorError",
    ):
        assert issubclass(getattr(cnb, name), cnb.ConductorError)


def test_import_pulls_in_no_jupyter_papermill_or_dask() -> None:
    code = (
        "import sys, conductor_nb\n"
        "heavy = ['ipywidgets', 'anywidget', 'traitlets', 'IPython', 'papermill', 'distributed',"
        " 'ipykernel', 'pydantic', 'httpx', 'fsspec']\n"
        "print(','.join(m for m in heavy if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
