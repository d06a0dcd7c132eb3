"""What the CLI counts, run as real subprocesses: the progress bar and the end summary
count the run's own nodes (not the records of loop iterations and group bodies), and
``runs list`` says when it shows fewer runs than there are."""

from __future__ import annotations

import json
import re
import textwrap
from pathlib import Path

from tests.headless.conftest import record_runs

# 5 nodes of its own; the loop and the group publish 8 nested records (lp[0].step,
# lp[0]._input, ..., grp.inner), one of which fails and fails the group.
NESTED = """
    conductor: 1
    id: nested
    nodes:
      a: {type: delay, params: {seconds: 0, input: [1, 2, 3]}}
      lp:
        type: loop
        params:
          body:
            nodes:
              step: {type: delay, params: {seconds: 0}}
      grp:
        type: group
        params:
          blueprint:
            nodes:
              inner: {type: transform, params: {operation: map, expression: "item.nope.x"}}
      after: {type: delay, params: {seconds: 0}}
      side: {type: delay, params: {seconds: 0}}
    edges:
      - a.output -> lp.input
      - lp.output -> grp.input
      - grp.output -> after.input
"""

SUMMARY = "(1 failed, 1 skipped, 3 succeeded)"


def test_progress_and_summary_count_the_runs_own_nodes(cli, work: Path) -> None:
    (work / "nested.yaml").write_text(textwrap.dedent(NESTED).lstrip())
    done = cli("run", "nested.yaml", "--progress", "rich")
    assert done.returncode == 1
    assert re.search(r"run \S+ of 'nested': failed in \S+ " + re.escape(SUMMARY), done.stdout)
    screen = done.stderr  # rich on a pipe: the final screen
    assert re.search(r"nested \(\S+\): failed\W.*\s5/5\s", screen), screen
    assert not re.search(r"\s(\d+)/5\s", screen.replace("5/5", "")), screen
    # nested records are a tally on their node's row, not rows of their own
    assert re.search(r"lp\s+succeeded.*inner nodes: 3 succeeded", screen), screen
    assert "lp[0]" not in screen and "_input" not in screen
    rows = [line for line in screen.splitlines() if re.match(r"\s*\S\s+\w+\s+[a-z]+\b", line)]
    assert [row.split()[1] for row in rows] == ["a", "lp", "grp", "after", "side"]


def test_json_counts_and_runs_show_keep_nested_records_as_detail(cli, work: Path) -> None:
    (work / "nested.yaml").write_text(textwrap.dedent(NESTED).lstrip())
    done = cli("run", "nested.yaml", "--json", "--progress", "none")
    result = json.loads(done.stdout)
    assert result["counts"] == {"succeeded": 3, "failed": 1, "skipped": 1}
    assert "lp[2].step" in result["nodes"]  # nested records are still reported
    shown = cli("runs", "show", result["run_id"])
    assert shown.returncode == 0
    assert SUMMARY in shown.stdout
    lines = shown.stdout.splitlines()
    lp = next(i for i, line in enumerate(lines) if line.split()[:1] == ["lp"])
    assert lines[lp + 1].startswith("    lp[")  # under their node, indented once more
    assert lines[-1].split()[:2] == ["side", "succeeded"]


def test_runs_list_says_how_many_more_there_are(cli, work: Path) -> None:
    record_runs(work, 23)
    listed = cli("runs", "list")
    assert listed.returncode == 0
    lines = listed.stdout.splitlines()
    assert len(lines) == 1 + 20 + 1  # header, the default 20, the note
    assert lines[-1] == "... 3 more; show them with -n 23"
    everything = cli("runs", "list", "-n", "23").stdout.splitlines()
    assert len(everything) == 1 + 23 and not everything[-1].startswith("...")
    bare = cli("runs")  # `runs` alone lists too
    assert bare.stdout.splitlines()[-1] == "... 3 more; show them with -n 23"
    as_json = cli("runs", "list", "-n", "5", "--json")
    assert len(json.loads(as_json.stdout)) == 5  # stdout stays the list of rows
    assert "... 18 more; show them with -n 23" in as_json.stderr
    filtered = cli("runs", "list", "--status", "failed")
    assert filtered.stdout.strip() == "no failed runs"
