"""``transform`` over a table: each operation on whole columns, never on Python dicts.

An expression is compiled to column operations by :mod:`._vector`; when it cannot
be, it is evaluated row by row in the sandbox (each row under its own time
limit), and the node's log says so and why. Sorting is stable in both
directions (equal keys keep their input order; missing values go last), as
pandas' ``kind="stable"`` sorts. ``group`` with ``aggregate`` gives one row per
group, in the order the groups first appear.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Mapping
from typing import Any

from conductor_nb.model.table import Table
from conductor_nb.nodes.builtin import _vector

log = logging.getLogger("conductor_nb.nodes.transform")
log.setLevel(logging.INFO)

RowEval = Callable[..., Any]
"""Evaluates the expression for one record: ``(item, index) -> value``."""

AGGREGATES = ("count", "sum", "mean", "min", "max", "first", "last", "list", "distinct")
_AGGREGATE = re.compile(r"\s*(\w+)\s*\(\s*([^()]*?)\s*\)\s*")
_INDEX = "__conductor_row__"


def _pc() -> Any:
    import pyarrow.compute as pc

    return pc


def values(table: Table, expression: str, params: Mapping[str, Any], row_eval: RowEval) -> Any:
    """The expression over every row: an Arrow array (vectorised) or a Python list."""
    try:
        return _vector.evaluate(expression, table.arrow, params)
    except _vector.NotVectorised as why:
        log.info(
            "expression %r is evaluated row by row (%s rows): %s has no column form",
            expression,
            f"{len(table):,}",
            why,
        )
    except _vector.MissingColumn:
        raise
    return [row_eval(item, i) for i, item in enumerate(table.records())]


def _broadcast(value: Any, rows: int) -> Any:
    import pyarrow as pa

    if isinstance(value, pa.Scalar):
        return pa.array([value.as_py()] * rows, value.type)
    return value


def filter_rows(table: Table, expression: str, params: Mapping[str, Any], ev: RowEval) -> Table:
    import pyarrow as pa

    found = _broadcast(values(table, expression, params, ev), len(table))
    if isinstance(found, list):
        return Table(table.arrow.filter(pa.array([bool(v) for v in found], pa.bool_())))
    if not pa.types.is_boolean(found.type):
        log.info(
            "filter %r gives %s, not true/false: kept rows are the truthy ones",
            expression,
            found.type,
        )
        return Table(table.arrow.filter(pa.array([bool(v) for v in found.to_pylist()])))
    return Table(table.arrow.filter(found, null_selection_behavior="drop"))


def map_rows(
    table: Table, expression: str, params: Mapping[str, Any], ev: RowEval, column: str
) -> Any:
    """Each row's value (a list), or with ``column`` the table with that column set."""
    import pyarrow as pa

    found = _broadcast(values(table, expression, params, ev), len(table))
    if not column:
        return found if isinstance(found, list) else found.to_pylist()
    array = pa.array(found) if isinstance(found, list) else found
    names = table.arrow.column_names
    if column in names:
        return Table(table.arrow.set_column(names.index(column), column, array))
    return Table(table.arrow.append_column(column, array))


def key_columns(table: Table, key: str) -> list[str]:
    """The columns of a ``key`` (one name, or several separated by commas), checked."""
    names = [k.strip() for k in key.split(",") if k.strip()]
    for name in names:
        if name not in table.arrow.column_names:
            raise _vector.missing_column(name, table.columns)
    return names


def sort(
    table: Table,
    key: str,
    expression: str,
    direction: str,
    params: Mapping[str, Any],
    ev: RowEval,
) -> Table:
    order = "descending" if direction == "desc" else "ascending"
    if key:
        keys = [(name, order) for name in key_columns(table, key)]
        return Table(table.arrow.sort_by(keys))
    if not expression:
        raise ValueError("sort over a table needs a key (a column) or an expression")
    found = _broadcast(values(table, expression, params, ev), len(table))
    if isinstance(found, list):
        return Table(table.arrow.take(_sort_python(found, direction == "desc")))
    indices = _pc().sort_indices(found, sort_keys=[("", order)])
    return Table(table.arrow.take(indices))


def _sort_python(keys: list[Any], descending: bool) -> list[int]:
    """Stable in both directions; None last; numbers before text (mixed keys sort)."""
    present = [i for i, k in enumerate(keys) if k is not None]
    ranked = sorted(
        present,
        key=lambda i: (0, keys[i]) if isinstance(keys[i], int | float) else (1, str(keys[i])),
        reverse=descending,  # Python keeps equal keys in input order even in reverse
    )
    return ranked + [i for i, k in enumerate(keys) if k is None]


def _with_index(table: Table) -> Any:
    import pyarrow as pa

    return table.arrow.append_column(_INDEX, pa.array(range(len(table)), pa.int64()))


def unique(table: Table, key: str) -> Table:
    """The first row of each distinct key (or of each distinct whole row)."""
    keys = key_columns(table, key) if key else list(table.arrow.column_names)
    grouped = _with_index(table).group_by(keys, use_threads=False).aggregate([(_INDEX, "min")])
    first = _pc().sort_indices(grouped.column(f"{_INDEX}_min"))
    return Table(table.arrow.take(_pc().take(grouped.column(f"{_INDEX}_min"), first)))


def parse_aggregate(out: str, spec: Any, columns: list[str]) -> tuple[str, str, str]:
    """``revenue: sum(amount)`` -> (column, function, output name); errors say which."""
    match = _AGGREGATE.fullmatch(str(spec))
    if not match or match.group(1) not in AGGREGATES:
        raise ValueError(
            f"aggregate {out!r}: expected one of {', '.join(a + '(column)' for a in AGGREGATES)}"
            f" (count() counts rows), got {spec!r}"
        )
    function, column = match.groups()
    if column and column not in columns:
        raise _vector.missing_column(column, columns)
    if not column and function != "count":
        raise ValueError(f"aggregate {out!r}: {function}() needs a column, e.g. {function}(amount)")
    return column, function, out


def group(table: Table, key: str, aggregate: Mapping[str, Any] | None) -> Any:
    """With ``aggregate``: one row per group (keys, then the aggregates), groups in order of
    first appearance. Without: ``{key: table of the group's rows}`` like the list form."""
    keys = key_columns(table, key)
    if not aggregate:
        return _groups(table, keys)
    specs = [parse_aggregate(out, spec, table.columns) for out, spec in aggregate.items()]
    arrow = _with_index(table)
    plan: list[tuple[Any, ...]] = [(_INDEX, "min")]
    for column, function, _ in specs:
        plan.append(_plan(column, function))
    grouped = arrow.group_by(keys, use_threads=False).aggregate(plan)
    order = _pc().sort_indices(grouped.column(f"{_INDEX}_min"))
    grouped = grouped.take(order)
    names = [*keys, *(out for _, _, out in specs)]
    keys_first = grouped.column_names[: len(keys)] == keys  # Arrow >= 20; before: keys last
    first = (len(keys) if keys_first else 0) + 1  # after the index's min
    columns = [grouped.column(k) for k in keys]
    columns += [grouped.column(first + i) for i in range(len(specs))]
    import pyarrow as pa

    return Table(pa.table(columns, names=names))


def _plan(column: str, function: str) -> tuple[Any, ...]:
    if function == "count":
        return ([], "count_all") if not column else (column, "count")
    if function == "distinct":
        return (column, "count_distinct")
    return (column, function)


def _groups(table: Table, keys: list[str]) -> dict[Any, Table]:
    grouped = _with_index(table).group_by(keys, use_threads=False).aggregate([(_INDEX, "list")])
    out: dict[Any, Table] = {}
    for row, rows in zip(
        grouped.select(keys).to_pylist(), grouped.column(f"{_INDEX}_list").to_pylist(), strict=True
    ):
        name = row[keys[0]] if len(keys) == 1 else ", ".join(str(row[k]) for k in keys)
        out[name if isinstance(name, str | int | float | bool) or name is None else str(name)] = (
            Table(table.arrow.take(rows))
        )
    return out


def select(table: Table, columns: Any, keep_others: bool) -> Table:
    """Columns by name (a list), or renamed (a mapping old -> new); ``keep_others`` for rename."""
    names = table.columns
    if isinstance(columns, Mapping):
        for old in columns:
            if old not in names:
                raise _vector.missing_column(str(old), names)
        chosen = names if keep_others else [str(c) for c in columns]
        arrow = table.arrow.select(chosen)
        return Table(arrow.rename_columns([str(columns.get(n, n)) for n in chosen]))
    if isinstance(columns, str):
        columns = [c.strip() for c in columns.split(",") if c.strip()]
    for name in columns or []:
        if name not in names:
            raise _vector.missing_column(str(name), names)
    return Table(table.arrow.select(list(columns or [])))


def cut(table: Table, operation: str, opts: Mapping[str, Any]) -> Table:
    """limit, skip, slice and reverse: row positions only."""
    rows = len(table)
    if operation == "reverse":
        return Table(table.arrow.take(list(range(rows - 1, -1, -1))))
    if operation == "limit":
        window = slice(None, opts["count"])
    elif operation == "skip":
        window = slice(opts["count"], None)
    else:
        window = slice(opts["start"], opts["end"])
    start, stop, _ = window.indices(rows)
    return Table(table.arrow.slice(start, max(0, stop - start)))
