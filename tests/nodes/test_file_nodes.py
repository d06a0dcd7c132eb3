"""file-system and spreadsheet against real files in tmp_path."""

from __future__ import annotations

import os

import pytest

import conductor_nb as cnb
from conductor_nb.nodes.builtin.files import PathNotAllowed, atomic_write, confine


def test_write_read_list_copy_move_delete_in_a_run(run_bp, tmp_path):
    nodes = {
        "w": {
            "type": "file-system",
            "params": {"operation": "write", "path": "a/b.txt", "content": "hi"},
        },
        "r": {
            "type": "file-system",
            "params": {"operation": "read", "path": "{{ inputs.input.path }}"},
        },
        "c": {
            "type": "file-system",
            "params": {"operation": "copy", "path": "a/b.txt", "destination": "c/d.txt"},
        },
        "m": {
            "type": "file-system",
            "params": {"operation": "move", "path": "c/d.txt", "destination": "e.txt"},
        },
        "l": {
            "type": "file-system",
            "params": {"operation": "list", "path": ".", "recursive": True},
        },
        "x": {"type": "file-system", "params": {"operation": "exists", "path": "c/d.txt"}},
        "d": {
            "type": "file-system",
            "params": {"operation": "delete", "path": "a", "recursive": True},
        },
    }
    edges = [
        "w.output -> r.input",
        "r.output -> c.input",
        "c.output -> m.input",
        "m.output -> l.input",
        "l.output -> x.input",
        "x.output -> d.input",
    ]
    run = run_bp(nodes, edges)
    assert run.status.value == "succeeded", run.summary()
    assert run["r"].outputs["content"] == "hi"
    paths = [e["path"] for e in run["l"].outputs["entries"]]
    assert {"a", "a/b.txt", "e.txt"} <= set(paths)
    assert run["x"].outputs["exists"] is False
    assert not (tmp_path / "a").exists()
    assert (tmp_path / "e.txt").read_text() == "hi"


def test_bytes_round_trip(run_bp, tmp_path):
    (tmp_path / "b.bin").write_bytes(b"\x00\xff")
    run = run_bp({"r": {"type": "file-system", "params": {"path": "b.bin", "binary": True}}})
    assert run["r"].outputs["content"] == b"\x00\xff"


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", "sub/../../x"])
def test_paths_cannot_escape_the_root(run_bp, path):
    """A templated path is checked when it renders (a literal one at validation, below)."""
    run = run_bp(
        {
            "r": {
                "type": "file-system",
                "params": {"operation": "write", "path": "{{ params.p }}", "content": "x"},
            }
        },
        params={"p": {"default": path}},
    )
    assert run.status.value == "failed"
    assert "outside the allowed roots" in str(run["r"].error)


@pytest.mark.parametrize("path", ["../outside.txt", "/etc/passwd", "sub/../../x"])
def test_literal_paths_outside_the_root_fail_before_the_run(run_bp, path):
    node = {"type": "file-system", "params": {"operation": "write", "path": path, "content": "x"}}
    with pytest.raises(cnb.BlueprintError, match="outside the file roots"):
        run_bp({"r": node})


def test_symlinks_cannot_escape(tmp_path):
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(PathNotAllowed):
        confine("link/secret.txt", [root.resolve()])
    assert confine("ok.txt", [root.resolve()]) == root.resolve() / "ok.txt"


def test_file_roots_setting(run_bp, tmp_path):
    other = tmp_path / "data"
    other.mkdir()
    nodes = {
        "w": {
            "type": "file-system",
            "params": {"operation": "write", "path": "f.txt", "content": "1"},
        }
    }
    run = run_bp(nodes, settings={"file_roots": [str(other)]})
    assert run.status.value == "succeeded"
    assert (other / "f.txt").read_text() == "1"


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    target = tmp_path / "f.txt"
    target.write_text("old")

    with pytest.raises(TypeError):
        atomic_write(target, object())  # type: ignore[arg-type]
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]  # no temporary left behind
    atomic_write(target, b"new")
    assert target.read_text() == "new"


def test_csv_write_then_read(run_bp, tmp_path):
    rows = [{"a": 1, "b": "x"}, {"a": 2, "b": "y"}]
    nodes = {
        "w": {
            "type": "spreadsheet",
            "params": {"operation": "write", "path": "t.csv", "records": rows, "delimiter": ";"},
        },
        "r": {
            "type": "spreadsheet",
            "params": {"path": "{{ inputs.input.path }}", "delimiter": ";"},
        },
    }
    run = run_bp(nodes, ["w.output -> r.input"])
    assert run.status.value == "succeeded", run.summary()
    assert (tmp_path / "t.csv").read_text() == "a;b\n1;x\n2;y\n"
    assert run["r"].outputs["records"] == rows  # a column of plain integers reads as ints
    assert run["r"].outputs["headers"] == ["a", "b"]
    assert run["r"].outputs["row_count"] == 2


def test_csv_skips_empty_lines_and_reads_without_headers(run_bp, tmp_path):
    (tmp_path / "t.csv").write_text("1,2\n\n3,4\n")
    run = run_bp({"r": {"type": "spreadsheet", "params": {"path": "t.csv", "headers": False}}})
    assert run["r"].outputs["records"] == [
        {"column_1": 1, "column_2": 2},
        {"column_1": 3, "column_2": 4},
    ]


TYPED_CSV = """\
zip,amount,price,flag,sci,mixed,signed,gap,label
01234,100,19.90,true,1e3,5,-7,1,a
00042,9,3.5,false,5,N/A,0,,b
12345,80,0.25,true,7,6,-0.5,3,c
"""


def test_csv_columns_of_plain_numbers_read_as_numbers(run_bp, tmp_path):
    (tmp_path / "t.csv").write_text(TYPED_CSV)
    run = run_bp({"r": {"type": "spreadsheet", "params": {"path": "t.csv"}}})
    assert run.status.value == "succeeded", run.summary()
    first, second, _ = run["r"].outputs["records"]
    assert first == {
        "zip": "01234",  # a leading zero keeps the whole column text
        "amount": 100,
        "price": 19.9,
        "flag": "true",  # booleans stay text
        "sci": "1e3",  # so do exponents
        "mixed": "5",  # one non-number (N/A) keeps the column text
        "signed": -7,
        "gap": 1,
        "label": "a",
    }
    assert second["gap"] is None  # an empty cell of a number column
    assert second["signed"] == 0
    assert isinstance(second["signed"], float)  # a column has one type: -0.5 makes it float
    assert isinstance(second["amount"], int)  # a column of integers stays int
    assert run["r"].outputs["records"][2]["signed"] == -0.5


def test_csv_numbers_sort_as_numbers(run_bp, tmp_path):
    (tmp_path / "t.csv").write_text("order,amount\n1,100\n2,80\n3,9\n4,1000\n")
    nodes = {
        "load": {"type": "spreadsheet", "params": {"path": "t.csv"}},
        "sorted": {"type": "transform", "params": {"operation": "sort", "key": "amount"}},
        "big": {
            "type": "transform",
            "params": {"operation": "filter", "expression": "item.amount | int >= 80"},
        },
    }
    run = run_bp(nodes, ["load.records -> sorted.input", "sorted.output -> big.input"])
    assert run.status.value == "succeeded", run.summary()
    assert [r["amount"] for r in run["sorted"].output] == [9, 80, 100, 1000]
    assert [r["order"] for r in run["big"].output] == [2, 1, 4]  # | int still works on ints


def test_csv_infer_types_false_keeps_every_cell_text(run_bp, tmp_path):
    (tmp_path / "t.csv").write_text(TYPED_CSV)
    params = {"path": "t.csv", "inferTypes": False}
    run = run_bp({"r": {"type": "spreadsheet", "params": params}})
    records = run["r"].outputs["records"]
    assert records[0]["amount"] == "100"
    assert records[1]["gap"] == ""
    assert all(isinstance(v, str) for r in records for v in r.values())


@pytest.mark.parametrize(
    ("cell", "number"),
    [
        ("0", 0),
        ("42", 42),
        ("-7", -7),
        ("3.5", 3.5),
        ("19.90", 19.9),
        ("-0.25", -0.25),
        ("01234", None),
        ("-0", None),
        ("+5", None),
        ("1e3", None),
        ("1_000", None),
        ("1,000", None),
        (" 5", None),
        ("5.", None),
        (".5", None),
        ("nan", None),
        ("inf", None),
        ("true", None),
        ("\u0661\u0662", None),  # non-ASCII digits
        ("0.1234567890123456789", None),  # more precision than a float holds
        ("9" * 5000, None),
    ],
)
def test_csv_number_rule(cell, number):
    from conductor_nb.nodes.builtin.spreadsheet import _number

    assert _number(cell) == number
    assert type(_number(cell)) is type(number)


def test_xlsx_round_trip_with_sheet_and_range(run_bp, tmp_path):
    rows = [{"n": i, "sq": i * i} for i in range(5)]
    nodes = {
        "w": {
            "type": "spreadsheet",
            "params": {"operation": "write", "path": "t.xlsx", "records": rows, "sheet": "data"},
        },
        "r": {
            "type": "spreadsheet",
            "params": {"path": "t.xlsx", "sheet": "data", "range": "A1:B3"},
        },
        "r2": {"type": "spreadsheet", "params": {"path": "t.xlsx", "sheet": 0}},
    }
    run = run_bp(nodes, ["w.output -> r.input", "w.output -> r2.input"])
    assert run.status.value == "succeeded", run.summary()
    assert run["r"].outputs["records"] == [{"n": 0, "sq": 0}, {"n": 1, "sq": 1}]
    assert run["r2"].outputs["row_count"] == 5
    assert os.path.exists(tmp_path / "t.xlsx")
