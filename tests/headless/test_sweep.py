"""Notebook sweeps: one notebook over a grid of parameters, from the CLI and from Python.

The notebooks run in real kernels through papermill. The CLI test runs a 2 x 2 grid
two at a time, each notebook in its own folder, with one row failing; then
``runs resume`` runs only that row again. The Ctrl-C test interrupts a sweep of slow
notebooks and looks for their kernels afterwards.
"""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from conductor_nb.headless.sweep import SweepError, expand_grid, output_names, varying_keys
from conductor_nb.headless.sweep_report import charts
from tests.headless.conftest import run_cli, start_cli

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("papermill")

TRAIN = """\
import os
from pathlib import Path

import conductor_nb as cnb

with open("calls.txt", "a") as f:  # in the kernel's working directory
    f.write(f"{lr},{seed}\\n")
if gate and Path(gate).exists() and (lr, seed) == (0.2, 2):
    raise RuntimeError(f"the gate {gate} is closed")
cnb.record("score", lr * 10 + seed)
"""


def _notebook(path: Path, parameters: str, code: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell(parameters, metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(code),
    ]
    nbformat.write(nb, str(path))
    return path


# ------------------------------------------------------------------ the grid, no kernels
def test_a_mapping_of_lists_is_every_combination_in_order() -> None:
    sets = expand_grid({"lr": [0.1, 0.01], "seed": [1, 2, 3]}, {"epochs": 2})
    assert len(sets) == 6
    assert sets[0] == {"lr": 0.1, "seed": 1, "epochs": 2}
    assert sets[-1] == {"lr": 0.01, "seed": 3, "epochs": 2}
    assert list(sets[0]) == ["lr", "seed", "epochs"]  # the grid's names first


def test_a_list_of_sets_is_taken_as_written() -> None:
    assert expand_grid([{"a": 1}, {"a": 2, "b": 3}]) == [{"a": 1}, {"a": 2, "b": 3}]


@pytest.mark.parametrize(
    ("grid", "base", "message"),
    [
        ({"lr": 0.1}, {}, "grid 'lr': expected a list of values, got 0.1 (float)"),
        ({"lr": "abc"}, {}, "grid 'lr': expected a list of values"),
        ({"lr": []}, {}, "grid 'lr': the list of values is empty"),
        ({"lr": [1]}, {"lr": 2}, "parameter 'lr' is given both for every run and in the grid"),
        ([], {}, "the grid is empty"),
        ([{"a": 1}, 3], {}, "grid[1]: expected a mapping of parameter values, got 3 (int)"),
        ({"not a name": [1]}, {}, "grid parameter names are identifiers"),
    ],
)
def test_a_bad_grid_says_what_and_where(grid: object, base: dict, message: str) -> None:
    with pytest.raises(SweepError) as caught:
        expand_grid(grid, base)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_output_names_come_from_the_varying_parameters_safe_and_unique() -> None:
    sets = [
        {"lr": 0.1, "tag": "a/b c", "k": 1},
        {"lr": 0.1, "tag": "a b/c", "k": 1},  # sanitises to the same name as the first
        {"lr": 0.2, "tag": "A/B C", "k": 1},  # differs only in case
    ]
    varying = varying_keys(sets)
    assert varying == ["lr", "tag"]  # k is the same in every set
    names = output_names("train", sets, varying)
    assert names == ["train-lr=0.1-tag=a_b_c", "train-lr=0.1-tag=a_b_c-2", "train-lr=0.2-tag=A_B_C"]


def test_a_chart_only_when_one_numeric_parameter_varies() -> None:
    ok = [{"lr": x, "status": "succeeded", "score": x * 2} for x in (0.1, 0.2, 0.4)]
    svg = charts(ok)
    assert len(svg) == 1 and 'data-x="lr"' in svg[0] and 'data-y="score"' in svg[0]
    assert svg[0].count("<circle") == 3
    two = [{"lr": x, "seed": s, "status": "succeeded", "score": 1} for x in (1, 2) for s in (1, 2)]
    assert charts(two) == []
    words = [{"name": n, "status": "succeeded", "score": 1} for n in ("a", "b")]
    assert charts(words) == []


# ------------------------------------------------------------------ real kernels
@pytest.mark.notebook
def test_cli_sweep_fails_a_row_not_the_sweep_and_resume_runs_only_that_row(work: Path) -> None:
    _notebook(work / "train.ipynb", 'lr = 0.1\nseed = 0\ngate = ""', TRAIN)
    gate = work / "gate"
    gate.write_text("closed")
    args = ["run", "train.ipynb", "--grid", "lr=[0.1, 0.2]", "--grid", "seed=[1, 2]"]
    args += ["-p", f"gate={gate}", "-o", "out", "--cwd-per-run", "--concurrency", "2"]
    done = run_cli(work, *args, "--json", "--report", "out/sweep.html", timeout=240)
    assert done.returncode == 1, done.stderr
    result = json.loads(done.stdout)
    rows = result["rows"]
    assert [(r["lr"], r["seed"], r["status"]) for r in rows] == [
        (0.1, 1, "succeeded"),
        (0.1, 2, "succeeded"),
        (0.2, 1, "succeeded"),
        (0.2, 2, "failed"),
    ]
    assert [r["score"] for r in rows[:3]] == [2.0, 3.0, 3.0]
    assert (
        "RuntimeError: the gate" in rows[3]["error"] and "cell 2 of train.ipynb" in rows[3]["error"]
    )
    out = work / "out"
    for row in rows:
        name = f"train-lr={row['lr']}-seed={row['seed']}"
        assert row["output"] == str(out / f"{name}.ipynb")
        executed = json.loads((out / f"{name}.ipynb").read_text())
        injected = executed["metadata"]["papermill"]["parameters"]
        assert injected == {"lr": row["lr"], "seed": row["seed"], "gate": str(gate)}
        # each kernel ran in its own folder (and only there), once
        assert (out / name / "calls.txt").read_text() == f"{row['lr']},{row['seed']}\n"
    report = (out / "sweep.html").read_text()
    assert report.count("<tr>") == 5 and 'href="train-lr=0.2-seed=2.ipynb"' in report
    assert "sweep-chart" not in report  # two parameters vary: no chart

    gate.unlink()
    resumed = run_cli(work, "runs", "resume", result["run_id"], "--progress", "none", timeout=240)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    calls = {p.parent.name: p.read_text().count("\n") for p in out.glob("*/calls.txt")}
    assert calls == {
        "train-lr=0.1-seed=1": 1,
        "train-lr=0.1-seed=2": 1,
        "train-lr=0.2-seed=1": 1,
        "train-lr=0.2-seed=2": 2,  # the failed row, and only it, ran again
    }


@pytest.mark.notebook
def test_python_sweep_table_and_report_with_a_chart(tmp_path: Path, monkeypatch) -> None:
    import conductor_nb as cnb

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONDUCTOR_HOME", str(tmp_path / ".conductor"))
    code = (
        "import conductor_nb as cnb\ncnb.record('loss', round(1 / lr, 3))\ncnb.record('tag', name)"
    )
    _notebook(tmp_path / "fit.ipynb", "lr = 1.0\nname = 'x'", code)
    # a notebook run in this thread first, as in a cell: the sweep's notebooks, running at
    # the same time, must not share the event loop that run left behind
    cnb.run_notebook("fit.ipynb", "first.ipynb", parameters={"lr": 4.0})
    sweep = cnb.sweep("fit.ipynb", {"lr": [0.5, 1.0, 2.0]}, parameters={"name": "demo"})
    assert sweep.status.value == "succeeded", [r["error"] for r in sweep.rows()]
    rows = sweep.rows()
    assert [(r["lr"], r["name"], r["loss"], r["tag"]) for r in rows] == [
        (0.5, "demo", 2.0, "demo"),
        (1.0, "demo", 1.0, "demo"),
        (2.0, "demo", 0.5, "demo"),
    ]
    assert all(Path(r["output"]).parent == tmp_path / "fit-sweep" for r in rows)
    table = sweep.table()
    assert len(table) == 3  # a DataFrame when pandas is installed, else the rows
    report = Path(sweep.report(tmp_path / "report.html")).read_text()
    assert report.count('class="sweep-chart"') == 1 and 'data-y="loss"' in report
    assert cnb.runs()[0].id == sweep.id  # the sweep is in the history like any run


def _state(pid: int) -> str:
    """A process's state letter ('Z' for a zombie), or 'gone'."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return "gone"


@pytest.mark.notebook
def test_ctrl_c_stops_every_kernel_of_a_sweep(work: Path) -> None:
    code = "import os, time\nPath = __import__('pathlib').Path\n"
    code += "Path(f'started-{x}').write_text(str(os.getpid()))\ntime.sleep(120)"
    _notebook(work / "slow.ipynb", "x = 0", code)
    proc = start_cli(work, "run", "slow.ipynb", "--grid", "x=[1, 2]", "-o", "out")
    deadline = time.monotonic() + 180
    while len(list(work.glob("started-*"))) < 2:
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    pids = [int(p.read_text()) for p in work.glob("started-*")]
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, stdout
    assert "interrupted: the sweep was cancelled" in stdout
    deadline = time.monotonic() + 10
    while any(_state(pid) not in ("gone", "Z") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [_state(pid) in ("gone", "Z") for pid in pids] == [True, True]  # dead, not running


@pytest.mark.notebook
def test_cancelling_a_sweep_in_python_stops_its_kernels(tmp_path: Path, monkeypatch) -> None:
    """In a notebook the process lives on: the kernels must stop with the cancelled nodes
    (ipykernel would only notice its parent's death, and this parent does not die)."""
    import conductor_nb as cnb

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONDUCTOR_HOME", str(tmp_path / ".conductor"))
    code = "import os, time\nPath = __import__('pathlib').Path\n"
    code += "Path(f'started-{x}').write_text(str(os.getpid()))\ntime.sleep(120)"
    _notebook(tmp_path / "slow.ipynb", "x = 0", code)
    sweep = cnb.sweep("slow.ipynb", {"x": [1, 2]}, cwd_per_run=False, wait=False)
    deadline = time.monotonic() + 180
    while len(list(tmp_path.glob("started-*"))) < 2:
        assert time.monotonic() < deadline and not sweep.is_finished, sweep.rows()
        time.sleep(0.2)
    pids = [int(p.read_text()) for p in tmp_path.glob("started-*")]
    sweep.cancel().wait(timeout=30)
    assert [row["status"] for row in sweep.rows()] == ["cancelled", "cancelled"]
    deadline = time.monotonic() + 10
    while any(_state(pid) not in ("gone", "Z") for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [_state(pid) in ("gone", "Z") for pid in pids] == [True, True]
