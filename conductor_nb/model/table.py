"""The table value: an Arrow table that flows between data nodes and reads as records.

Tabular nodes (``spreadsheet``, ``transform``, ``merge``, ``sql``) pass a
:class:`Table` from one to the next without ever building Python dicts, and
work on its columns. Everything else sees it as what it always saw, a list of
records: ``len(t)``, ``t[0]``, ``for record in t``, ``t == [{...}, ...]`` and
templates (``{{ inputs.input | length }}``) all work, and the records are built
once, the first time something asks for them, then kept.

A function node gets the form its type hint asks for (:func:`adapt`):
``list[dict]`` (or ``list``) gets the records, ``pyarrow.Table`` the Arrow table
itself, ``pandas.DataFrame`` and ``polars.DataFrame`` a frame converted from it
(zero-copy where the library allows). ``pyarrow`` is imported only when a table
is made or read, so ``import conductor_nb`` stays light.
"""

from __future__ import annotations

import typing
from collections.abc import Iterator, Mapping, Sequence
from html import escape
from typing import Any, overload

PREVIEW_ROWS = 20


def _pa() -> Any:
    from conductor_nb._extras import require

    return require("pyarrow", "data", "tables")


class Table(Sequence[dict[str, Any]]):
    """An immutable Arrow table that also reads as a list of records (see the module doc)."""

    __slots__ = ("__weakref__", "_records", "arrow", "digest")

    def __init__(self, arrow: Any) -> None:
        self.arrow = arrow
        self._records: list[dict[str, Any]] | None = None
        self.digest: str | None = None  # set by the history once stored (the table never changes)

    # ---------------------------------------------------------------- making
    @classmethod
    def from_records(
        cls, records: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None
    ) -> Table:
        """A table of ``records`` (raises ``pyarrow.ArrowInvalid``/``TypeError`` on mixed types)."""
        pa = _pa()
        if columns is None:
            names: list[str] = []
            for record in records:
                names += [k for k in record if k not in names]
            columns = names
        arrays = {name: [r.get(name) for r in records] for name in columns}
        return cls(pa.table(arrays) if arrays else pa.table({}))

    @classmethod
    def from_any(cls, value: Any) -> Table | None:
        """``value`` as a table when it is one (Table, Arrow, pandas, polars), else None."""
        if isinstance(value, Table):
            return value
        module = type(value).__module__.partition(".")[0]
        if module == "pyarrow" and type(value).__name__ == "Table":
            return cls(value)
        if module == "pandas" and type(value).__name__ == "DataFrame":
            return cls(_pa().Table.from_pandas(value, preserve_index=False))
        if module == "polars" and type(value).__name__ == "DataFrame":
            return cls(value.to_arrow())
        return None

    # ------------------------------------------------------------- as records
    def __len__(self) -> int:
        return int(self.arrow.num_rows)

    @overload
    def __getitem__(self, index: int) -> dict[str, Any]: ...
    @overload
    def __getitem__(self, index: slice) -> Table: ...
    def __getitem__(self, index: int | slice) -> dict[str, Any] | Table:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step == 1:
                return Table(self.arrow.slice(start, max(0, stop - start)))
            return Table(self.arrow.take(list(range(start, stop, step))))
        if self._records is not None:
            return self._records[index]
        position = index + len(self) if index < 0 else index
        if not 0 <= position < len(self):
            raise IndexError(f"row {index} of a table of {len(self)} rows")
        row: dict[str, Any] = self.arrow.slice(position, 1).to_pylist()[0]
        return row

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records())

    def records(self) -> list[dict[str, Any]]:
        """The rows as dicts, built once and kept (treat them as read-only)."""
        if self._records is None:
            self._records = self.arrow.to_pylist()
        return self._records

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Table):
            return bool(self.arrow.equals(other.arrow))
        if isinstance(other, list | tuple):
            return len(other) == len(self) and self.records() == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __bool__(self) -> bool:
        return len(self) > 0

    # ----------------------------------------------------------------- shape
    @property
    def columns(self) -> list[str]:
        return list(self.arrow.column_names)

    def column_types(self) -> dict[str, str]:
        return {f.name: str(f.type) for f in self.arrow.schema}

    def shape(self, rows: int = PREVIEW_ROWS) -> dict[str, Any]:
        """What the inspector and reports show: row count, columns with types, first rows."""
        head = self.arrow.slice(0, rows).to_pylist()
        return {
            "kind": "table",
            "row_count": len(self),
            "columns": [{"name": n, "type": t} for n, t in self.column_types().items()],
            "rows": [[_jsonable(row[n]) for n in self.columns] for row in head],
        }

    def __repr__(self) -> str:
        cols = ", ".join(f"{n}: {t}" for n, t in list(self.column_types().items())[:8])
        more = ", ..." if len(self.columns) > 8 else ""
        return f"<Table {len(self):,} rows x {len(self.columns)} columns ({cols}{more})>"

    def _repr_html_(self) -> str:
        """A notebook shows the row count, the columns with their types and the first rows."""
        shape = self.shape(10)
        head = "".join(
            f"<th>{escape(c['name'])}<br><small>{escape(c['type'])}</small></th>"
            for c in shape["columns"]
        )
        body = "".join(
            "<tr>" + "".join(f"<td>{escape(str(v))}</td>" for v in row) + "</tr>"
            for row in shape["rows"]
        )
        more = len(self) - len(shape["rows"])
        note = f"<p>{len(self):,} rows" + (f" ({more:,} more not shown)" if more else "") + "</p>"
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>{note}"

    def __reduce__(self) -> tuple[Any, ...]:
        return (Table, (self.arrow,))

    # -------------------------------------------------------------- as frames
    def to_pandas(self) -> Any:
        return self.arrow.to_pandas()

    def to_polars(self) -> Any:
        from conductor_nb._extras import require

        return require("polars", "polars", "polars data frames").from_arrow(self.arrow)


def shape_of(value: Any, rows: int = PREVIEW_ROWS) -> dict[str, Any] | None:
    """The table shape of ``value`` (see :meth:`Table.shape`) when it is tabular, else None.

    Also answers for a list of records, so a view shows both the same way.
    """
    table = Table.from_any(value)
    if table is not None:
        return table.shape(rows)
    if isinstance(value, list) and value and all(isinstance(r, Mapping) for r in value[:rows]):
        names: list[str] = []
        for record in value[:rows]:
            names += [str(k) for k in record if str(k) not in names]
        return {
            "kind": "records",
            "row_count": len(value),
            "columns": [{"name": n, "type": ""} for n in names],
            "rows": [[_jsonable(r.get(n)) for n in names] for r in value[:rows]],
        }
    return None


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


# ------------------------------------------------------------- by type hints

_FRAME_KINDS = {
    ("pyarrow", "Table"): "arrow",
    ("pandas", "DataFrame"): "pandas",
    ("polars", "DataFrame"): "polars",
    ("conductor_nb", "Table"): "table",
}


def hint_kind(hint: Any) -> str | None:
    """What form a parameter annotated ``hint`` wants a table in, or None (as it comes)."""
    if isinstance(hint, str):
        text = hint.replace(" ", "")
        if text.startswith(("list[dict", "List[dict")) or text in ("list", "List"):
            return "records"
        for (module, name), kind in _FRAME_KINDS.items():
            if text in (f"{module}.{name}", f"{module[:2]}.{name}") or (
                module == "pyarrow" and text == "pa.Table"
            ):
                return kind
        return None
    origin = typing.get_origin(hint) or hint
    if origin is list:
        return "records"
    if isinstance(origin, type):
        module = origin.__module__.partition(".")[0]
        return _FRAME_KINDS.get((module, origin.__name__))
    return None


def adapt(value: Any, kind: str) -> Any:
    """A table ``value`` in the form ``kind`` (from :func:`hint_kind`); other values as they are."""
    if kind == "records":
        return value.records() if isinstance(value, Table) else value
    table = Table.from_any(value)
    if table is None:
        return value
    if kind == "arrow":
        return table.arrow
    if kind == "pandas":
        return value if type(value).__module__.startswith("pandas") else table.to_pandas()
    if kind == "polars":
        return value if type(value).__module__.startswith("polars") else table.to_polars()
    return table
