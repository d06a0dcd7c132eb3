"""Tables at real size: spreadsheet -> transform -> merge/sql on Arrow tables, for real.

Each vectorised operation is checked against the same operation over plain records
(the row-by-row path every list takes), so the two can never drift apart.
"""

from __future__ import annotations

import random

import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import conductor_nb as cnb
from conductor_nb.model.table import Table, shape_of
from conductor_nb.nodes.builtin.data import transform
from conductor_nb.storage.values import flush_tables

ORDERS = """\
order_id,region,status,amount,note
1,north,paid,120.5,a
2,south,paid,40,b
3,north,pending,75,c
4,east,paid,75,d
5,south,paid,120.5,e
6,north,refunded,10,f
7,east,paid,75,g
"""


@pytest.fixture
def orders(tmp_path):
    (tmp_path / "orders.csv").write_text(ORDERS)
    return tmp_path / "orders.csv"


def _load(run_bp, extra_nodes, edges, **spreadsheet):
    nodes = {"load": {"type": "spreadsheet", "params": {"path": "orders.csv", **spreadsheet}}}
    return run_bp({**nodes, **extra_nodes}, edges)


def _records():
    return [
        {"order_id": i, "amount": random.Random(i).choice([1, 2, 3]), "tag": f"t{i % 3}"}
        for i in range(200)
    ]


# ---------------------------------------------------------------------- reading


def test_csv_reads_into_a_table_that_reads_as_records(run_bp, orders):
    run = _load(run_bp, {}, [])
    table = run["load"].outputs["records"]
    assert isinstance(table, Table)
    assert table.column_types() == {
        "order_id": "int64",
        "region": "string",
        "status": "string",
        "amount": "double",
        "note": "string",
    }
    assert len(table) == 7 and table[0]["amount"] == 120.5 and table[-1]["order_id"] == 7
    assert table == pd.read_csv(orders).to_dict("records")
    assert run["load"].outputs["row_count"] == 7


def test_tsv_inline_data_sniffing_and_parquet(run_bp, tmp_path):
    (tmp_path / "t.tsv").write_text("a\tb\n1\tx\n")
    (tmp_path / "semi.csv").write_text("a;b;c\n1;2;3\n4;5;6\n")
    nodes = {
        "tsv": {"type": "spreadsheet", "params": {"path": "t.tsv"}},
        "inline": {"type": "spreadsheet", "params": {"data": "a,b\n1,2\n3,4\n"}},
        "sniffed": {"type": "spreadsheet", "params": {"path": "semi.csv", "delimiter": "auto"}},
        "save": {"type": "spreadsheet", "params": {"operation": "write", "path": "o.parquet"}},
        "back": {"type": "spreadsheet", "params": {"path": "{{ inputs.input.path }}"}},
    }
    edges = ["sniffed.records -> save.input", "save.output -> back.input"]
    run = run_bp(nodes, edges)
    assert run.status.value == "succeeded", run.summary()
    assert run["tsv"].outputs["records"] == [{"a": 1, "b": "x"}]
    assert run["inline"].outputs["records"] == [{"a": 1, "b": 2}, {"a": 3, "b": 4}]
    assert run["sniffed"].outputs["headers"] == ["a", "b", "c"]
    assert run["back"].outputs["records"] == run["sniffed"].outputs["records"]


def test_xlsx_read_through_calamine_by_sheet_and_range(run_bp, tmp_path):
    rows = [{"n": i, "sq": i * i} for i in range(5)]
    nodes = {
        "w": {
            "type": "spreadsheet",
            "params": {"operation": "write", "path": "t.xlsx", "records": rows, "sheet": "data"},
        },
        "r": {
            "type": "spreadsheet",
            "params": {"path": "t.xlsx", "format": "ods", "sheet": "data", "range": "A1:B3"},
        },
    }
    run = run_bp(nodes, ["w.output -> r.input"])
    assert run.status.value == "succeeded", run.summary()
    assert run["r"].outputs["records"] == [{"n": 0, "sq": 0}, {"n": 1, "sq": 1}]


def test_a_malformed_csv_line_is_named(run_bp, tmp_path):
    (tmp_path / "bad.csv").write_text('a,b\n1,2\n3,"x\n5,6\n')
    run = run_bp({"r": {"type": "spreadsheet", "params": {"path": "bad.csv"}}})
    assert run.status.value == "failed"
    assert "bad.csv, line 3: malformed CSV" in str(run["r"].error)


def test_ragged_rows_are_padded_as_before(run_bp, tmp_path):
    (tmp_path / "r.csv").write_text("a,b,c\n1,2\n3,4,5\n")
    run = run_bp({"r": {"type": "spreadsheet", "params": {"path": "r.csv"}}})
    assert run["r"].outputs["records"] == [{"a": 1, "b": 2, "c": None}, {"a": 3, "b": 4, "c": 5}]


def test_a_file_outside_the_roots_is_refused_before_reading(run_bp, tmp_path):
    outside = tmp_path.parent / "outside-15.csv"
    outside.write_text("a\n1\n")
    roots = {"file_roots": [str(tmp_path)]}
    literal = {"r": {"type": "spreadsheet", "params": {"path": str(outside)}}}
    with pytest.raises(cnb.BlueprintError, match="outside the file roots"):
        run_bp(literal, settings=roots)  # a literal path: refused before the run
    templated = {"r": {"type": "spreadsheet", "params": {"path": "{{ params.p }}"}}}
    run = run_bp(templated, settings=roots, params={"p": {"default": str(outside)}})
    assert "outside the allowed roots" in str(run["r"].error)
    query = {"q": {"type": "sql", "params": {"query": f"SELECT * FROM read_csv('{outside}')"}}}
    run = run_bp(query, settings=roots)
    assert "Permission Error" in str(run["q"].error) and "file roots" in str(run["q"].error)


# ------------------------------------------------------------ vectorised transform


def _same_as_records(operation, **params):
    records = _records()
    on_table = transform(Table.from_records(records), operation=operation, **params)
    on_list = transform(records, operation=operation, **params)
    assert isinstance(on_table, Table)
    assert on_table == on_list
    return on_table


@pytest.mark.parametrize(
    "expression",
    [
        "item.amount >= 2 and item.tag != 't1'",
        "item.amount * 2 + 1 > 4 or item.order_id // 7 == 3",
        "item.tag in ['t0', 't2'] and not item.amount == 3",
        "item.amount / 2 > 0.5 and item.order_id % 2 == 0",  # % has no column form
        "'1' in item.tag",
        "item.order_id | string ~ item.tag == '3t0'",
        "(item.tag | upper) == 'T1' if item.amount > 1 else false",
    ],
)
def test_filter_on_a_table_equals_filter_on_records(expression):
    _same_as_records("filter", expression=expression)


@pytest.mark.parametrize("direction", ["asc", "desc"])
def test_sort_is_stable_both_ways_on_tables_and_lists(direction):
    found = _same_as_records("sort", key="amount", direction=direction)
    ids = {a: [r["order_id"] for r in found if r["amount"] == a] for a in (1, 2, 3)}
    assert all(ids[a] == sorted(ids[a]) for a in ids)  # ties keep input order
    expected = sorted(_records(), key=lambda r: r["amount"], reverse=direction == "desc")
    assert found == expected  # Python's sort is stable in reverse too


def test_sort_by_expression_and_the_other_cuts():
    _same_as_records("sort", expression="item.amount * -1", direction="desc")
    for operation in ("reverse", "limit", "skip"):
        _same_as_records(operation, count=7)
    _same_as_records("slice", start=-20, end=-3)
    _same_as_records("unique", key="tag")
    _same_as_records("select", columns=["tag", "amount"])
    _same_as_records("rename", columns={"tag": "label"})


def test_group_with_aggregates_in_first_seen_order():
    records = _records()
    found = transform(
        Table.from_records(records),
        operation="group",
        key="tag",
        aggregate={"n": "count()", "total": "sum(amount)", "top": "first(order_id)"},
    )
    frame = pd.DataFrame(records).groupby("tag", sort=False)
    expected = frame.agg(n=("order_id", "size"), total=("amount", "sum"), top=("order_id", "first"))
    assert found == expected.reset_index().to_dict("records")
    assert transform(records, operation="group", key="tag", aggregate={"n": "count()"}) == [
        {"tag": r["tag"], "n": r["n"]} for r in found
    ]


def test_map_sets_a_column_or_gives_values():
    table = Table.from_records(_records())
    with_total = transform(table, operation="map", expression="item.amount * 10", column="x")
    assert [r["x"] for r in with_total] == [r["amount"] * 10 for r in _records()]
    values = transform(table, operation="map", expression="item.tag ~ '!'")
    assert values == [r["tag"] + "!" for r in _records()]


def test_a_filter_with_no_column_form_runs_row_by_row_and_says_so(run_bp, orders):
    nodes = {
        "odd": {
            "type": "transform",
            "params": {
                "operation": "filter",
                "expression": "item.note in ['a', 'c', 'e', 'g'] and index > 0",
            },
        },
        "fancy": {
            "type": "transform",
            "params": {"operation": "filter", "expression": "item.note.startswith('c')"},
        },
    }
    run = _load(run_bp, nodes, ["load.records -> odd.input", "load.records -> fancy.input"])
    assert run.status.value == "succeeded", run.summary()
    assert [r["order_id"] for r in run["odd"].output] == [3, 5, 7]
    assert [r["order_id"] for r in run["fancy"].output] == [3]
    logs = "".join(line.text for line in run["fancy"].logs)
    assert "evaluated row by row (7 rows): call has no column form" in logs
    assert "row by row" not in "".join(line.text for line in run["odd"].logs)


def test_a_missing_column_names_the_column_the_node_and_the_columns(run_bp, orders):
    nodes = {
        "f": {
            "type": "transform",
            "params": {"operation": "filter", "expression": "item.amout > 1"},
        }
    }
    run = _load(run_bp, nodes, ["load.records -> f.input"])
    error = str(run["f"].error)
    assert "node 'f' (transform)" in error
    assert "no column 'amout'" in error and "order_id, region, status, amount, note" in error
    assert "did you mean 'amount'?" in error


def test_the_time_limit_is_per_row_not_for_the_whole_list():
    records = [{"n": i} for i in range(20_000)]  # the whole list takes longer than 0.5 s
    found = transform(records, operation="map", expression="item.n + 1", time_limit=0.5)
    assert found[-1] == 20_000


# ------------------------------------------------------------------ merge and sql


def test_merge_join_keeps_a_fixed_order_and_names_a_missing_key(run_bp, orders):
    regions = [{"region": "north", "manager": "Ada"}, {"region": "east", "manager": "Grace"}]
    nodes = {
        "j": {
            "type": "merge",
            "params": {"mode": "join", "on": "region", "how": "left", "other": regions},
        },
        "bad": {"type": "merge", "params": {"mode": "join", "on": "status", "other": regions}},
        "both": {"type": "merge", "params": {"other": regions}},
    }
    edges = ["load.records -> j.input", "load.records -> bad.input", "load.records -> both.input"]
    run = _load(run_bp, nodes, edges)
    joined = run["j"].output
    assert [r["order_id"] for r in joined] == [1, 2, 3, 4, 5, 6, 7]
    assert [r["manager"] for r in joined] == ["Ada", None, "Ada", "Grace", None, "Ada", "Grace"]
    assert "join key 'status' is missing on the right (other)" in str(run["bad"].error)
    assert "region, manager" in str(run["bad"].error)
    assert len(run["both"].output) == 9 and run["both"].output[-1]["manager"] == "Grace"


def test_merge_zip_needs_equal_lengths():
    from conductor_nb.nodes.builtin.merge import merge

    assert merge([{"a": 1}], [{"a": 2}], mode="zip") == [{"a": 1, "a_right": 2}]
    with pytest.raises(ValueError, match="left \\(input\\) has 1 rows, the right \\(other\\) 2"):
        merge([{"a": 1}], [{"a": 2}, {"a": 3}], mode="zip")


def test_sql_over_inputs_and_files_with_bound_parameters(run_bp, orders):
    nodes = {
        "q": {
            "type": "sql",
            "params": {
                "query": "SELECT o.region, count(*) AS n, any_value(r.manager) AS manager "
                "FROM input o JOIN read_csv('managers.csv') r USING (region) "
                "WHERE o.status = $status GROUP BY o.region ORDER BY o.region",
                "parameters": {"status": "paid"},
            },
        }
    }
    (orders.parent / "managers.csv").write_text("region,manager\nnorth,Ada\neast,Grace\n")
    run = _load(run_bp, nodes, ["load.records -> q.input"])
    assert run.status.value == "succeeded", run.summary()
    assert run["q"].output == [
        {"region": "east", "n": 2, "manager": "Grace"},
        {"region": "north", "n": 1, "manager": "Ada"},
    ]


def test_a_bad_query_names_the_tables_it_can_use(run_bp):
    run = run_bp(
        {"q": {"type": "sql", "params": {"query": "SELECT * FROM nope", "input": [{"a": 1}]}}}
    )
    assert "nope" in str(run["q"].error) and "tables the query can use: input" in str(
        run["q"].error
    )


# ----------------------------------------------------------- functions and history


def test_functions_get_the_form_their_type_hints_ask_for(run_bp, orders):
    seen = {}

    @cnb.node
    def as_records(rows: list[dict]) -> int:
        seen["records"] = type(rows)
        return len(rows)

    @cnb.node
    def as_arrow(t: pa.Table) -> int:
        seen["arrow"] = type(t)
        return t.num_rows

    @cnb.node
    def as_pandas(df: pd.DataFrame) -> float:
        seen["pandas"] = type(df)
        return float(df["amount"].sum())

    @cnb.node
    def as_polars(df: pl.DataFrame) -> pl.DataFrame:
        seen["polars"] = type(df)
        return df.filter(pl.col("amount") > 100)

    bp = cnb.Blueprint("hints")
    bp.add("spreadsheet", id="load", path=str(orders))
    for fn in (as_records, as_arrow, as_pandas, as_polars):
        bp.add(fn, id=fn.__name__)
        bp.connect("load.records", f"{fn.__name__}.{next(iter(fn.__annotations__))}")
    run = bp.run(history=False, settings={"file_roots": [str(orders.parent)]})
    assert run.status.value == "succeeded", run.summary()
    assert seen == {
        "records": list,
        "arrow": pa.Table,
        "pandas": pd.DataFrame,
        "polars": pl.DataFrame,
    }
    assert run["as_pandas"].output == pytest.approx(516.0)
    assert len(run["as_polars"].output) == 2


def test_history_stores_a_table_once_as_parquet(tmp_path, orders, monkeypatch):
    monkeypatch.chdir(tmp_path)
    home = tmp_path / "home"
    bp = cnb.Blueprint("h")
    bp.add("spreadsheet", id="load", path="orders.csv")
    bp.add("transform", id="a", operation="limit", count=3)
    bp.add("transform", id="b", operation="filter", expression="item.amount > 50")
    bp.connect("load.records", "a.input")
    bp.connect("load.records", "b.input")
    run = bp.run(history=cnb.RunHistory(home))
    assert run.status.value == "succeeded", run.summary()
    loaded = cnb.load_run(run.id, home=home)  # waits for the background Parquet writer
    assert isinstance(loaded["b"].output, Table)
    assert loaded["b"].output == run["b"].output
    flush_tables()
    blobs = sorted(p for p in (home / "blobs").rglob("*") if p.is_file())
    assert len(blobs) == 3  # load's table (also a's and b's input), a's and b's outputs
    same = bp.run(history=cnb.RunHistory(home))  # equal tables are not stored again
    assert same.status.value == "succeeded"
    flush_tables()
    assert sorted(p for p in (home / "blobs").rglob("*") if p.is_file()) == blobs


def test_shape_for_the_inspector():
    shape = shape_of(Table.from_records([{"a": 1, "b": "x"}, {"a": 2, "b": None}]), rows=1)
    assert shape == {
        "kind": "table",
        "row_count": 2,
        "columns": [{"name": "a", "type": "int64"}, {"name": "b", "type": "string"}],
        "rows": [[1, "x"]],
    }
    assert shape_of([{"a": 1}])["kind"] == "records" and shape_of(3) is None


def test_past_the_run_cap_a_table_is_kept_as_a_preview(tmp_path, orders, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CONDUCTOR_HISTORY_CAP", "300")  # bytes: the first table fits
    home = tmp_path / "home"
    bp = cnb.Blueprint("capped")
    bp.add("spreadsheet", id="load", path="orders.csv")
    bp.add("transform", id="paid", operation="filter", expression="item.status == 'paid'")
    bp.connect("load.records", "paid.input")
    run = bp.run(history=cnb.RunHistory(home))
    assert run.status.value == "succeeded", run.summary()
    loaded = cnb.load_run(run.id, home=home)
    assert isinstance(loaded["load"].outputs["records"], Table)  # within the cap
    assert isinstance(loaded["paid"].inputs["input"], Table)  # the same table, charged once
    capped = loaded["paid"].output
    assert "capped" in repr(capped) and "<Table 5 rows" in repr(capped)
    with pytest.raises(ValueError, match="CONDUCTOR_HISTORY_CAP"):
        capped.load()
