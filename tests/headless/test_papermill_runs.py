"""Real papermill runs: parameters injected, failing cells, timeouts, dead kernels, and the
exported notebook of a blueprint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import conductor_nb as cnb
from conductor_nb.headless.papermill import CELL_ERROR, DEAD_KERNEL, TIMEOUT, NotebookError
from tests.headless.conftest import cli_env, run_cli

pytestmark = pytest.mark.notebook


def _notebook(path: Path, *cells: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1\nword = 'a'", metadata={"tags": ["parameters"]})]
    nb.cells += [nbformat.v4.new_code_cell(src) for src in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(path))
    return path


def _outputs(path: Path) -> str:
    nb = nbformat.read(str(path), as_version=4)
    return json.dumps([c.get("outputs", []) for c in nb.cells])


def test_run_notebook_injects_parameters(tmp_path: Path) -> None:
    source = _notebook(tmp_path / "in.ipynb", "print('result', x * 2, word)")
    result = cnb.run_notebook(source, tmp_path / "out.ipynb", parameters={"x": 21, "word": "hi"})
    assert result.output == (tmp_path / "out.ipynb").resolve()
    nb = nbformat.read(str(result.output), as_version=4)
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    assert ["injected-parameters"] in tags
    assert nb.metadata.papermill.parameters == {"x": 21, "word": "hi"}
    assert "result 42 hi" in _outputs(result.output)


def test_failing_cell_keeps_the_output_notebook(tmp_path: Path) -> None:
    source = _notebook(
        tmp_path / "in.ipynb", "print('before')", "raise ValueError('bad x')", "print('never')"
    )
    with pytest.raises(NotebookError) as info:
        cnb.run_notebook(source, tmp_path / "out.ipynb")
    assert info.value.kind == CELL_ERROR
    assert info.value.ename == "ValueError"
    assert info.value.output is not None and info.value.output.exists()
    text = _outputs(info.value.output)
    assert "before" in text and "bad x" in text and "never" not in text


def test_cli_notebook_params_typed_and_timeout_and_dead_kernel(tmp_path: Path) -> None:
    _notebook(
        tmp_path / "nb.ipynb",
        "print('got', repr(x), repr(word))",
        "import time; time.sleep(x if word == 'sleep' else 0)",
        "import os\nif word == 'die': os._exit(1)",
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(tmp_path, "run", "nb.ipynb", *args, timeout=120)

    ok = run("-p", "x=5", "-p", "word=7", "-o", "ok.ipynb", "--json")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["status"] == "succeeded"
    assert "got 5 '7'" in _outputs(tmp_path / "ok.ipynb")  # int for x, str for word
    assert "without encryption" not in ok.stderr  # the kernel's start-up noise stays out

    slow = run("-p", "x=30", "-p", "word=sleep", "--timeout", "1", "-o", "slow.ipynb", "--json")
    assert slow.returncode == 1
    assert json.loads(slow.stdout)["kind"] == TIMEOUT
    marked = nbformat.read(str(tmp_path / "slow.ipynb"), as_version=4)
    assert marked.metadata.conductor_nb["kind"] == TIMEOUT

    dead = run("-p", "word=die", "-o", "dead.ipynb")
    assert dead.returncode == 138  # papermill's exit code for a dead kernel
    assert "kernel died" in dead.stderr
    marked = nbformat.read(str(tmp_path / "dead.ipynb"), as_version=4)
    assert marked.metadata.conductor_nb["kind"] == DEAD_KERNEL


def _cli_run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(folder, "run", *args, timeout=120)


def test_strict_refuses_a_parameter_the_notebook_does_not_declare(tmp_path: Path) -> None:
    _notebook(tmp_path / "nb.ipynb", "print(x)")
    args = ("-p", "y=2", "-p", "wrd=b", "-o", "out.ipynb", "--strict")
    done = _cli_run(tmp_path, "nb.ipynb", *args)
    assert done.returncode == 2
    assert "notebook 'nb.ipynb' has no param 'y'" in done.stderr
    assert "declared params (in its `parameters` cell): word, x" in done.stderr
    assert "did you mean 'word'?" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "out.ipynb").exists()  # refused before a kernel started
    (tmp_path / "p.yaml").write_text("zz: 1\n")
    from_file = _cli_run(tmp_path, "nb.ipynb", "--params-file", "p.yaml", "--json", "--strict")
    assert from_file.returncode == 2
    result = json.loads(from_file.stdout)
    assert result["status"] == "error" and result["exit_code"] == 2
    assert result["problems"][0]["path"] == "parameter zz"
    assert "no param 'zz'" in result["problems"][0]["message"]


def test_strict_explains_a_notebook_without_a_parameters_cell(tmp_path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("print('hi')")]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, str(tmp_path / "plain.ipynb"))
    done = _cli_run(tmp_path, "plain.ipynb", "-p", "y=2", "--strict")
    assert done.returncode == 2
    assert "notebook 'plain.ipynb' has no parameters cell" in done.stderr
    assert "the values (y)" in done.stderr
    assert "the tag `parameters`" in done.stderr
    assert "Traceback" not in done.stderr
    assert _cli_run(tmp_path, "plain.ipynb", "-o", "out.ipynb").returncode == 0  # no -p: fine


def test_parameters_of_a_language_papermill_cannot_inspect_are_passed_through(
    tmp_path: Path,
) -> None:
    from conductor_nb.headless.notebook_cmd import declared_parameters
    from conductor_nb.headless.params import notebook_assignments
    from conductor_nb.nodes.notebooks import kernel_options

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x <- 1", metadata={"tags": ["parameters"]})]
    nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    r_notebook = tmp_path / "r.ipynb"
    nbformat.write(nb, str(r_notebook))
    declared = declared_parameters(r_notebook, kernel_options(r_notebook))
    assert declared.has_cell and not declared.readable
    assert notebook_assignments(None, assignments=["y=2"]) == ({"y": 2}, [])
    py_notebook = _notebook(tmp_path / "py.ipynb")
    python = declared_parameters(py_notebook, kernel_options(py_notebook))
    assert python.types == {"x": "int", "word": "str"}


def test_exported_notebook_runs_under_papermill(cli, work: Path) -> None:
    exported = cli(
        "export", "ok.yaml", "--to", "notebook", "--import", "hl_nodes", "-o", "demo.ipynb"
    )
    assert exported.returncode == 0, exported.stderr
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            "demo.ipynb",
            "demo.out.ipynb",
            "-p",
            "n",
            "5",
            "-p",
            "factor",
            "2",
        ],
        cwd=work,
        env=cli_env(work),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    nb = nbformat.read(str(work / "demo.out.ipynb"), as_version=4)
    text = _outputs(work / "demo.out.ipynb")
    assert "image/svg+xml" in text  # the static picture of the run
    assert "succeeded" in text
    assert "'total': 20" in text
    # the run is shown once: its picture, with the summary as the text form of the same output
    shown = [
        output
        for cell in nb.cells
        for output in cell.get("outputs", [])
        if "of 'demo'" in json.dumps(output)
    ]
    assert len(shown) == 1, shown
    assert shown[0]["output_type"] == "execute_result"
    assert set(shown[0]["data"]) == {"image/svg+xml", "text/plain"}
    assert "of 'demo': succeeded" in shown[0]["data"]["text/plain"]
    assert any("injected-parameters" in c.metadata.get("tags", []) for c in nb.cells)
    # a failing blueprint fails the notebook (and so papermill's exit code)
    cli("export", "fail.yaml", "--to", "notebook", "--import", "hl_nodes", "-o", "fail.ipynb")
    failed = subprocess.run(
        [sys.executable, "-m", "papermill", "fail.ipynb", "fail.out.ipynb"],
        cwd=work,
        env=cli_env(work),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert failed.returncode != 0
    assert "kaboom" in _outputs(work / "fail.out.ipynb")


def test_the_readme_demo_exported_as_a_notebook_runs_under_papermill(tmp_path: Path) -> None:
    """``make demo`` runs examples/hello.yaml; its exported notebook must run as well."""
    demo = Path(__file__).resolve().parents[2] / "examples" / "hello.yaml"
    env = cli_env(tmp_path)
    exported = run_cli(
        tmp_path, "export", str(demo), "--to", "notebook", "-o", "hello.ipynb", timeout=120
    )
    assert exported.returncode == 0, exported.stderr
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            "hello.ipynb",
            "hello.out.ipynb",
            "-p",
            "out",
            "greetings.txt",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "greetings.txt").read_text() == "Hello Ada\nHello Grace"
    text = _outputs(tmp_path / "hello.out.ipynb")
    assert "image/svg+xml" in text and "succeeded" in text


def _bare_notebook(path: Path) -> Path:
    """A notebook as ``nbformat.v4.new_notebook()`` makes it: no kernelspec, no language."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("n = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("print('n is', n * 2)"),
    ]
    nbformat.write(nb, str(path))
    return path


def test_cli_runs_a_notebook_without_kernel_metadata(tmp_path: Path) -> None:
    _bare_notebook(tmp_path / "bare.ipynb")
    done = _cli_run(tmp_path, "bare.ipynb", "-p", "n=21", "-o", "out.ipynb")
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "note: notebook bare.ipynb has no kernelspec" in done.stderr
    assert "running it with the current Python kernel (python3)" in done.stderr
    assert "n is 42" in _outputs(tmp_path / "out.ipynb")  # the parameter was typed and used
    given = _cli_run(tmp_path, "bare.ipynb", "-p", "n=5", "--kernel", "python3", "-o", "k.ipynb")
    assert given.returncode == 0, given.stderr  # papermill alone: "No language found"
    assert "Traceback" not in given.stderr
    assert "n is 10" in _outputs(tmp_path / "k.ipynb")


def test_cli_kernel_it_cannot_use_is_a_user_error(tmp_path: Path) -> None:
    _bare_notebook(tmp_path / "bare.ipynb")
    missing = _cli_run(tmp_path, "bare.ipynb", "--kernel", "no-such-kernel", "--json")
    assert missing.returncode == 2
    result = json.loads(missing.stdout)
    assert "kernel 'no-such-kernel' is not installed here" in result["error"]
    assert "jupyter kernelspec list" in result["hints"][0]
    assert "Traceback" not in missing.stderr
    # an installed kernel that is not Python, for a notebook that records no language
    spec = tmp_path / "jupyter" / "kernels" / "fake"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({"argv": ["false"], "display_name": "Fake"}))
    env = {**cli_env(tmp_path), "JUPYTER_PATH": str(tmp_path / "jupyter")}
    done = run_cli(tmp_path, "run", "bare.ipynb", "-p", "n=2", "--kernel", "fake", env=env)
    assert done.returncode == 2
    assert "notebook bare.ipynb records no language" in done.stderr
    assert "hint: add a kernelspec to the notebook" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / "bare.out.ipynb").exists()  # refused before a kernel started
