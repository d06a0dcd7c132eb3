"""The notebook node with real papermill runs: notebooks without kernel metadata, the
input passed only when the notebook declares it, and failed cells named as written."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from conductor_nb._kernels import QUIET
from conductor_nb.nodes.notebooks import KernelChoiceError, kernel_options
from tests.nodes.conftest import write_notebook

RECORD = "import conductor_nb as cnb\ncnb.record('total', sum(items) * factor)"


def _node(**params):
    return {"nb": {"type": "notebook", "params": params}}


def _log(node_run) -> str:
    return "".join(line.text for line in node_run.logs)


# kernel_options: papermill's kernel and language, as Jupyter would pick them


def test_a_notebook_without_kernelspec_gets_the_current_python_kernel(tmp_path):
    path = write_notebook(tmp_path / "bare.ipynb", "x = 1", kernelspec=False)
    notes: list[str] = []
    assert kernel_options(path, log=notes.append) == {
        "kernel_name": "python3",
        "language": "python",
        "extra_arguments": QUIET,
    }
    assert notes == [
        "notebook bare.ipynb has no kernelspec (no kernel in its metadata); running it with "
        "the current Python kernel (python3), as Jupyter would"
    ]
    assert kernel_options(path, "python3", log=notes.append)["language"] == "python"
    assert len(notes) == 1  # a kernel that was asked for needs no note


def test_a_notebook_with_a_kernelspec_keeps_it(tmp_path):
    path = write_notebook(tmp_path / "py.ipynb", "x = 1")
    notes: list[str] = []
    options = kernel_options(path, log=notes.append)
    assert options == {"kernel_name": "python3", "language": "python", "extra_arguments": QUIET}
    assert notes == []
    nb = nbformat.read(path, as_version=4)
    nb.metadata["kernelspec"] = {"name": "ir", "language": "R", "display_name": "R"}
    nbformat.write(nb, path)
    assert kernel_options(path) == {"kernel_name": "ir", "language": "R"}  # no Python flags


def test_a_non_python_kernel_for_a_notebook_without_a_language_asks_for_a_kernelspec(tmp_path):
    path = write_notebook(tmp_path / "bare.ipynb", "x = 1", kernelspec=False)
    with pytest.raises(KernelChoiceError) as info:
        kernel_options(path, "ir")
    assert str(info.value).startswith(
        "notebook bare.ipynb records no language (no kernelspec or language_info in its "
        "metadata), so papermill cannot write its parameters for kernel 'ir'; add a "
        "kernelspec to the notebook"
    )


@pytest.mark.notebook
def test_a_notebook_without_kernelspec_runs_with_parameters(run_bp, tmp_path):
    write_notebook(tmp_path / "bare.ipynb", "factor = 1\nitems = []", RECORD, kernelspec=False)
    run = run_bp(_node(path="bare.ipynb", parameters={"factor": 2, "items": [1, 2]}))
    assert run.status.value == "succeeded", run.summary()
    assert run["nb"].outputs["records"] == {"total": 6}
    assert "has no kernelspec (no kernel in its metadata); running it with the current " in (
        _log(run["nb"])
    )
    # naming the kernel also works: the language of a python* kernel is Python
    named = run_bp(_node(path="bare.ipynb", kernel="python3", parameters={"items": [4]}))
    assert named.status.value == "succeeded", named.summary()
    assert named["nb"].outputs["records"] == {"total": 4}


@pytest.mark.notebook
def test_a_non_python_kernel_without_a_language_fails_the_node_clearly(run_bp, tmp_path):
    write_notebook(tmp_path / "bare.ipynb", "x = 1", kernelspec=False)
    run = run_bp(_node(path="bare.ipynb", kernel="ir", parameters={"x": 2}))
    message = str(run["nb"].error)
    assert "KernelChoiceError: notebook bare.ipynb records no language" in message
    assert "add a kernelspec to the notebook" in message
    assert "No language found" not in message


# the input is a parameter only for notebooks that declare it


@pytest.mark.notebook
def test_an_undeclared_input_is_not_passed_and_the_log_says_so(run_bp, tmp_path):
    write_notebook(tmp_path / "calc.ipynb", "factor = 1\nitems = []", RECORD)
    run = run_bp(_node(path="calc.ipynb", input=[1, 2], parameters={"items": [5]}))
    assert run.status.value == "succeeded", run.summary()
    assert run["nb"].output["parameters"] == {"items": [5]}
    log = _log(run["nb"])
    assert (
        "the notebook declares no `input` parameter (in its parameters cell); the node's "
        "input was not passed\n"
    ) in log
    assert "Passed unknown parameter" not in log
    out = nbformat.read(tmp_path / "calc.out.ipynb", as_version=4)
    injected = next(c for c in out.cells if "injected-parameters" in c.metadata.get("tags", []))
    assert "input" not in injected.source


@pytest.mark.notebook
def test_an_input_is_passed_when_declared_or_asked_for(run_bp, tmp_path):
    write_notebook(
        tmp_path / "n.ipynb",
        "input = None",
        "cnb = __import__('conductor_nb')\ncnb.record('n', len(input))",
    )
    declared = run_bp(_node(path="n.ipynb", input=[1, 2, 3]))
    assert declared["nb"].outputs["records"] == {"n": 3}
    assert "input was not passed" not in _log(declared["nb"])
    write_notebook(
        tmp_path / "m.ipynb",
        "other = 0",
        "cnb = __import__('conductor_nb')\ncnb.record('n', len(input))",
    )
    asked = run_bp(_node(path="m.ipynb", input=[1], parameters={"input": [1, 2]}))
    assert asked.status.value == "succeeded", asked.summary()
    assert asked["nb"].outputs["records"] == {"n": 2}  # papermill may warn: the user asked


# a failed cell is named by its place in the notebook as written


@pytest.mark.notebook
def test_a_failed_cell_is_named_as_in_the_source_notebook(run_bp, tmp_path):
    write_notebook(tmp_path / "analyse.ipynb", "x = 1", "y = x * 2", "y + 'a'")
    run = run_bp(_node(path="analyse.ipynb", parameters={"x": 2}))
    out = tmp_path / "analyse.out.ipynb"
    assert str(run["nb"].error).endswith(
        f"NotebookFailed: cell 3 of analyse.ipynb (In [4] of the output notebook {out}, after "
        "the injected parameters) raised TypeError: unsupported operand type(s) for +: 'int' "
        "and 'str'"
    )
    plain = run_bp(_node(path="analyse.ipynb"))  # no parameters: nothing is injected
    assert str(plain["nb"].error).endswith(
        f"NotebookFailed: cell 3 of analyse.ipynb (In [3] of the output notebook {out}) raised "
        "TypeError: unsupported operand type(s) for +: 'int' and 'str'"
    )


@pytest.mark.notebook
def test_a_failed_cell_after_markdown_counts_every_cell_of_the_source(run_bp, tmp_path):
    path = write_notebook(tmp_path / "doc.ipynb", "x = 1", "raise KeyError(x)")
    nb = nbformat.read(path, as_version=4)
    nb.cells.insert(1, nbformat.v4.new_markdown_cell("# Then it fails"))
    nbformat.write(nb, path)
    run = run_bp(_node(path="doc.ipynb", output_path="out/doc.ipynb", parameters={"x": 5}))
    out = Path(tmp_path / "out" / "doc.ipynb")
    assert f"cell 3 of doc.ipynb (In [3] of the output notebook {out}, after the injected " in (
        str(run["nb"].error)
    )
    assert str(run["nb"].error).endswith("raised KeyError: 5")


def test_a_kernel_choice_error_carries_its_fix_and_pickles(tmp_path):
    import pickle

    path = write_notebook(tmp_path / "bare.ipynb", "x = 1", kernelspec=False)
    nb = nbformat.read(path, as_version=4)
    nb.metadata["language_info"] = {"name": "R"}
    nbformat.write(nb, path)
    with pytest.raises(KernelChoiceError) as info:
        kernel_options(path)
    error = pickle.loads(pickle.dumps(info.value))
    assert error.problem == (
        "notebook bare.ipynb has no kernelspec and its language is R, so which kernel runs it "
        "is unknown"
    )
    assert error.fix.startswith("name the kernel to run it with, or add a kernelspec")
    assert str(error) == f"{error.problem}; {error.fix}"
    assert kernel_options(path, "ir") == {"kernel_name": "ir", "language": "R"}


@pytest.mark.notebook
def test_a_failed_cell_of_a_notebook_without_cell_ids_is_named_too(run_bp, tmp_path):
    path = write_notebook(tmp_path / "old.ipynb", "x = 1", "y = 2", "1 / 0")
    doc = json.loads(path.read_text())
    doc["nbformat_minor"] = 4  # before cell ids (nbformat 4.5)
    for cell in doc["cells"]:
        del cell["id"]
    path.write_text(json.dumps(doc))
    run = run_bp(_node(path="old.ipynb", parameters={"x": 3}))
    assert "NotebookFailed: cell 3 of old.ipynb (In [4] of the output notebook " in str(
        run["nb"].error
    )
