"""``merge``: combine two inputs into one table: append, join on keys, or zip by position.

``input`` is the first (left) side and ``other`` the second (right). Either may
be a table or a list of records. ``append`` stacks the rows (columns missing on
one side are empty there); ``join`` matches rows on ``on`` (one column, or
several separated by commas; ``rightOn`` when the right side names them
otherwise) as ``inner``, ``left``, ``right`` or ``outer``; ``zip`` puts the
columns side by side, row by row, and needs equal lengths. A column both sides
have (other than the keys) gets ``suffix`` on the right side's copy.

Joins are Arrow hash joins; their result is put back in a fixed order (the left
rows' order, then the right rows' for each left row; unmatched right rows last)
so the same inputs always give the same table.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from conductor_nb._extras import require
from conductor_nb.model.table import Table
from conductor_nb.model.types import Port
from conductor_nb.nodes.builtin import _vector
from conductor_nb.nodes.builtin._define import define, param

MODES = ("append", "join", "zip")
HOWS = ("inner", "left", "right", "outer")
_ARROW_HOW = {"inner": "inner", "left": "left outer", "right": "right outer", "outer": "full outer"}
_LEFT, _RIGHT = "__conductor_left__", "__conductor_right__"


def as_table(value: Any, side: str) -> Table:
    """A table of ``value`` (a table, a frame or a list of records); errors name the side."""
    table = Table.from_any(value)
    if table is not None:
        return table
    if value is None:
        raise ValueError(f"merge: the {side} is None: connect it or give it a value")
    if isinstance(value, Mapping):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(r, Mapping) for r in value):
        raise TypeError(f"merge: the {side} must be a table or a list of records")
    pa = require("pyarrow", "data", "merge")
    try:
        return Table.from_records(value)
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise TypeError(f"merge: the {side}'s records do not make a table: {exc}") from None


def _keys(spec: str | list[str], table: Table, side: str) -> list[str]:
    names = [k.strip() for k in spec.split(",")] if isinstance(spec, str) else list(spec)
    names = [n for n in names if n]
    if not names:
        raise ValueError("merge join needs on: the key column(s)")
    for name in names:
        if name not in table.columns:
            error = _vector.missing_column(name, table.columns)
            raise LookupError(f"join key {name!r} is missing on the {side}: {error}") from None
    return names


def append(left: Table, right: Table) -> Table:
    pa = require("pyarrow", "data", "merge")
    try:
        arrow = pa.concat_tables([left.arrow, right.arrow], promote_options="permissive")
    except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
        raise TypeError(
            f"merge append: the two sides' columns do not fit together: {exc}"
        ) from None
    return Table(arrow)


def join(left: Table, right: Table, on: Any, right_on: Any, how: str, suffix: str) -> Table:
    pa = require("pyarrow", "data", "merge")
    left_keys = _keys(on, left, "left (input)")
    right_keys = _keys(right_on or on, right, "right (other)")
    if len(left_keys) != len(right_keys):
        raise ValueError(
            f"merge join: {len(left_keys)} key(s) on the left, {len(right_keys)} on the right"
        )
    renamed = _suffixed(left, right, right_keys, suffix)
    lt = left.arrow.append_column(_LEFT, pa.array(range(len(left)), pa.int64()))
    rt = renamed.append_column(_RIGHT, pa.array(range(len(right)), pa.int64()))
    joined = lt.join(
        rt,
        keys=left_keys,
        right_keys=right_keys,
        join_type=_ARROW_HOW[how],
        coalesce_keys=True,
        use_threads=True,
    )
    joined = joined.sort_by([(_LEFT, "ascending"), (_RIGHT, "ascending")])
    order = [*left.columns, *(c for c in renamed.column_names if c not in right_keys)]
    if how in ("right", "outer"):
        order = [c for c in order if c in joined.column_names]
    return Table(joined.select(order))


def _suffixed(left: Table, right: Table, right_keys: list[str], suffix: str) -> Any:
    names = [
        f"{n}{suffix}" if n in left.columns and n not in right_keys else n for n in right.columns
    ]
    return right.arrow.rename_columns(names)


def zip_rows(left: Table, right: Table, suffix: str) -> Table:
    if len(left) != len(right):
        raise ValueError(
            f"merge zip: the left (input) has {len(left)} rows, the right (other) {len(right)}; "
            "zip pairs rows by position and needs equal lengths"
        )
    arrow = left.arrow
    for name, column in zip(
        _suffixed(left, right, [], suffix).column_names, right.arrow.columns, strict=True
    ):
        arrow = arrow.append_column(name, column)
    return Table(arrow)


def merge(
    input: Any = None,
    other: Any = None,
    mode: str = "append",
    on: Any = "",
    rightOn: Any = "",
    how: str = "inner",
    suffix: str = "_right",
) -> Table:
    """Append, join or zip two tables (or lists of records)."""
    left, right = as_table(input, "left (input)"), as_table(other, "right (other)")
    if mode == "append":
        return append(left, right)
    if mode == "zip":
        return zip_rows(left, right, suffix)
    return join(left, right, on, rightOn, how, suffix)


def _check(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = []
    if values.get("mode") == "join" and not values.get("on"):
        problems.append(("on", "mode join needs on: the key column(s), e.g. on: customer_id"))
    return problems


MERGE = define(
    "merge",
    merge,
    category="data",
    description="Combine two tables (or lists of records): append the rows, join on key "
    "columns (inner, left, right, outer), or zip the columns side by side by position.",
    inputs=[Port("other", default=None, description="the second (right) table")],
    output_type="table",
    params=[
        param("mode", "str", "append", "append, join or zip", choices=MODES),
        param("on", "any", "", "join: the key column(s) (several: a list or a, b)"),
        param("rightOn", "any", "", "join: the right side's key column(s) when named otherwise"),
        param("how", "str", "inner", "join: which rows to keep", choices=HOWS),
        param("suffix", "str", "_right", "added to a right column whose name the left has"),
    ],
    example={
        "type": "merge",
        "params": {
            "input": [{"id": 1, "name": "Ada"}, {"id": 2, "name": "Grace"}],
            "other": [{"id": 1, "total": 30}, {"id": 1, "total": 12}],
            "mode": "join",
            "on": "id",
            "how": "left",
        },
    },
    validate=_check,
)

NODE_TYPES = [MERGE]
