"""``spreadsheet``: read and write CSV (stdlib) and xlsx (openpyxl, lazily imported).

Reading gives ``{records, headers, row_count, path}``: records are dicts keyed
by the header row (or ``column_1``... without one). Writing takes a list of
records (or of lists) and writes it atomically. Paths are confined to the
allowed roots like ``file-system``'s.

xlsx cells keep the types the workbook stores. CSV cells are text; with
``inferTypes`` (the default) a column whose every non-empty cell spells a plain
number is read as numbers, so sorting and comparing work without ``| int``:

- integers without a plus sign or leading zero: ``42``, ``-7`` (``str(int(s)) == s``);
- decimals with digits on both sides of the point that a float keeps to the last
  digit: ``3.5``, ``-0.25``, ``19.90`` (read as ``19.9``); ``0.1234567890123456789``
  stays text;
- empty (or blank) cells of such a column read as None.

Anything else keeps the whole column text: leading zeros (``01234``: zip codes,
ids), ``+5``, exponents (``1e3``), thousands separators, ``nan``/``inf``,
surrounding spaces, and ``true``/``false``. ``inferTypes: false`` reads every
cell as text, as the file spells it.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from conductor_nb._extras import require
from conductor_nb.model.table import Table
from conductor_nb.model.types import Port
from conductor_nb.nodes.builtin import _tabular
from conductor_nb.nodes.builtin._define import define, is_given_empty, param
from conductor_nb.nodes.builtin.files import allowed_roots, atomic_write, confine


def _is_empty(row: Sequence[Any]) -> bool:
    return all(cell is None or (isinstance(cell, str) and not cell.strip()) for cell in row)


def _to_records(
    rows: list[list[Any]], has_headers: bool, skip_empty: bool
) -> tuple[list[dict[str, Any]], list[str]]:
    if skip_empty:
        rows = [r for r in rows if not _is_empty(r)]
    if not rows:
        return [], []
    width = max(len(r) for r in rows)
    if has_headers:
        first, body = rows[0], rows[1:]
        headers = [
            str(h) if h not in (None, "") else f"column_{i + 1}" for i, h in enumerate(first)
        ]
        headers += [f"column_{i + 1}" for i in range(len(headers), width)]
    else:
        headers, body = [f"column_{i + 1}" for i in range(width)], rows
    records = [
        {h: (row[i] if i < len(row) else None) for i, h in enumerate(headers)} for row in body
    ]
    return records, headers


_INTEGER = re.compile(r"-?[0-9]+")
_DECIMAL = re.compile(r"-?(?:0|[1-9][0-9]*)\.[0-9]+")
_MAX_DIGITS = 4000


def _number(cell: str) -> int | float | None:
    """The number a CSV cell spells plainly and exactly (see the module docstring), or None."""
    if _INTEGER.fullmatch(cell):
        if len(cell) > _MAX_DIGITS:  # past int()'s default limit on digits: keep the text
            return None
        value = int(cell)
        return value if str(value) == cell else None
    if _DECIMAL.fullmatch(cell):
        number = float(cell)
        return number if Decimal(repr(number)) == Decimal(cell) else None
    return None


def _is_blank(cell: Any) -> bool:
    return cell is None or (isinstance(cell, str) and not cell.strip())


def _infer_numbers(records: list[dict[str, Any]], headers: list[str]) -> None:
    """Turn the columns whose every non-empty cell is a plain number into numbers."""
    for name in headers:
        cells = [record[name] for record in records if not _is_blank(record[name])]
        numbers = [_number(cell) for cell in cells if isinstance(cell, str)]
        if not cells or len(numbers) != len(cells) or any(n is None for n in numbers):
            continue
        for record in records:
            cell = record[name]
            record[name] = None if _is_blank(cell) else _number(cell)


def _read_csv(source: Path | bytes, delimiter: str, encoding: str) -> list[list[Any]]:
    if isinstance(source, bytes):
        return [
            list(row)
            for row in csv.reader(io.StringIO(source.decode(encoding)), delimiter=delimiter)
        ]
    with source.open(newline="", encoding=encoding) as fh:
        return [list(row) for row in csv.reader(fh, delimiter=delimiter)]


def _sheet(workbook: Any, sheet: Any) -> Any:
    if sheet in (None, ""):
        return workbook.worksheets[0]
    if isinstance(sheet, int):
        try:
            return workbook.worksheets[sheet]
        except IndexError:
            raise IndexError(
                f"the workbook has {len(workbook.worksheets)} sheets; no sheet index {sheet}"
            ) from None
    if sheet not in workbook.sheetnames:
        raise KeyError(f"no sheet {sheet!r}; sheets: {', '.join(workbook.sheetnames)}")
    return workbook[sheet]


def _read_xlsx(path: Path, sheet: Any, cell_range: str) -> list[list[Any]]:
    openpyxl = require("openpyxl", "spreadsheet", "reading xlsx files")
    workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
    try:
        ws = _sheet(workbook, sheet)
        if cell_range:
            cells = ws[cell_range]
            if not isinstance(cells, tuple) or not cells or not isinstance(cells[0], tuple):
                cells = (cells if isinstance(cells, tuple) else (cells,),)
            return [[c.value for c in row] for row in cells]
        return [list(row) for row in ws.iter_rows(values_only=True)]
    finally:
        workbook.close()


def _rows_for_write(data: Any, headers: Sequence[str] | None) -> tuple[list[str], list[list[Any]]]:
    if isinstance(data, Mapping) and "records" in data:
        data = data["records"]
    if isinstance(data, Mapping):
        data = [data]
    if not isinstance(data, list):
        raise TypeError(f"spreadsheet write needs a list of records, got a {type(data).__name__}")
    if data and all(isinstance(r, Mapping) for r in data):
        names = list(headers or [])
        if not names:
            for record in data:
                names += [str(k) for k in record if str(k) not in names]
        return names, [[record.get(n) for n in names] for record in data]
    return list(headers or []), [list(r) if isinstance(r, list | tuple) else [r] for r in data]


def _write_csv(
    path: Path, headers: list[str], rows: list[list[Any]], opts: Mapping[str, Any]
) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=opts["delimiter"], lineterminator="\n")
    if headers and opts["headers"]:
        writer.writerow(headers)
    writer.writerows(rows)
    atomic_write(path, buffer.getvalue().encode(opts["encoding"]))


def _write_xlsx(
    path: Path, headers: list[str], rows: list[list[Any]], opts: Mapping[str, Any]
) -> None:
    openpyxl = require("openpyxl", "spreadsheet", "writing xlsx files")
    workbook = openpyxl.Workbook()
    ws = workbook.active
    ws.title = str(opts["sheet"] or "Sheet1")
    if headers and opts["headers"]:
        ws.append(headers)
    for row in rows:
        ws.append(row)
    buffer = io.BytesIO()
    workbook.save(buffer)
    atomic_write(path, buffer.getvalue())


_SUFFIXES = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".tab": "tsv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".xlsm": "xlsx",
    ".parquet": "parquet",
    ".pq": "parquet",
    ".ods": "ods",
    ".xls": "xls",
    ".xlsb": "xls",
}
FORMATS = ("auto", "csv", "tsv", "xlsx", "ods", "xls", "parquet")


def _kind(path: Path | None, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    return _SUFFIXES.get(path.suffix.lower(), "csv") if path is not None else "csv"


def _delimiter(delimiter: str, kind: str, sample: str) -> str:
    if delimiter == "auto":
        return _tabular.sniff(sample)
    if delimiter:
        return delimiter
    return "\t" if kind == "tsv" else ","


def _sample(source: Path | bytes, encoding: str) -> str:
    if isinstance(source, bytes):
        return source[:65536].decode(encoding, errors="replace")
    with source.open("rb") as fh:
        return fh.read(65536).decode(encoding, errors="replace")


def _read(
    source: Path | bytes, kind: str, opts: Mapping[str, Any]
) -> tuple[Table | list[Any], list[str]]:
    if kind in ("csv", "tsv"):
        delimiter = _delimiter(opts["delimiter"], kind, _sample(source, opts["encoding"]))
        if not opts["skipEmpty"]:  # empty rows kept: the stdlib reader, row by row
            raw = _read_csv(source, delimiter, opts["encoding"])
            found, names = _to_records(raw, opts["headers"], False)
            if opts["inferTypes"]:
                _infer_numbers(found, names)
            return found, names
        table = _tabular.read_csv(
            source, delimiter, opts["encoding"], opts["headers"], opts["inferTypes"]
        )
        return table, table.columns
    if not isinstance(source, Path):
        raise ValueError(f"inline data is CSV text; format {kind!r} needs a file path")
    if kind == "parquet":
        table = _tabular.read_parquet(source)
        return table, table.columns
    if kind == "xlsx":
        raw = _read_xlsx(source, opts["sheet"], opts["range"])
    else:
        raw = _tabular.read_calamine(source, opts["sheet"])
        raw = _tabular.cells_in_range(raw, opts["range"]) if opts["range"] else raw
    found, names = _to_records(raw, opts["headers"], opts["skipEmpty"])
    return _tabular.table_or_records(found, names), names


def _write(
    target: Path, kind: str, data: Any, opts: Mapping[str, Any]
) -> tuple[Table | list[Any], list[str]]:
    given = data["records"] if isinstance(data, Mapping) and "records" in data else data
    table = Table.from_any(given)
    if table is None and kind == "parquet":
        table = Table.from_records(_records_for_write(data))
    delimiter = "," if opts["delimiter"] == "auto" else _delimiter(opts["delimiter"], kind, "")
    if table is not None and kind != "xlsx":
        if opts["columns"]:
            table = Table(table.arrow.select(list(opts["columns"])))
        if kind == "parquet":
            atomic_write(target, _tabular.parquet_bytes(table))
        else:
            atomic_write(target, _tabular.csv_bytes(table, delimiter, opts["headers"]))
        return table, table.columns
    names, rows = _rows_for_write(table.records() if table is not None else data, opts["columns"])
    (_write_xlsx if kind == "xlsx" else _write_csv)(
        target, names, rows, {**opts, "delimiter": delimiter}
    )
    out = [dict(zip(names, r, strict=False)) for r in rows] if names else rows
    return out, names


def _records_for_write(data: Any) -> list[dict[str, Any]]:
    names, rows = _rows_for_write(data, None)
    return [dict(zip(names, r, strict=False)) for r in rows]


def spreadsheet(
    ctx: Any,
    input: Any = None,
    records: Any = None,
    operation: str = "read",
    path: str = "",
    data: str = "",
    format: str = "auto",
    headers: bool = True,
    columns: list[str] | None = None,
    delimiter: str = "",
    sheet: Any = None,
    range: str = "",
    skipEmpty: bool = True,
    encoding: str = "utf-8",
    inferTypes: bool = True,
) -> dict[str, Any]:
    """Read a CSV/TSV/xlsx/ods/Parquet file (or inline CSV text) into a table, or write one."""
    opts = {
        "delimiter": delimiter,
        "headers": headers,
        "encoding": encoding,
        "sheet": sheet,
        "range": range,
        "skipEmpty": skipEmpty,
        "inferTypes": inferTypes,
        "columns": columns,
    }
    if operation == "read" and data and not path:
        found, names = _read(data.encode(encoding), _kind(None, format), opts)
        return {"records": found, "headers": names, "row_count": len(found), "path": ""}
    target = confine(path, allowed_roots(getattr(ctx, "settings", None)))
    kind = _kind(target, format)
    if operation == "write":
        given = records if records is not None else input
        target.parent.mkdir(parents=True, exist_ok=True)
        out, names = _write(target, kind, given, opts)
        return {"records": out, "headers": names, "row_count": len(out), "path": str(target)}
    found, names = _read(target, kind, opts)
    return {"records": found, "headers": names, "row_count": len(found), "path": str(target)}


def _check(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = []
    has_data = bool(values.get("data")) and values.get("operation", "read") == "read"
    if is_given_empty(values, "path") or ("path" not in values and not has_data):
        problems.append(
            (
                "path",
                "path is empty: spreadsheet needs a file (.csv, .tsv, .xlsx, .ods, "
                ".parquet) or, to read, inline CSV text in data",
            )
        )
    delimiter = values.get("delimiter", "")
    if isinstance(delimiter, str) and len(delimiter) > 1 and delimiter != "auto":
        problems.append(
            ("delimiter", f"expected one character, or auto to sniff it, got {delimiter!r}")
        )
    return problems


SPREADSHEET = define(
    "spreadsheet",
    spreadsheet,
    category="data",
    description="Read CSV, TSV, xlsx, ods or Parquet files (or inline CSV text) into a table, "
    "or write one: headers, delimiter (or sniffed), sheet, range, skip empty lines; outputs "
    "records (a table that reads as a list of records), headers and row count.",
    inputs=[Port("records", type="list", default=None, description="write: the rows")],
    outputs=[
        Port("records", type="table"),
        Port("headers", type="list[str]"),
        Port("row_count", type="int"),
    ],
    params=[
        param("operation", "str", "read", "read or write", choices=("read", "write")),
        param("path", "path", "", "the file (.csv, .tsv, .xlsx, .ods, .xls, .parquet)"),
        param("data", "str", "", "read: inline CSV text instead of a file"),
        param("format", "str", "auto", "file format (auto: by suffix)", choices=FORMATS),
        param("headers", "bool", True, "the first row holds column names"),
        param("columns", "list", None, "write: column order (default: keys in first-seen order)"),
        param(
            "delimiter",
            "str",
            "",
            "CSV field delimiter (default: tab for .tsv, else comma; auto: sniff it)",
        ),
        param("sheet", "any", None, "xlsx/ods sheet name or index (default: the first)"),
        param("range", "str", "", "xlsx/ods cell range such as A1:C20"),
        param("skipEmpty", "bool", True, "skip empty lines"),
        param("encoding", "str", "utf-8", "CSV text encoding"),
        param(
            "inferTypes",
            "bool",
            True,
            "CSV read: columns of plain numbers (42, -7, 3.5) become numbers; leading zeros "
            "(01234), 1e3, true/false stay text; false keeps every cell text",
        ),
    ],
    example={"type": "spreadsheet", "params": {"path": "people.csv"}},
    validate=_check,
    takes_context=True,
    side_effects=True,
)

NODE_TYPES = [SPREADSHEET]
