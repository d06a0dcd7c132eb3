"""The command line with Atomiton flows: import, run/validate with --path-map and --lenient,
and export --to atomiton for a round trip with the app."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests.model import atomiton_flows as flows

pytest.importorskip("py_mini_racer")


@pytest.fixture
def flow_files(work: Path) -> Path:
    (work / "data").mkdir()
    (work / "data" / "sales.csv").write_text("name,amount,active\nA,10.5,yes\nB,3,no\nC,4.5,yes\n")
    (work / "totals.flow.yaml").write_text(flows.totals_current())
    return work


def test_import_writes_the_blueprint_and_says_what_it_did(cli, flow_files: Path) -> None:
    done = cli(
        "import", "totals.flow.yaml", "-o", "totals.yaml",
        "--path-map", "/data=./data", "--path-map", "/output=./output",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "is an Atomiton flow (current shape)" in done.stderr
    doc = yaml.safe_load((flow_files / "totals.yaml").read_text())
    assert doc["conductor"] == 1
    assert doc["nodes"]["rows"] == {
        **doc["nodes"]["rows"],
        "type": "spreadsheet",
        "params": {
            "path": "data/sales.csv",
            "headers": True,
            "delimiter": ",",
            "encoding": "utf-8",
        },
    }
    again = cli("validate", "totals.yaml")
    assert again.returncode == 0, again.stdout + again.stderr


def test_run_a_flow_with_path_maps(cli, flow_files: Path) -> None:
    done = cli(
        "run",
        "totals.flow.yaml",
        "--path-map",
        "/data=./data",
        "--path-map",
        "/output=./output",
        "--no-history",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["status"] == "succeeded"
    assert done.stderr.count("is an Atomiton flow") == 1  # said once
    totals = json.loads((flow_files / "output" / "totals.json").read_text())
    assert totals == {"total": 15, "count": 2, "average": 7.5}


def test_run_without_a_path_map_fails_with_the_hint(cli, flow_files: Path) -> None:
    done = cli("run", "totals.flow.yaml", "--no-history")
    assert done.returncode == 2  # refused before anything runs: the paths are outside the roots
    assert "outside the file roots" in done.stderr + done.stdout
    assert "--path-map /data=./data" in done.stderr + done.stdout


def test_validate_locates_unmappable_parts_and_lenient_imports_the_rest(cli, flow_files):
    text = flows.totals_current().replace(
        '      delimiter: ","\n', '      delimiter: ","\n      quote: "\'"\n'
    )
    (flow_files / "odd.flow.yaml").write_text(text)
    line = text.splitlines().index('      quote: "\'"') + 1
    done = cli("validate", "odd.flow.yaml")
    assert done.returncode == 2
    assert f"nodes[0].parameters.quote (line {line}" in done.stdout
    assert "--lenient" in done.stdout
    lenient = cli("import", "odd.flow.yaml", "--lenient", "-o", "odd.yaml")
    assert lenient.returncode == 0, lenient.stderr
    assert "left out (1)" in lenient.stderr and "quote" in lenient.stderr
    assert (flow_files / "odd.yaml").exists()


def test_export_to_atomiton_round_trips(cli, flow_files: Path) -> None:
    (flow_files / "thumbs.flow.yaml").write_text(flows.images_current())
    assert cli("import", "thumbs.flow.yaml", "-o", "thumbs.yaml").returncode == 0
    done = cli("export", "thumbs.yaml", "--to", "atomiton", "-o", "back.flow.yaml")
    assert done.returncode == 0, done.stderr
    flow = yaml.safe_load((flow_files / "back.flow.yaml").read_text())
    assert flow["type"] == "group" and isinstance(flow["nodes"], list)
    types = {n["id"]: n["type"] for n in flow["nodes"]}
    assert types["each"] == "loop" and types["each-parallel"] == "parallel"
    assert flow["settings"]["runtime"]["timeout"] == 60000
    assert cli("import", "back.flow.yaml", "-o", "again.yaml").returncode == 0
    first = yaml.safe_load((flow_files / "thumbs.yaml").read_text())
    again = yaml.safe_load((flow_files / "again.yaml").read_text())
    assert again["nodes"]["each"]["params"] == first["nodes"]["each"]["params"]
    assert again["edges"] == first["edges"]
