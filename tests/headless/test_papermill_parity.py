"""``conductor-nb run NB.ipynb`` against ``papermill`` itself, on a corpus of notebooks these
tests write: each case runs both commands side by side (two processes at once) on the same
notebook and arguments, and asserts the same exit code and an equivalent output notebook
(same cells, tags, injected parameters and outputs), or the documented better behaviour."""

from __future__ import annotations

import base64
import json
import os
import platform
import re
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import nbformat
import pytest

from tests.headless.conftest import CLI, cli_env, run_cli

pytestmark = pytest.mark.notebook

PYTHON3 = {"name": "python3", "display_name": "Python 3", "language": "python"}
PARAMS = """a = 1
b = 2.5
c = 'x'
d = True
e = None
f = [1]
g = {'k': 1}
h = 'raw'"""
SHOW = "print(repr((a, b, c, d, e, f, g, h)))"


def write_notebook(
    path: Path,
    *cells: str,
    parameters: str | None = PARAMS,
    kernelspec: dict[str, str] | None = PYTHON3,
) -> Path:
    nb = nbformat.v4.new_notebook()
    if parameters is not None:
        nb.cells.append(nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}))
    nb.cells += [nbformat.v4.new_code_cell(source) for source in cells]
    if kernelspec is not None:
        nb.metadata["kernelspec"] = kernelspec
        nb.metadata["language_info"] = {"name": "python"}
    nbformat.write(nb, str(path))
    return path


class Pair:
    """papermill and conductor-nb, run at the same time on the same notebook."""

    def __init__(self, folder: Path, pm: subprocess.CompletedProcess[str], cnb: Any) -> None:
        self.folder = folder
        self.pm = pm
        self.cnb = cnb

    def notebooks(self, pm_out: str = "pm.ipynb", cnb_out: str = "cnb.ipynb") -> tuple[Any, Any]:
        return (
            nbformat.read(str(self.folder / pm_out), as_version=4),
            nbformat.read(str(self.folder / cnb_out), as_version=4),
        )


def run_both(
    folder: Path,
    notebook: str,
    pm_args: Sequence[str],
    cnb_args: Sequence[str] | None = None,
    *,
    pm_out: str = "pm.ipynb",
    cnb_out: str = "cnb.ipynb",
    stdin: str | None = None,
) -> Pair:
    """``papermill NOTEBOOK PM_OUT *pm_args`` and ``conductor-nb run NOTEBOOK CNB_OUT
    *cnb_args`` (the same arguments unless ``cnb_args`` is given)."""
    cnb = [notebook, cnb_out, *(pm_args if cnb_args is None else cnb_args)]
    return run_argv(folder, [notebook, pm_out, *pm_args], cnb, stdin=stdin)


def run_argv(
    folder: Path, pm_argv: Sequence[str], cnb_argv: Sequence[str], *, stdin: str | None = None
) -> Pair:
    """``papermill *pm_argv`` and ``conductor-nb run *cnb_argv``, stdout and stderr pipes;
    ``stdin`` is written to a stdin pipe (else stdin is /dev/null, not a pipe)."""
    env = cli_env(folder)
    commands = [
        [sys.executable, "-m", "papermill", *pm_argv],
        [*CLI, "run", *cnb_argv],
    ]
    procs = [
        subprocess.Popen(
            command,
            cwd=folder,
            env=env,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for command in commands
    ]
    done = []
    for proc, command in zip(procs, commands, strict=True):
        out, err = proc.communicate(stdin, timeout=180)
        done.append(subprocess.CompletedProcess(command, proc.returncode, out, err))
    return Pair(folder, done[0], done[1])


def cnb_run(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(folder, "run", *args, timeout=180)


def essence(nb: Any) -> list[tuple[Any, ...]]:
    """What must agree between two output notebooks: each cell's type, tags, source (the
    injected cell's too) and outputs, without timings, ids and execution metadata."""
    cells = []
    for cell in nb.cells:
        tags = tuple(cell.metadata.get("tags", ()))
        hidden = cell.metadata.get("jupyter", {}).get("source_hidden", False)
        outputs = tuple(_output(o) for o in cell.get("outputs", ()))
        source = cell.source
        if "papermill-error-cell-tag" in tags:
            source = re.sub(r"In \[\d+\]", "In [n]", source)
        cells.append((cell.cell_type, tags, hidden, source, outputs))
    return cells


def _output(output: Any) -> tuple[str, str]:
    if output.output_type == "stream":
        return (output.name, output.text)
    if output.output_type == "error":
        return ("error", f"{output.ename}: {output.evalue}")
    return (output.output_type, json.dumps(output.get("data", {}), sort_keys=True))


def same_notebook(pair: Pair, pm_out: str = "pm.ipynb", cnb_out: str = "cnb.ipynb") -> Any:
    pm_nb, cnb_nb = pair.notebooks(pm_out, cnb_out)
    assert essence(cnb_nb) == essence(pm_nb)
    assert cnb_nb.metadata.papermill.parameters == pm_nb.metadata.papermill.parameters
    return cnb_nb


def stdout_of(nb: Any) -> str:
    return "".join(
        o.get("text", "") for c in nb.cells for o in c.get("outputs", ()) if o.get("name")
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("parity")


def test_parameters_of_every_kind(folder: Path) -> None:
    write_notebook(folder / "kinds.ipynb", SHOW)
    (folder / "p.yaml").write_text("e: from file\nday: 2026-11-24\n")
    encoded = base64.b64encode(b"g: {k: 2, m: [x]}").decode()
    args = ["-p", "a", "5", "-p", "c", '"Hello"', "-p", "d", "False", "-p", "e", "-7"]
    args += ["-f", "p.yaml", "-y", "f: [1, two]", "-b", encoded, "-r", "h", "12"]
    pair = run_both(folder, "kinds.ipynb", args)
    assert pair.pm.returncode == pair.cnb.returncode == 0, pair.cnb.stderr
    nb = same_notebook(pair)
    shown = "(5, 2.5, '\"Hello\"', False, -7, [1, 'two'], {'k': 2, 'm': ['x']}, '12')"
    assert shown in stdout_of(nb)
    assert nb.metadata.papermill.parameters["day"] == "2026-11-24"  # YAML dates stay text
    # 'day' is not declared: injected, with one warning naming it
    assert pair.cnb.stderr.count("no param 'day'") == 1, pair.cnb.stderr
    # the key=value form means the same
    again = cnb_run(folder, "kinds.ipynb", "-p", "a=5", "-p", 'c="Hello"', "-o", "kv.ipynb")
    assert again.returncode == 0, again.stderr
    kv = nbformat.read(str(folder / "kv.ipynb"), as_version=4)
    assert "(5, 2.5, '\"Hello\"', True, None, [1], {'k': 1}, 'raw')" in stdout_of(kv)
    helped = cnb_run(folder, "kinds.ipynb", "--help-notebook")
    assert helped.returncode == 0
    assert "  f: list (default [1])" in helped.stdout.splitlines()


def test_typed_by_the_declared_default_where_papermill_guesses_wrong(folder: Path) -> None:
    """Documented better behaviour: a value that reads as the declared type gets it."""
    write_notebook(folder / "typed.ipynb", SHOW)
    args = ["-p", "b", "3", "-p", "c", "42", "-p", "f", "[a, b]", "-p", "d", "no"]
    pair = run_both(folder, "typed.ipynb", args)
    assert pair.pm.returncode == pair.cnb.returncode == 0, pair.cnb.stderr
    pm_nb, cnb_nb = pair.notebooks()
    assert "(1, 3, 42, 'no', None, '[a, b]', {'k': 1}, 'raw')" in stdout_of(pm_nb)
    assert "(1, 3.0, '42', False, None, ['a', 'b'], {'k': 1}, 'raw')" in stdout_of(cnb_nb)
    assert "warning" not in pair.cnb.stderr


def test_mismatch_undeclared_and_strict(folder: Path) -> None:
    write_notebook(folder / "odd.ipynb", SHOW, "print(zz)")
    pair = run_both(folder, "odd.ipynb", ["-p", "a", "abc", "-p", "zz", "1"])
    assert pair.pm.returncode == pair.cnb.returncode == 0, pair.cnb.stderr
    same_notebook(pair)
    err = pair.cnb.stderr
    assert err.count("warning: -p a=abc: param 'a' (int): expected an integer, got 'abc'") == 1
    assert err.count("notebook 'odd.ipynb' has no param 'zz'") == 1, err
    assert "Passed unknown parameter" not in err  # papermill's own line: said once, by us
    strict = cnb_run(folder, "odd.ipynb", "-p", "zz=1", "-p", "a=abc", "--strict", "-o", "s.nb")
    assert strict.returncode == 2
    assert "no param 'zz'" in strict.stderr and "expected an integer" in strict.stderr
    assert not (folder / "s.nb").exists()  # refused before a kernel started


def test_no_parameters_cell(folder: Path) -> None:
    write_notebook(folder / "plain.ipynb", "print('n is', n)", parameters=None)
    pair = run_both(folder, "plain.ipynb", ["-p", "n", "3"])
    assert pair.pm.returncode == pair.cnb.returncode == 0, pair.cnb.stderr
    nb = same_notebook(pair)
    assert nb.cells[0].metadata.tags == ["injected-parameters"]
    assert pair.cnb.stderr.count("has no parameters cell") == 1, pair.cnb.stderr
    assert "does not contain a cell with tag" not in pair.cnb.stderr
    strict = cnb_run(folder, "plain.ipynb", "-p", "n=3", "--strict", "-o", "s.ipynb")
    assert strict.returncode == 2 and not (folder / "s.ipynb").exists()
    assert "has no parameters cell" in strict.stderr


@pytest.mark.parametrize("kernel", ["python", None])  # python3: every other test
def test_kernel_names(folder: Path, kernel: str | None) -> None:
    spec = None if kernel is None else {**PYTHON3, "name": kernel}
    name = f"k-{kernel}.ipynb"
    write_notebook(folder / name, "import sys; print('py', sys.version_info[0])", kernelspec=spec)
    pair = run_both(folder, name, ["-p", "a", "2"], pm_out=f"pm-{name}", cnb_out=f"cnb-{name}")
    assert pair.cnb.returncode == 0, pair.cnb.stderr
    if kernel is None:  # better: papermill stops with "No kernel name found"
        assert pair.pm.returncode == 1 and "No kernel name found" in pair.pm.stderr
        assert "has no kernelspec" in pair.cnb.stderr
        return
    assert pair.pm.returncode == 0, pair.pm.stderr
    same_notebook(pair, f"pm-{name}", f"cnb-{name}")


def test_failing_cell_and_sys_exit(folder: Path) -> None:
    write_notebook(
        folder / "fail.ipynb",
        "import math\nx = math.sqrt(a)\nassert x > 5, f'x too small: {x}'\nprint('no')",
        "print('never')",
    )
    pair = run_both(folder, "fail.ipynb", ["-p", "a", "4"])
    assert pair.pm.returncode == pair.cnb.returncode == 1
    same_notebook(pair)
    line = pair.cnb.stderr.strip().splitlines()[-1]
    assert line.startswith("error: notebook fail.ipynb failed: cell 2 (`import math`)")
    assert "line 3 `assert x > 5, f'x too small: {x}'`" in line
    assert "AssertionError: x too small: 2.0" in line
    assert pair.cnb.stderr.count("AssertionError") == 1, pair.cnb.stderr
    as_json = cnb_run(folder, "fail.ipynb", "--json", "-o", "j.ipynb")
    result = json.loads(as_json.stdout)
    assert result["exit_code"] == 1 and result["cell"] == 2 and result["line"] == 3
    assert "Traceback (most recent call last)" in result["traceback"]
    assert "\x1b[" not in result["traceback"]
    for code, status in (("0", 0), ("1", 1)):
        name = f"exit{code}.ipynb"
        write_notebook(folder / name, f"import sys\nsys.exit({code})", "print('after')")
        exits = run_both(folder, name, [], pm_out=f"pm-{name}", cnb_out=f"cnb-{name}")
        assert exits.pm.returncode == exits.cnb.returncode == status, exits.cnb.stderr
        same_notebook(exits, f"pm-{name}", f"cnb-{name}")


def test_timeout_cwd_report_mode_and_prepare_only(folder: Path) -> None:
    write_notebook(folder / "slow.ipynb", "import time\ntime.sleep(a)")
    slow = run_both(folder, "slow.ipynb", ["-p", "a", "30", "--execution-timeout", "1"])
    assert slow.pm.returncode == slow.cnb.returncode == 1
    assert "time limit of 1s" in slow.cnb.stderr
    (folder / "sub").mkdir(exist_ok=True)
    write_notebook(folder / "cwd.ipynb", "import os; print(os.path.basename(os.getcwd()))")
    cwd = run_both(folder, "cwd.ipynb", ["--cwd", "sub", "--report-mode"])
    assert cwd.pm.returncode == cwd.cnb.returncode == 0, cwd.cnb.stderr
    nb = same_notebook(cwd)
    assert "sub\n" in stdout_of(nb)
    assert all(c.metadata.jupyter.source_hidden for c in nb.cells if c.cell_type == "code")
    prepared = run_both(folder, "cwd.ipynb", ["--prepare-only", "-p", "a", "9"])
    assert prepared.pm.returncode == prepared.cnb.returncode == 0, prepared.cnb.stderr
    nb = same_notebook(prepared)
    assert all(c.execution_count is None for c in nb.cells if c.cell_type == "code")
    assert "prepared (not run)" in prepared.cnb.stdout


def test_stdin_stdout_log_output_files_and_paths(folder: Path) -> None:
    source = write_notebook(
        folder / "io.ipynb", "print('hello', a)\nimport sys\nprint('e', file=sys.stderr)"
    )
    text = source.read_text()
    pipe = run_both(folder, "-", ["-p", "a", "3"], pm_out="-", cnb_out="-", stdin=text)
    assert pipe.pm.returncode == pipe.cnb.returncode == 0, pipe.cnb.stderr
    pm_nb, cnb_nb = (nbformat.reads(p.stdout, as_version=4) for p in (pipe.pm, pipe.cnb))
    assert essence(cnb_nb) == essence(pm_nb)
    assert cnb_nb.metadata.papermill.input_path == "-"
    assert cnb_nb.metadata.papermill.output_path == "-"

    def args(who: str) -> list[str]:
        files = ["--stdout-file", f"{who}.out", "--stderr-file", f"{who}.err"]
        return ["--log-output", *files, "--inject-paths"]

    logged = run_both(folder, "io.ipynb", args("pm"), args("cnb"))
    assert logged.pm.returncode == logged.cnb.returncode == 0, logged.cnb.stderr
    assert "hello 1" in logged.cnb.stderr and "hello 1" in logged.pm.stderr
    for who in ("pm", "cnb"):
        assert (folder / f"{who}.out").read_text() == "hello 1\n"
        assert (folder / f"{who}.err").read_text() == "e\n"
    pm_nb, cnb_nb = logged.notebooks()
    same = json.dumps(essence(cnb_nb)).replace("cnb.ipynb", "pm.ipynb")
    assert same == json.dumps(essence(pm_nb))  # the output paths aside
    assert cnb_nb.metadata.papermill.parameters == {
        "PAPERMILL_INPUT_PATH": "io.ipynb",
        "PAPERMILL_OUTPUT_PATH": "cnb.ipynb",
    }
    assert "warning" not in logged.cnb.stderr


def test_unreadable_parameter_line_is_warned_once(folder: Path) -> None:
    cell = "a = 1\nopts = dict(k=1)\nc = 'x'"  # two '=': papermill cannot read line 2
    write_notebook(folder / "weird.ipynb", "print(a, opts)", parameters=cell)
    pair = run_both(folder, "weird.ipynb", ["-p", "a", "2"])
    assert pair.pm.returncode == pair.cnb.returncode == 0, pair.cnb.stderr
    same_notebook(pair)
    assert pair.pm.stderr.count("Unable to parse line 2") == 1
    assert pair.cnb.stderr.count("Unable to parse line 2") == 1, pair.cnb.stderr


def test_pipes_without_dash(folder: Path) -> None:
    """papermill's rule: a notebook piped in needs no FILE, one path that does not exist
    is then the output, and with stdout a pipe the output notebook goes there."""
    source = write_notebook(folder / "pipe.ipynb", "print('hi', a)")
    text = source.read_text()
    piped = run_argv(folder, ["-p", "a", "3"], ["-p", "a", "3"], stdin=text)
    assert piped.pm.returncode == piped.cnb.returncode == 0, piped.cnb.stderr
    pm_nb, cnb_nb = (nbformat.reads(p.stdout, as_version=4) for p in (piped.pm, piped.cnb))
    assert essence(cnb_nb) == essence(pm_nb)
    assert "hi 3" in stdout_of(cnb_nb)
    assert cnb_nb.metadata.papermill.input_path == "-"

    args = ["-p", "a", "4"]
    into = run_argv(folder, ["pm-in.ipynb", *args], ["cnb-in.ipynb", *args], stdin=text)
    assert into.pm.returncode == into.cnb.returncode == 0, into.cnb.stderr
    assert into.pm.stdout == "" and "output: cnb-in.ipynb" in into.cnb.stdout
    assert "hi 4" in stdout_of(same_notebook(into, "pm-in.ipynb", "cnb-in.ipynb"))

    out = run_argv(folder, ["pipe.ipynb", "-p", "a", "5"], ["pipe.ipynb", "-p", "a", "5"])
    assert out.pm.returncode == out.cnb.returncode == 0, out.cnb.stderr
    pm_nb, cnb_nb = (nbformat.reads(p.stdout, as_version=4) for p in (out.pm, out.cnb))
    assert essence(cnb_nb) == essence(pm_nb)
    assert "hi 5" in stdout_of(cnb_nb)
    assert cnb_nb.metadata.papermill.output_path == "-"
    assert "succeeded" in out.cnb.stderr  # the result line leaves stdout to the notebook
    assert not (folder / "pipe.out.ipynb").exists()
    as_json = cnb_run(folder, "pipe.ipynb", "--json")  # --json holds stdout: NAME.out.ipynb
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout)["output"] == "pipe.out.ipynb"
    assert "hi 1" in stdout_of(nbformat.read(str(folder / "pipe.out.ipynb"), as_version=4))


def test_an_existing_notebook_stays_the_input_when_stdin_is_an_idle_pipe(folder: Path) -> None:
    """Better than papermill, documented: stdin a pipe nobody writes to (a Jupyter
    kernel's, a CI runner's) and one existing notebook: that notebook runs. papermill reads
    stdin instead and waits forever (then overwrites the notebook)."""
    source = write_notebook(folder / "idle.ipynb", "print('ran', a)")
    before = source.read_text()
    read_end, write_end = os.pipe()
    try:
        with subprocess.Popen(
            [*CLI, "run", "idle.ipynb", "-p", "a", "6"],
            cwd=folder,
            env=cli_env(folder),
            stdin=read_end,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        ) as proc:
            out, err = proc.communicate(timeout=180)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert proc.returncode == 0, err
    assert "ran 6" in stdout_of(nbformat.reads(out, as_version=4))
    assert source.read_text() == before


def test_no_notebook_at_all_is_a_usage_error(folder: Path) -> None:
    done = subprocess.run(
        [*CLI, "run", "-p", "a", "1"],
        cwd=folder,
        env=cli_env(folder),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "run needs a FILE" in done.stderr


def test_version(folder: Path) -> None:
    pm = subprocess.run(
        [sys.executable, "-m", "papermill", "--version"], capture_output=True, text=True
    )
    top = cnb_run(folder, "--version")  # `conductor-nb run --version`
    plain = subprocess.run([*CLI, "--version"], capture_output=True, text=True, timeout=60)
    assert pm.returncode == top.returncode == plain.returncode == 0
    python = platform.python_version()
    assert re.fullmatch(rf"conductor-nb \S+ from \S+ \({python}\)\n", plain.stdout)
    assert top.stdout.startswith(plain.stdout.strip())
    assert f"papermill {pm.stdout.split()[0]}" in top.stdout


def test_command_line_mistakes_exit_2_before_a_kernel_starts(folder: Path) -> None:
    """papermill's usage errors are ours (exit 2); where papermill ends in a traceback with
    exit 1 (a missing notebook, -f file or --cwd folder, a kernel not installed), ours is
    documented better: one line naming it, exit 2, before a kernel starts."""
    write_notebook(folder / "m.ipynb", SHOW)
    for args in (["-p", "a"], ["--bogus"]):
        pair = run_both(folder, "m.ipynb", args, pm_out="pm-m.ipynb", cnb_out="cnb-m.ipynb")
        assert pair.pm.returncode == pair.cnb.returncode == 2, (args, pair.cnb.stderr)
        assert not (folder / "cnb-m.ipynb").exists()
    assert "-p a: expected KEY=VALUE" in run_both(folder, "m.ipynb", ["-p", "a"]).cnb.stderr
    for args, said in (
        (["-f", "none.yaml"], "-f 'none.yaml': cannot read it"),
        (["--cwd", "no-dir"], "--cwd no-dir: no such folder"),
        (["-k", "no-kernel"], "kernel 'no-kernel' is not installed"),
    ):
        pair = run_both(folder, "m.ipynb", args, pm_out="pm-m.ipynb", cnb_out="cnb-m.ipynb")
        assert (pair.pm.returncode, pair.cnb.returncode) == (1, 2), (args, pair.cnb.stderr)
        assert "Traceback" in pair.pm.stderr and "Traceback" not in pair.cnb.stderr
        assert pair.cnb.stderr.startswith(f"error: {said}") or said in pair.cnb.stderr
