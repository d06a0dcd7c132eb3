"""Reading and writing tabular files as :class:`~conductor_nb.model.table.Table` values.

CSV/TSV are parsed by Arrow's multithreaded reader with every column as text,
then the spreadsheet's number rule (see ``spreadsheet``) is applied column by
column with vectorised regular expressions, so ``01234`` stays text exactly as
before. A file Arrow will not take as it is (ragged rows, a stray quote) is read
again with the stdlib reader, which pads short rows and names the line of a
malformed one. Parquet is read by Arrow; xlsx by openpyxl; ods/xls by
python-calamine. Writes go to a temporary file first, so nothing is half-written.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from conductor_nb._extras import require
from conductor_nb.model.table import Table

_INT = r"^(0|-?[1-9][0-9]{0,17})$"  # fits int64 and str(int(s)) == s
_DECIMAL = r"^-?(0|[1-9][0-9]*)\.[0-9]+$"
_EXACT_LENGTH = 16  # up to 15 significant digits (+ sign or point) a float always keeps


def pa() -> Any:
    return require("pyarrow", "data", "reading tables")


def sniff(sample: str) -> str:
    """The delimiter of CSV text ``sample`` (``,`` when nothing else fits)."""
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


# ----------------------------------------------------------------------- csv


def read_csv(
    source: Path | bytes, delimiter: str, encoding: str, headers: bool, infer: bool
) -> Table:
    """A CSV file (or inline bytes) as a table; the fast Arrow path, else the stdlib one."""
    first = _first_row(source, delimiter, encoding)
    if first is None:
        return Table(pa().table({}))
    names = _names(first, headers)
    try:
        table = _arrow_csv(source, delimiter, encoding, first, headers)
    except (pa().ArrowInvalid, _Ragged):
        return _stdlib_csv(source, delimiter, encoding, headers, infer)
    if _open_quote_at_end(table):  # Arrow reads a quote left open to the end of the file
        return _stdlib_csv(source, delimiter, encoding, headers, infer)  # names its line
    table = table.rename_columns(names)
    table = _drop_blank_rows(table)
    return Table(infer_numbers(table) if infer else table)


class _Ragged(Exception):
    """A row with another number of cells than the first: the stdlib reader pads it."""


def _open_quote_at_end(table: Any) -> bool:
    """A line break in the last row: a quoted multi-line cell, or a quote never closed."""
    if table.num_rows == 0:
        return False
    last = table.slice(table.num_rows - 1).to_pylist()[0].values()
    return any("\n" in cell or "\r" in cell for cell in last)


def _open_text(source: Path | bytes, encoding: str) -> io.TextIOBase:
    if isinstance(source, bytes):
        return io.TextIOWrapper(io.BytesIO(source), encoding=encoding, newline="")
    return source.open(encoding=encoding, newline="")  # type: ignore[return-value]


def _first_row(source: Path | bytes, delimiter: str, encoding: str) -> list[str] | None:
    with _open_text(source, encoding) as fh:
        for row in csv.reader(fh, delimiter=delimiter):
            if any(cell.strip() for cell in row):
                return row
    return None


def _names(first: list[str], headers: bool) -> list[str]:
    if not headers:
        return [f"column_{i + 1}" for i in range(len(first))]
    return [h if h else f"column_{i + 1}" for i, h in enumerate(first)]


def _arrow_csv(
    source: Path | bytes, delimiter: str, encoding: str, first: list[str], headers: bool
) -> Any:
    from pyarrow import csv as pacsv

    lib = pa()
    generated = [f"c{i}" for i in range(len(first))]

    ragged_rows: list[Any] = []

    def ragged(row: Any) -> str:
        ragged_rows.append(row.number)
        return "skip"

    read = pacsv.ReadOptions(column_names=generated, encoding=encoding, block_size=1 << 24)
    parse = pacsv.ParseOptions(delimiter=delimiter, invalid_row_handler=ragged)
    convert = pacsv.ConvertOptions(
        column_types={n: lib.string() for n in generated}, strings_can_be_null=False
    )
    stream = lib.py_buffer(source) if isinstance(source, bytes) else str(source)
    if isinstance(stream, str):
        table = pacsv.read_csv(stream, read, parse, convert)
    else:
        table = pacsv.read_csv(lib.BufferReader(stream), read, parse, convert)
    if ragged_rows:
        raise _Ragged(ragged_rows[0])
    if headers:
        table = _without_header(table, first)
    return table


def _without_header(table: Any, first: list[str]) -> Any:
    """Drop the header row: row 0, as Arrow skips empty lines; else (blank-celled lines such
    as ``,,`` before it) the first row that is not blank, like ``_first_row``'s."""
    import pyarrow.compute as pc

    lib = pa()
    if table.num_rows == 0:
        return table
    if [column[0].as_py() for column in table.columns] == first:
        return table.slice(1)
    blank = _blank_rows(table)
    index = 0 if blank is None else int(pc.index(blank, lib.scalar(False)).as_py())
    return table.slice(1) if index == 0 else table.filter(_not_row(table, index))


def _not_row(table: Any, row: int) -> Any:
    mask = [True] * table.num_rows
    mask[row] = False
    return pa().array(mask)


def _blank_rows(table: Any) -> Any:
    """A mask of the rows whose cells are all empty (None when no row is)."""
    import pyarrow.compute as pc

    if table.num_columns == 0 or pc.min(pc.utf8_length(table.column(0))).as_py() != 0:
        return None  # a blank row has an empty first cell; none has
    mask = None
    for column in table.columns:
        empty = pc.equal(pc.utf8_length(column), 0)
        mask = empty if mask is None else pc.and_(mask, empty)
    if mask is None or not pc.any(mask).as_py():
        return None
    return mask


def _drop_blank_rows(table: Any) -> Any:
    import pyarrow.compute as pc

    mask = _blank_rows(table)
    return table if mask is None else table.filter(pc.invert(mask))


def infer_numbers(table: Any) -> Any:
    """Columns whose every non-empty cell spells a plain number become numbers."""
    for i, name in enumerate(table.column_names):
        column = table.column(i)
        if table.schema.field(i).type == pa().string():
            number = _as_number(column)
            if number is not None:
                table = table.set_column(i, name, number)
    return table


_SAMPLE = 1000


def _as_number(column: Any) -> Any:
    """The column as int64 or float64 when it follows the number rule, else None.

    A sample decides most text columns at once; integers are checked the way the rule is
    written (``str(int(s)) == s``: Arrow's cast, then back to text); decimals by pattern.
    Blank cells (empty or spaces) become None; spaces are looked for only when needed.
    """
    import pyarrow.compute as pc

    if not _could_be_numbers(column.slice(0, _SAMPLE)):
        return None
    empty = pc.equal(pc.utf8_length(column), 0)
    if pc.all(empty).as_py():
        return None
    number = _numbers(_nulled(column, empty))
    if number is not None:
        return number
    blank = pc.equal(pc.utf8_trim_whitespace(column), "")  # cells of only spaces
    if pc.all(blank).as_py() or pc.all(pc.equal(blank, empty)).as_py():
        return None
    return _numbers(_nulled(column, blank))


def _nulled(column: Any, mask: Any) -> Any:
    import pyarrow.compute as pc

    lib = pa()
    return (
        pc.if_else(mask, lib.scalar(None, lib.string()), column) if pc.any(mask).as_py() else column
    )


def _numbers(filled: Any) -> Any:
    import pyarrow.compute as pc

    lib = pa()
    try:
        whole = pc.cast(filled, lib.int64())
        if pc.all(pc.equal(pc.cast(whole, lib.string()), filled)).as_py():
            return whole
    except (lib.ArrowInvalid, lib.ArrowNotImplementedError):
        pass
    is_int = pc.match_substring_regex(filled, _INT)
    is_number = pc.or_(is_int, pc.match_substring_regex(filled, _DECIMAL))
    if not pc.all(is_number).as_py():
        return None
    long = pc.filter(filled, pc.greater(pc.utf8_length(filled), _EXACT_LENGTH))
    if any(Decimal(repr(float(s))) != Decimal(s) for s in long.to_pylist() if "." in s):
        return None  # more precision than a float holds: keep the text
    return pc.cast(filled, lib.float64())


def _could_be_numbers(sample: Any) -> bool:
    """False when some cell of ``sample`` is neither blank nor a plain number."""
    for cell in sample.to_pylist():
        if cell.strip() and not (re.match(_INT, cell) or re.match(_DECIMAL, cell)):
            return False
    return True


def _stdlib_csv(
    source: Path | bytes, delimiter: str, encoding: str, headers: bool, infer: bool
) -> Table:
    rows: list[list[Any]] = []
    name = "the inline data" if isinstance(source, bytes) else str(source)
    with _open_text(source, encoding) as fh:
        reader = csv.reader(fh, delimiter=delimiter, strict=True)
        start = 1
        try:
            for row in reader:
                if any(cell.strip() for cell in row):
                    rows.append(row)
                start = reader.line_num + 1
        except csv.Error as exc:
            raise ValueError(
                f"{name}, line {start}: malformed CSV ({exc}); check the quotes on that line"
            ) from None
    return table_of_rows(rows, headers, infer)


def table_of_rows(rows: list[list[Any]], headers: bool, infer: bool) -> Table:
    """Rows of cells (short rows padded) as a table of text columns, numbers inferred."""
    if not rows:
        return Table(pa().table({}))
    width = max(len(r) for r in rows)
    names = _names(rows[0] + [""] * (width - len(rows[0])), True) if headers else None
    body = rows[1:] if headers else rows
    names = names or _names([""] * width, False)
    columns = {
        f"c{i}": [str(r[i]) if i < len(r) and r[i] is not None else "" for r in body]
        for i in range(width)
    }
    table = pa().table(columns, schema=_text_schema(width)).rename_columns(names)
    return Table(infer_numbers(table) if infer else table)


def _text_schema(width: int) -> Any:
    lib = pa()
    return lib.schema([(f"c{i}", lib.string()) for i in range(width)])


# ------------------------------------------------------------ other formats


def read_parquet(path: Path) -> Table:
    require("pyarrow", "data", "reading Parquet files")
    import pyarrow.parquet as pq

    return Table(pq.read_table(path))


def cells_in_range(rows: list[list[Any]], cell_range: str) -> list[list[Any]]:
    """The block ``A1:C20`` (or one cell ``B2``) of ``rows`` (1-based, like a sheet)."""
    match = re.fullmatch(r"([A-Za-z]+)(\d+)(?::([A-Za-z]+)(\d+))?", cell_range.strip())
    if not match:
        raise ValueError(f"range {cell_range!r}: expected cells like A1:C20 or B2")
    c1, r1, c2, r2 = match.groups()
    c2, r2 = c2 or c1, r2 or r1
    first_col, last_col = _column_number(c1), _column_number(c2)
    return [
        [row[c] if c < len(row) else None for c in range(first_col - 1, last_col)]
        for row in rows[int(r1) - 1 : int(r2)]
    ]


def _column_number(letters: str) -> int:
    number = 0
    for ch in letters.upper():
        number = number * 26 + ord(ch) - ord("A") + 1
    return number


def read_calamine(path: Path, sheet: Any) -> list[list[Any]]:
    """The rows of an ods/xls/xlsb sheet (by name or index) read by python-calamine."""
    calamine = require("python_calamine", "spreadsheet", "reading ods and xls files")
    workbook = calamine.CalamineWorkbook.from_path(str(path))
    names = list(workbook.sheet_names)
    if sheet in (None, ""):
        sheet = 0
    if isinstance(sheet, int):
        if not 0 <= sheet < len(names):
            raise IndexError(f"the workbook has {len(names)} sheets; no sheet index {sheet}")
        sheet = names[sheet]
    if sheet not in names:
        raise KeyError(f"no sheet {sheet!r}; sheets: {', '.join(names)}")
    return [list(row) for row in workbook.get_sheet_by_name(sheet).to_python(skip_empty_area=False)]


def table_or_records(records: list[dict[str, Any]], names: Sequence[str]) -> Table | list[Any]:
    """Records as a table when their columns have one type each, else the records as they are
    (a sheet column mixing text and numbers)."""
    lib = pa()
    try:
        return Table.from_records(records, list(names))
    except (lib.ArrowInvalid, lib.ArrowTypeError, TypeError, OverflowError):
        return records


# ------------------------------------------------------------------- writing


def csv_bytes(table: Table, delimiter: str, headers: bool) -> bytes:
    from pyarrow import csv as pacsv

    lib = pa()
    sink = lib.BufferOutputStream()
    options = pacsv.WriteOptions(
        include_header=headers, delimiter=delimiter, quoting_style="needed"
    )
    pacsv.write_csv(table.arrow, sink, options)
    return bytes(sink.getvalue().to_pybytes())


def parquet_bytes(table: Table) -> bytes:
    import pyarrow.parquet as pq

    lib = pa()
    sink = lib.BufferOutputStream()
    pq.write_table(table.arrow, sink)
    return bytes(sink.getvalue().to_pybytes())
