"""``sql``: a DuckDB query over the node's input tables and over files inside the file roots.

The query sees ``input`` (and ``other``) as tables, plus every entry of
``tables`` by its name; each may be a table, a data frame or a list of
records. Files are read by path with DuckDB's own functions
(``read_csv('orders.csv')``, ``read_parquet('x.parquet')``, or just
``FROM 'orders.csv'``; a relative path is relative to the working directory, the
default file root); DuckDB is told to
refuse every path outside the file roots (``allowed_directories`` with
external access off), so a query cannot reach other files or the network.
Values go in as bound parameters (``?`` with a list, ``$name`` with a
mapping), never spliced into the text. The result is a table.

Each run opens its own in-memory database, so nothing is kept between runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conductor_nb._extras import require
from conductor_nb.model.table import Table
from conductor_nb.model.types import Port
from conductor_nb.nodes.builtin._define import define, is_given_empty, param
from conductor_nb.nodes.builtin.files import allowed_roots
from conductor_nb.nodes.builtin.merge import as_table


def _connect(roots: list[Any]) -> Any:
    duckdb = require("duckdb", "data", "the sql node")
    con = duckdb.connect(":memory:")
    con.execute("SET allowed_directories = ?", [[f"{r}/" for r in roots]])
    con.execute("SET enable_external_access = false")  # after this, only the roots are read
    con.execute("SET lock_configuration = true")  # and the query cannot turn it back on
    return con


def _arrow(relation: Any) -> Any:
    """The result as an Arrow table (the method's name changed across DuckDB versions)."""
    fetch = getattr(relation, "to_arrow_table", None) or relation.arrow
    return fetch()


def _empty() -> Any:
    """What a statement that returns no rows (``SET ...``) gives."""
    return require("pyarrow", "data", "the sql node").table({})


def sql(
    ctx: Any,
    input: Any = None,
    other: Any = None,
    query: str = "",
    tables: dict[str, Any] | None = None,
    parameters: Any = None,
) -> Table:
    """Run a DuckDB query over the inputs (as tables) and files inside the file roots."""
    roots = allowed_roots(getattr(ctx, "settings", None))
    views = {"input": input, "other": other, **(tables or {})}
    con = _connect(roots)
    try:
        for name, value in views.items():
            if value is not None:
                con.register(str(name), as_table(value, f"table {name!r}").arrow)
        duckdb = require("duckdb", "data", "the sql node")
        try:
            relation = con.sql(query, params=parameters or None)
            arrow = _arrow(relation) if relation is not None else _empty()
        except duckdb.Error as exc:
            raise ValueError(_explain(exc, views, roots)) from None
    finally:
        con.close()
    return Table(arrow)


def _explain(exc: Exception, views: Mapping[str, Any], roots: list[Any]) -> str:
    text = str(exc).strip()
    given = ", ".join(n for n, v in views.items() if v is not None) or "none"
    if "Permission Error" in text or "enable_external_access" in text:
        return (
            f"{text}\n  the sql node reads files only inside the file roots "
            f"({', '.join(map(str, roots))}); allow another folder with the run option "
            "settings={'file_roots': [...]}"
        )
    return f"{text}\n  tables the query can use: {given}"


def _check(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = []
    if is_given_empty(values, "query"):
        problems.append(("query", "query is empty: write the SQL, e.g. SELECT * FROM input"))
    given = values.get("parameters")
    if given is not None and not isinstance(given, list | tuple | Mapping | str):
        problems.append(("parameters", "expected a list (for ?) or a mapping (for $name)"))
    return problems


SQL = define(
    "sql",
    sql,
    category="data",
    description="Query tables with SQL (DuckDB): the inputs are tables named input and other "
    "(and any in tables); files inside the file roots are read by path; parameters are bound.",
    inputs=[
        Port("other", default=None, description="a second table, named other in the query"),
        Port("tables", type="dict", default=None, description="more tables: name -> table"),
    ],
    output_type="table",
    params=[
        param("query", "code", "", "the SQL query (DuckDB's dialect)", required=True),
        param("parameters", "any", None, "values bound to ? (a list) or $name (a mapping)"),
    ],
    example={
        "type": "sql",
        "params": {
            "input": [{"region": "north", "amount": 30}, {"region": "south", "amount": 12}],
            "query": "SELECT region, sum(amount) AS total FROM input WHERE amount > ? "
            "GROUP BY region ORDER BY region",
            "parameters": [10],
        },
    },
    validate=_check,
    takes_context=True,
    side_effects=True,
)

NODE_TYPES = [SQL]
