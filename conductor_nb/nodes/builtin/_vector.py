"""Sandboxed expressions compiled to Arrow column operations.

``transform`` expressions are written per item (``item.status == 'paid' and
item.amount >= 50``). Over a table, the same expression is parsed with the
sandbox's own parser and, when every part of it has a column counterpart, run
once over whole columns with ``pyarrow.compute``:

- ``item.x`` / ``item['x']``: column ``x`` (a name that is not a column fails with
  the columns there and the closest one); ``index``: the row number;
  ``params.p``: the run's param, a constant; literals;
- comparisons (``== != < <= > >= in``, chained), ``and or not``, ``x if c else y``;
- arithmetic ``+ - * / //`` (checked: overflow or a zero divisor falls back),
  ``~`` over text and integers;
- tests ``is none`` / ``is not none``; filters ``int float string lower upper trim
  abs round length``.

Anything else (``items``, ``acc``, method calls, other filters, an operation
Arrow refuses for the column types) raises :class:`NotVectorised`, and the
caller evaluates the expression row by row in the sandbox, as before. A missing
value compares unequal to everything but None, and orders false.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from jinja2 import nodes
from jinja2.parser import Parser

from conductor_nb.nodes.builtin import _limits


class NotVectorised(Exception):
    """The expression has a part with no column counterpart (the message says which)."""


class MissingColumn(LookupError):
    """``item.x`` names no column of the table."""


@lru_cache(maxsize=256)
def parse(expression: str) -> nodes.Expr:
    return Parser(_limits.environment(), expression, state="variable").parse_expression()


def evaluate(expression: str, table: Any, params: Mapping[str, Any]) -> Any:
    """The expression over every row of the Arrow ``table``: an array, or a scalar."""
    import pyarrow as pa

    try:
        return _Compiler(table, params).visit(parse(expression))
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError) as exc:
        raise NotVectorised(f"Arrow: {exc}".splitlines()[0]) from None


def missing_column(name: str, columns: list[str]) -> MissingColumn:
    close = difflib.get_close_matches(name, columns, n=1)
    shown = ", ".join(columns[:30]) + (", ..." if len(columns) > 30 else "")
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return MissingColumn(f"no column {name!r} in the table; its columns: {shown}{hint}")


_COMPARE = {
    "lt": "less",
    "lteq": "less_equal",
    "gt": "greater",
    "gteq": "greater_equal",
}
_ARITHMETIC = {
    nodes.Add: "add_checked",
    nodes.Sub: "subtract_checked",
    nodes.Mul: "multiply_checked",
}


class _Compiler:
    def __init__(self, table: Any, params: Mapping[str, Any]) -> None:
        import pyarrow as pa
        import pyarrow.compute as pc

        self.pa, self.pc = pa, pc
        self.table = table
        self.params = params

    def visit(self, node: nodes.Node) -> Any:
        method: Callable[[Any], Any] | None = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise NotVectorised(f"{type(node).__name__.lower()} has no column form")
        return method(node)

    # ------------------------------------------------------------------ values
    def visit_Const(self, node: nodes.Const) -> Any:
        if not isinstance(node.value, str | int | float | bool) and node.value is not None:
            raise NotVectorised(f"constant {node.value!r}")
        return self.pa.scalar(node.value)

    def visit_Name(self, node: nodes.Name) -> Any:
        if node.name == "index":
            return self.pa.array(range(self.table.num_rows), self.pa.int64())
        if node.name in ("none", "None"):
            return self.pa.scalar(None)
        if node.name in ("true", "True", "false", "False"):
            return self.pa.scalar(node.name.lower() == "true")
        raise NotVectorised(f"name {node.name!r}")

    def _column(self, name: Any) -> Any:
        if not isinstance(name, str):
            raise NotVectorised("a column named by a non-string")
        if name not in self.table.column_names:
            raise missing_column(name, list(self.table.column_names))
        return self.table.column(name)

    def _param(self, name: Any) -> Any:
        value = self.params.get(name)
        if name not in self.params or not isinstance(value, str | int | float | bool):
            raise NotVectorised(f"params.{name}")
        return self.pa.scalar(value)

    def visit_Getattr(self, node: nodes.Getattr) -> Any:
        if isinstance(node.node, nodes.Name) and node.node.name == "item":
            return self._column(node.attr)
        if isinstance(node.node, nodes.Name) and node.node.name == "params":
            return self._param(node.attr)
        raise NotVectorised("a nested field")

    def visit_Getitem(self, node: nodes.Getitem) -> Any:
        if isinstance(node.arg, nodes.Const):
            return self.visit_Getattr(nodes.Getattr(node.node, node.arg.value, "load"))
        raise NotVectorised("an index that is not a constant")

    # ------------------------------------------------------------- operators
    def visit_Compare(self, node: nodes.Compare) -> Any:
        if any(o.op in ("in", "notin") for o in node.ops):
            return self._membership(node)
        left = self.visit(node.expr)
        result = None
        for operand in node.ops:
            right = self.visit(operand.expr)
            step = self._compare(operand.op, left, right)
            result = step if result is None else self.pc.and_kleene(result, step)
            left = right
        return result

    def _compare(self, op: str, left: Any, right: Any) -> Any:
        pc = self.pc
        if op in ("eq", "ne"):
            same = self._equal(left, right)
            return same if op == "eq" else pc.invert(same)
        if op in _COMPARE:
            return pc.fill_null(getattr(pc, _COMPARE[op])(left, right), False)
        raise NotVectorised(f"comparison {op}")

    def _equal(self, left: Any, right: Any) -> Any:
        pc = self.pc
        same = pc.equal(left, right)
        if same.null_count if hasattr(same, "null_count") else not same.is_valid:
            both = pc.and_(pc.is_null(left), pc.is_null(right))
            same = pc.if_else(pc.is_null(same), both, same)
        return same

    def _contains(self, left: Any, right: Any) -> Any:
        pc = self.pc
        if isinstance(left, self.pa.Scalar) and isinstance(left.as_py(), str):
            return pc.fill_null(pc.match_substring(right, left.as_py()), False)
        raise NotVectorised("'in' over something that is not a literal list or text")

    def visit_List(self, node: nodes.List) -> Any:
        raise NotVectorised("a list outside 'in [...]'")

    visit_Tuple = visit_List

    def _members(self, node: nodes.List | nodes.Tuple) -> list[Any]:
        if not all(isinstance(i, nodes.Const) for i in node.items):
            raise NotVectorised("'in' over a list that is not all literals")
        return [i.value for i in node.items if isinstance(i, nodes.Const)]

    def visit_And(self, node: nodes.And) -> Any:
        return self.pc.and_kleene(self._bool(node.left), self._bool(node.right))

    def visit_Or(self, node: nodes.Or) -> Any:
        return self.pc.or_kleene(self._bool(node.left), self._bool(node.right))

    def visit_Not(self, node: nodes.Not) -> Any:
        if isinstance(node.node, nodes.Test):
            return self.pc.invert(self.visit_Test(node.node))
        return self.pc.invert(self._bool(node.node))

    def _bool(self, node: nodes.Node) -> Any:
        value = self.visit(node)
        if value.type != self.pa.bool_():
            raise NotVectorised("and/or/not over values that are not true/false")
        return self.pc.fill_null(value, False)

    def _membership(self, node: nodes.Compare) -> Any:
        if len(node.ops) != 1:
            raise NotVectorised("a chained 'in'")
        operand = node.ops[0]
        left = self.visit(node.expr)
        if isinstance(operand.expr, nodes.List | nodes.Tuple):
            members = self.pa.array(self._members(operand.expr))
            found = self.pc.is_in(left, value_set=members)
        else:
            found = self._contains(left, self.visit(operand.expr))
        return found if operand.op == "in" else self.pc.invert(found)

    def visit_CondExpr(self, node: nodes.CondExpr) -> Any:
        if node.expr2 is None:
            raise NotVectorised("an 'if' without 'else'")
        return self.pc.if_else(
            self._bool(node.test), self.visit(node.expr1), self.visit(node.expr2)
        )

    def visit_BinExpr(self, node: nodes.BinExpr) -> Any:
        left, right = self.visit(node.left), self.visit(node.right)
        pc = self.pc
        if isinstance(node, nodes.Add) and _is_text(left) and _is_text(right):
            return pc.binary_join_element_wise(left, right, "")
        self._numbers(left, right)
        if type(node) in _ARITHMETIC:
            return getattr(pc, _ARITHMETIC[type(node)])(left, right)
        floats = [pc.cast(v, self.pa.float64()) for v in (left, right)]
        if isinstance(node, nodes.Div):
            return pc.divide_checked(*floats)
        if isinstance(node, nodes.FloorDiv):
            floor = pc.floor(pc.divide_checked(*floats))
            ints = all(self.pa.types.is_integer(v.type) for v in (left, right))
            return pc.cast(floor, self.pa.int64()) if ints else floor
        raise NotVectorised(f"operator {node.operator}")

    visit_Add = visit_Sub = visit_Mul = visit_Div = visit_FloorDiv = visit_BinExpr

    def _numbers(self, *values: Any) -> None:
        for value in values:
            kind = value.type
            if self.pa.types.is_boolean(kind) or not (
                self.pa.types.is_integer(kind) or self.pa.types.is_floating(kind)
            ):
                raise NotVectorised(f"arithmetic over {kind}")

    def visit_Neg(self, node: nodes.Neg) -> Any:
        value = self.visit(node.node)
        self._numbers(value)
        return self.pc.negate_checked(value)

    def visit_Pos(self, node: nodes.Pos) -> Any:
        value = self.visit(node.node)
        self._numbers(value)
        return value

    def visit_Concat(self, node: nodes.Concat) -> Any:
        parts = [self.visit(n) for n in node.nodes]
        for part in parts:
            if not (_is_text(part) or self.pa.types.is_integer(part.type)):
                raise NotVectorised(f"~ over {part.type} (Python's text of it differs)")
        texts = [self.pc.cast(p, self.pa.string()) for p in parts]
        return self.pc.binary_join_element_wise(*texts, "")

    # ------------------------------------------------------------ tests, filters
    def visit_Test(self, node: nodes.Test) -> Any:
        if node.name == "none" and not node.args:
            return self.pc.is_null(self.visit(node.node))
        raise NotVectorised(f"test {node.name!r}")

    def visit_Filter(self, node: nodes.Filter) -> Any:
        if node.node is None or node.kwargs or node.dyn_args or node.dyn_kwargs:
            raise NotVectorised(f"filter {node.name!r} with these arguments")
        value = self.visit(node.node)
        pa, pc = self.pa, self.pc
        simple: dict[str, Callable[[Any], Any]] = {
            "lower": pc.utf8_lower,
            "upper": pc.utf8_upper,
            "trim": pc.utf8_trim_whitespace,
            "length": pc.utf8_length,
            "abs": pc.abs_checked,
        }
        if node.name in simple and not node.args:
            if node.name in ("lower", "upper", "trim", "length") and not _is_text(value):
                raise NotVectorised(f"{node.name} of {value.type}")
            return simple[node.name](value)
        if node.name == "int" and not node.args:
            return self._to_int(value)
        if node.name == "float" and not node.args:
            return pc.cast(value, pa.float64())
        if node.name == "string" and not node.args:
            if not (_is_text(value) or pa.types.is_integer(value.type)):
                raise NotVectorised(f"string of {value.type}")
            return pc.cast(value, pa.string())
        if node.name == "round" and len(node.args) <= 1:
            digits = (
                node.args[0].value if node.args and isinstance(node.args[0], nodes.Const) else 0
            )
            return pc.round(pc.cast(value, pa.float64()), int(digits), "half_away_from_zero")
        raise NotVectorised(f"filter {node.name!r}")

    def _to_int(self, value: Any) -> Any:
        pa, pc = self.pa, self.pc
        if pa.types.is_integer(value.type):
            return value
        if pa.types.is_floating(value.type):
            return pc.cast(pc.trunc(value), pa.int64())
        if _is_text(value):
            return pc.cast(value, pa.int64())  # text that is not an integer: row by row
        raise NotVectorised(f"int of {value.type}")


def _is_text(value: Any) -> bool:
    import pyarrow as pa

    return bool(pa.types.is_string(value.type) or pa.types.is_large_string(value.type))
