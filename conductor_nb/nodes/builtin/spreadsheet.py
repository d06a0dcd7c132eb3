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
from conductor_nb.model.types import Port
from conductor_nb.nodes.builtin._define import define, is_given_empty, param
from conductor_nb.nodes.builtin.files import allowed_roots, atomic_write, confine


def _format(path: Path, fmt: str) -> str:
    if fmt != "auto":
        return fmt
    return "xlsx" if path.suffix.lower() in (".xlsx", ".xlsm") else "csv"


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


def _read_csv(path: Path, delimiter: str, encoding: str) -> list[list[Any]]:
    with path.open(newline="", encoding=encoding) as fh:
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


def spreadsheet(
    ctx: Any,
    input: Any = None,
    records: Any = None,
    operation: str = "read",
    path: str = "",
    format: str = "auto",
    headers: bool = True,
    columns: list[str] | None = None,
    delimiter: str = ",",
    sheet: Any = None,
    range: str = "",
    skipEmpty: bool = True,
    encoding: str = "utf-8",
    inferTypes: bool = True,
) -> dict[str, Any]:
    """Read a CSV/xlsx file into records, or write records to one."""
    target = confine(path, allowed_roots(getattr(ctx, "settings", None)))
    kind = _format(target, format)
    if operation == "write":
        data = records if records is not None else input
        names, rows = _rows_for_write(data, columns)
        target.parent.mkdir(parents=True, exist_ok=True)
        opts = {"delimiter": delimiter, "headers": headers, "encoding": encoding, "sheet": sheet}
        (_write_xlsx if kind == "xlsx" else _write_csv)(target, names, rows, opts)
        out = [dict(zip(names, r, strict=False)) for r in rows] if names else rows
        return {"records": out, "headers": names, "row_count": len(rows), "path": str(target)}
    if kind == "xlsx":
        raw = _read_xlsx(target, sheet, range)
    else:
        raw = _read_csv(target, delimiter, encoding)
    found, names = _to_records(raw, headers, skipEmpty)
    if kind == "csv" and inferTypes:
        _infer_numbers(found, names)
    return {"records": found, "headers": names, "row_count": len(found), "path": str(target)}


def _check(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = []
    if is_given_empty(values, "path"):
        problems.append(("path", "path is empty: spreadsheet needs a .csv or .xlsx file"))
    delimiter = values.get("delimiter", ",")
    if isinstance(delimiter, str) and len(delimiter) != 1:
        problems.append(("delimiter", f"expected one character, got {delimiter!r}"))
    return problems


SPREADSHEET = define(
    "spreadsheet",
    spreadsheet,
    category="data",
    description="Read or write CSV and xlsx files: headers, delimiter, sheet, range, "
    "skip empty lines; output records, headers and row count.",
    inputs=[Port("records", type="list", default=None, description="write: the rows")],
    outputs=[
        Port("records", type="list[dict]"),
        Port("headers", type="list[str]"),
        Port("row_count", type="int"),
    ],
    params=[
        param("operation", "str", "read", "read or write", choices=("read", "write")),
        param("path", "path", "", "the .csv or .xlsx file", required=True),
        param(
            "format",
            "str",
            "auto",
            "file format (auto: by suffix)",
            choices=("auto", "csv", "xlsx"),
        ),
        param("headers", "bool", True, "the first row holds column names"),
        param("columns", "list", None, "write: column order (default: keys in first-seen order)"),
        param("delimiter", "str", ",", "CSV field delimiter"),
        param("sheet", "any", None, "xlsx sheet name or index (default: the first)"),
        param("range", "str", "", "xlsx cell range such as A1:C20"),
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
)

NODE_TYPES = [SPREADSHEET]
