"""Data nodes: ``edit-fields`` sets fields on records; ``transform`` reshapes lists.

``edit-fields`` renders the templates of its ``values`` once per record, with
``item`` (the record) and ``index`` (its position in this node's input) beside the
usual template names, the way n8n's Edit Fields evaluates its expressions per
item. Inside a ``loop`` body that ``index`` is still the record's; the loop's
iteration is ``params.index``. Records are mappings; with ``keepOnlySet`` a record
is built from scratch, so any value (``1``, ``"a"``) can be one: ``values: {value:
'{{ item }}'}`` turns ``[1, 2]`` into ``[{value: 1}, {value: 2}]``.

``transform`` runs one sandboxed expression per item (names ``item``,
``index``, and ``acc`` for reduce), each item under its own time and size
budget, so a runaway expression fails the node quickly with a clear error while
a long list is never cut short as a whole; an expression's error names the
operation and the item it failed on.

Over a table (a spreadsheet's ``records``, a ``merge`` or ``sql`` result) the
operations work on whole columns (see ``_table_ops``): the expression is
compiled to column operations where it can be and evaluated row by row where
not (the node's log says so); ``group`` with ``aggregate`` gives one row per
group; ``select``/``rename`` pick and rename columns (records too).
Its input is a list; a single value that is not a list (one record, one number)
is a list of one for every operation but ``map``, which maps it to one value
(``item * 2`` over ``3`` gives ``6``, not ``[6]``), the way a loop body that
maps its item should give one result per item.

``sort``, ``group`` and ``unique`` by a dotted ``key`` read that field of each
record. A record without it counts as None (sorted last, grouped under None,
deduped as one), since optional fields are common; but a key that *no* record
has is a typo, and fails the node with the fields that are there (see
``_fields``), as does a ``field`` the input does not have.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable, Mapping
from typing import Any

from conductor_nb.model import templates
from conductor_nb.model.table import Table
from conductor_nb.model.types import is_template
from conductor_nb.nodes import js
from conductor_nb.nodes.builtin import _fields, _limits, _table_ops, code
from conductor_nb.nodes.builtin._define import define, param

# ------------------------------------------------------------------ edit-fields


def _set_path(target: dict[str, Any], dotted: str, value: Any) -> None:
    """``a.b.c`` sets a nested field, creating the mappings on the way."""
    *parents, last = dotted.split(".")
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            child = target[part] = {}
        target = child
    target[last] = value


def _remove_path(target: dict[str, Any], dotted: str) -> None:
    *parents, last = dotted.split(".")
    for part in parents:
        child = target.get(part)
        if not isinstance(child, dict):
            return
        target = child
    target.pop(last, None)


class _Values:
    """edit-fields' ``values`` as written, rendered once per record.

    The engine passes them unrendered (see ``self_rendered`` in ``define``) so that a
    template can read the record it fills: ``item`` (the record) and ``index`` (its
    position), beside the usual names (``params``, ``inputs``, ``run``, ``now``, and
    ``env`` when the run enables it). Fields without templates are set as given.
    """

    def __init__(self, values: Any, input: Any, ctx: Any) -> None:
        if not isinstance(values, Mapping) and not is_template(values):
            raise TypeError(f"values must be a mapping of fields, got {_fields.kind(values)}")
        self.values = values
        self.has_input = input is not None
        self.is_templated = templates.has_template(values)
        self.names = _template_names(input, ctx) if self.is_templated else {}

    def for_record(self, record: Any, index: int) -> Mapping[str, Any]:
        if not self.is_templated:
            return self.values
        names = {**self.names, "item": {} if record is None else record, "index": index}
        hint = self._hint(record, index)
        if isinstance(self.values, str):  # values: "{{ ... }}" renders to the whole mapping
            rendered = _render("values", self.values, names, index, hint)
            if not isinstance(rendered, Mapping):
                raise TypeError(
                    f"values for record {index} must render to a mapping of fields, "
                    f"got {rendered!r} ({type(rendered).__name__})"
                )
            return rendered
        return {
            name: _render(f"values.{name}", value, names, index, hint)
            if templates.has_template(value)
            else value
            for name, value in self.values.items()
        }

    def _hint(self, record: Any, index: int) -> str:
        """Why a template may fail to find a field: there is no record to read."""
        if not self.has_input:
            return (
                "; this node's input is None (not connected, no input value, or None from "
                "upstream), so item is {} and inputs.input is None: connect a node to its "
                "input or give input: ... in its params"
            )
        if record is None:
            return f"; record {index} is None, so item is {{}}"
        return ""


def _template_names(input: Any, ctx: Any) -> dict[str, Any]:
    """The names the engine renders params with; ``inputs`` is this node's input."""
    if ctx is None:  # called as a plain function
        names = templates.base_context({})
    else:
        env = os.environ if getattr(ctx.options, "env", False) else None
        names = templates.base_context(ctx.params, ctx.run_id, ctx.run.started_at, env=env)
    names["inputs"] = {"input": input}
    return names


def _render(field: str, value: Any, names: Mapping[str, Any], index: int, hint: str) -> Any:
    try:
        return templates.render_value(value, names)
    except templates.TemplateError as exc:
        raise templates.TemplateError(
            f"template error in {field} for record {index}: {exc}{hint}"
        ) from None


def _not_a_record(record: Any, index: int, is_list: bool) -> TypeError:
    which = f"record {index} of the input" if is_list else "the input"
    return TypeError(
        f"edit-fields edits records (mappings); {which} is {_fields.kind(record)} "
        f"({record!r:.60}), which has no fields to keep. To make a record of each value, "
        "set keepOnlySet: true and values: {value: '{{ item }}'}"
    )


def _edit_one(
    record: Any,
    index: int,
    values: _Values,
    keep_only_set: bool,
    remove: list[str],
    is_list: bool = False,
) -> dict[str, Any]:
    if keep_only_set:  # a new record: the old one, whatever it is, is only read as item
        out: dict[str, Any] = {}
    elif record is None or isinstance(record, Mapping):
        out = copy.deepcopy(dict(record or {}))
    else:
        raise _not_a_record(record, index, is_list)
    for name in remove:
        _remove_path(out, name)
    for name, value in values.for_record(record, index).items():
        _set_path(out, str(name), value)
    return out


def edit_fields(
    input: Any = None,
    values: dict[str, Any] | str | None = None,
    keepOnlySet: bool = False,
    remove: list[str] | None = None,
    *,
    ctx: Any = None,
) -> Any:
    """Set, replace or remove fields of a record (or of every record of a list)."""
    fields, remove = _Values(values or {}, input, ctx), list(remove or [])
    if isinstance(input, list | Table):
        return [
            _edit_one(rec, i, fields, keepOnlySet, remove, is_list=True)
            for i, rec in enumerate(input)
        ]
    return _edit_one(input, 0, fields, keepOnlySet, remove)


VALUES = param(
    "values",
    "dict",
    {},
    "fields to set: name -> value (dotted names nest); templates are rendered per record, "
    "with item (the record) and index (its position in this node's input; in a loop body "
    "the loop's iteration is params.index)",
    names=("item", "index"),
)


EDIT_FIELDS = define(
    "edit-fields",
    edit_fields,
    category="data",
    description="Set or edit fields of a record, or of each record of a list; values may "
    "hold templates over item (the record) and index (the record's position in this node's "
    "input, not a loop's iteration: that is params.index in a loop body); dotted names set "
    "nested fields.",
    params=[
        VALUES,
        param(
            "keepOnlySet",
            "bool",
            False,
            "output only the fields values sets (a new record per item, so items need not "
            "be records: values: {value: '{{ item }}'} wraps each value)",
        ),
        param("remove", "list", [], "fields to remove (dotted names nest)"),
    ],
    self_rendered=["values"],
    example={
        "type": "edit-fields",
        "params": {
            "input": [{"name": "Ada"}, {"name": "Grace"}],
            "values": {"greeting": "Hello {{ item.name }}", "position": "{{ index }}"},
        },
    },
    takes_context=True,
)

# -------------------------------------------------------------------- transform

OPERATIONS = (
    "map",
    "filter",
    "reduce",
    "sort",
    "group",
    "flatten",
    "unique",
    "reverse",
    "limit",
    "skip",
    "slice",
    "select",
    "rename",
)
_NEEDS_EXPRESSION = {"map", "filter", "reduce"}
LANGUAGES = ("jinja", "javascript")
TRANSFORM_NAMES = ("item", "index", "items", "acc", "params")


def _is_single(value: Any) -> bool:
    return value is not None and not isinstance(value, list | tuple | Table)


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, Table):
        return value.records()
    if isinstance(value, list | tuple):
        return list(value)
    return [value]  # one record (or value) is a list of one


class _Evaluator:
    """Evaluates the expression for one item under a budget of its own (time and size per
    item, so a long list never runs out of time as a whole); an error names the item."""

    def __init__(
        self, expression: str, operation: str, extra: Mapping[str, Any], limits: tuple[float, int]
    ) -> None:
        self.expression = expression
        self.operation = operation
        self.extra = dict(extra)
        self.limits = limits

    def __call__(self, item: Any, index: int, **names: Any) -> Any:
        try:
            with _limits.budget(self.expression, *self.limits):
                return _limits.evaluate(
                    self.expression, {**self.extra, **names, "item": item, "index": index}
                )
        except _limits.ExpressionError as exc:
            where = f"(param 'expression', operation {self.operation}) failed on item {index}"
            raise _limits.ExpressionError(self.expression, exc.detail, where) from None


Evaluator = _Evaluator | js.ItemEvaluator


def _key_of(key: str | None, ev: Evaluator | None) -> Callable[[Any, int], Any]:
    if ev is not None and not key:
        return lambda item, i: ev(item, i)
    if key:

        def by_field(item: Any, i: int) -> Any:
            value = _fields.lookup(item, key)
            return None if value is _fields.ABSENT else value

        return by_field
    return lambda item, i: item


def _sort_key(value: Any) -> tuple[int, Any]:
    # None last, numbers before strings: mixed lists sort instead of raising
    if value is None:
        return (2, 0)
    if isinstance(value, int | float):
        return (0, value)
    return (1, str(value))


def _flatten(items: list[Any], depth: int) -> list[Any]:
    out: list[Any] = []
    for item in items:
        if isinstance(item, list | tuple) and depth > 0:
            out.extend(_flatten(list(item), depth - 1))
        else:
            out.append(item)
    return out


def _unique(items: list[Any], key: Callable[[Any, int], Any]) -> list[Any]:
    seen: list[Any] = []
    out = []
    for i, item in enumerate(items):
        k = key(item, i)
        if k not in seen:
            seen.append(k)
            out.append(item)
    return out


def _needs(ev: Evaluator | None, operation: str) -> Evaluator:
    if ev is None:
        raise ValueError(_no_expression(operation))
    return ev


def _no_expression(operation: str) -> str:
    return f"operation {operation!r} needs the param 'expression' (over item, index)"


def _apply(
    operation: str,
    items: list[Any],
    ev: Evaluator | None,
    key: str | None,
    opts: Mapping[str, Any],
) -> Any:
    if operation == "map":
        ev = _needs(ev, operation)
        return [ev(item, i) for i, item in enumerate(items)]
    if operation == "filter":
        ev = _needs(ev, operation)
        return [item for i, item in enumerate(items) if ev(item, i)]
    if operation == "reduce":
        ev = _needs(ev, operation)
        if isinstance(ev, js.ItemEvaluator):
            return ev.reduce(opts["initial"])
        acc = opts["initial"]
        for i, item in enumerate(items):
            acc = ev(item, i, acc=acc)
        return acc
    if key and operation in ("sort", "group", "unique"):
        _fields.check_key(items, key, operation)
    keyfn = _key_of(key, ev)
    if operation == "sort":  # stable both ways: equal keys keep their order; None last
        keys = [keyfn(item, i) for i, item in enumerate(items)]
        return [items[i] for i in _table_ops._sort_python(keys, opts["direction"] == "desc")]
    if operation == "group":
        groups: dict[Any, list[Any]] = {}
        for i, item in enumerate(items):
            k = keyfn(item, i)
            groups.setdefault(
                k if isinstance(k, str | int | float | bool) or k is None else str(k), []
            ).append(item)
        return groups
    if operation == "flatten":
        return _flatten(items, opts["depth"])
    if operation == "unique":
        return _unique(items, keyfn)
    if operation == "reverse":
        return items[::-1]
    if operation == "limit":
        return items[: opts["count"]]
    if operation == "skip":
        return items[opts["count"] :]
    if operation == "slice":
        return items[opts["start"] : opts["end"]]
    if operation in ("select", "rename"):
        return _select_records(items, opts["columns"], operation == "rename")
    raise ValueError(f"unknown operation {operation!r}; operations: {', '.join(OPERATIONS)}")


def _select_records(items: list[Any], columns: Any, keep_others: bool) -> list[Any]:
    if not isinstance(columns, Mapping):
        names = [c.strip() for c in columns.split(",")] if isinstance(columns, str) else columns
        return [{n: _fields.lookup(r, n) for n in names or []} for r in items]
    out = []
    for record in items:
        if not isinstance(record, Mapping):
            raise TypeError(f"select/rename works on records, got {_fields.kind(record)}")
        if keep_others:
            out.append({str(columns.get(k, k)): v for k, v in record.items()})
        else:
            out.append({str(new): record.get(old) for old, new in columns.items()})
    return out


def _on_table(
    table: Table,
    operation: str,
    ev: _Evaluator | None,
    key: str | None,
    opts: Mapping[str, Any],
) -> Any:
    """The operation on whole columns (see ``_table_ops``); NotImplemented: as records."""
    params, expression = (ev.extra.get("params", {}), ev.expression) if ev else ({}, "")
    if operation == "filter":
        return _table_ops.filter_rows(table, expression, params, _needs(ev, operation))
    if operation == "map":
        return _table_ops.map_rows(table, expression, params, _needs(ev, operation), opts["column"])
    if operation == "sort":
        return _table_ops.sort(
            table, key or "", expression, opts["direction"], params, ev or _no_row
        )
    if operation == "group" and key:
        return _table_ops.group(table, key, opts["aggregate"])
    if operation == "unique" and not expression:
        return _table_ops.unique(table, key or "")
    if operation in ("limit", "skip", "slice", "reverse"):
        return _table_ops.cut(table, operation, opts)
    if operation in ("select", "rename"):
        return _table_ops.select(table, opts["columns"], operation == "rename")
    if operation == "flatten":
        return table  # rows are records, not lists: nothing to flatten
    return NotImplemented


def _no_row(item: Any, index: int) -> Any:
    raise ValueError("sort needs a key or an expression")


def transform(
    input: Any = None,
    *,
    ctx: Any = None,
    operation: str = "map",
    expression: str = "",
    field: str = "",
    key: str = "",
    direction: str = "asc",
    depth: int = 1,
    count: int = 10,
    start: int = 0,
    end: int | None = None,
    initial: Any = None,
    aggregate: dict[str, str] | None = None,
    columns: Any = None,
    column: str = "",
    time_limit: float = _limits.DEFAULT_TIME_LIMIT,
    size_limit: int = _limits.DEFAULT_SIZE_LIMIT,
    language: str = "jinja",
) -> Any:
    """Reshape a list with one operation and an optional per-item expression.

    ``map`` over a single value (not a list) outputs the one mapped value.
    """
    if operation in _NEEDS_EXPRESSION and not expression:
        raise ValueError(_no_expression(operation))
    opts = {"direction": direction, "depth": depth, "count": count, "start": start, "end": end}
    opts.update(initial=initial, aggregate=aggregate, columns=columns, column=column)
    if language == "javascript":
        value = _fields.select(input, field) if field else input
        items = _items(value)
        limits = {"time_limit": time_limit, "memory_limit": size_limit}
        ev = _js_evaluator(expression, operation, items, ctx, limits)
        result = _apply(operation, items, ev, key or None, opts)
        return result[0] if operation == "map" and _is_single(value) else result
    problem = _limits.check(expression) if expression else None
    if problem:  # a template that rendered to a bad expression: not caught at validation
        where = f"(param 'expression', operation {operation})"
        raise _limits.ExpressionError(expression, problem, where)
    value = _fields.select(input, field) if field else input
    table = Table.from_any(value)
    params = dict(getattr(ctx, "params", None) or {})
    budget = (time_limit, size_limit)
    if table is not None:
        names: dict[str, Any] = {"params": params}
        jinja = _Evaluator(expression, operation, names, budget) if expression else None
        result = _on_table(table, operation, jinja, key or None, opts)
        if result is not NotImplemented:
            return result
    if aggregate and operation == "group":
        table = _records_table(value)
        return _table_ops.group(table, key, aggregate) if key else _no_key_group()
    items = _items(value)
    names = {"items": items, "params": params}
    jinja = _Evaluator(expression, operation, names, budget) if expression else None
    result = _apply(operation, items, jinja, key or None, opts)
    if operation == "map" and _is_single(value):
        return result[0]  # one value in, one value out
    return result


def _js_evaluator(
    expression: str, operation: str, items: list[Any], ctx: Any, limits: Mapping[str, Any]
) -> js.ItemEvaluator | None:
    """``language: javascript``: the expression runs in the V8 sandbox (see ``nodes.js``)
    over the whole list in one call; the operation's other work is the same as Jinja's."""
    if not expression:
        return None
    params = dict(getattr(ctx, "params", None) or {})
    return js.ItemEvaluator(expression, operation, items, params=params, **limits)


def _records_table(value: Any) -> Table:
    items = _items(value)
    if not all(isinstance(r, Mapping) for r in items):
        raise TypeError("group with aggregate works on records (or a table)")
    return Table.from_records(items)


def _no_key_group() -> Any:
    raise ValueError("group with aggregate needs a key: the column(s) to group by")


def _check_transform(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = []
    expression = values.get("expression")
    if values.get("language") == "javascript":
        problems.extend(code.check_js(values, "expression", js.ITEM_NAMES))
    elif isinstance(expression, str) and expression and "{{" not in expression:
        problem = _limits.check(expression)
        if problem:
            problems.append(("expression", problem))
    operation = values.get("operation", "map")
    if operation in _NEEDS_EXPRESSION and not expression:
        problems.append(("expression", _no_expression(operation)))
    if operation in ("select", "rename") and not values.get("columns"):
        problems.append(("columns", f"{operation} needs columns: a list, or old -> new names"))
    if operation == "rename" and isinstance(values.get("columns"), list):
        problems.append(("columns", "rename needs old -> new names (a mapping), got a list"))
    return problems


TRANSFORM = define(
    "transform",
    transform,
    category="data",
    description="Map, filter, reduce, sort, group, flatten, dedupe, reverse or slice a list, "
    "with sandboxed per-item expressions over item, index (and acc for reduce). A single "
    "value is a list of one, except that map turns it into one value.",
    params=[
        param("operation", "str", "map", "what to do with the list or table", choices=OPERATIONS),
        param(
            "expression",
            "code",
            "",
            "per-item expression over item, index, items, acc (reduce) and params",
            names=TRANSFORM_NAMES,
        ),
        param("field", "str", "", "dotted field of the input that holds the list"),
        param(
            "key",
            "str",
            "",
            "sort/group/unique by this dotted field of each record (else by the expression); "
            "a record without it counts as None (sorted last, grouped under None, deduped as "
            "one); a key that no record has fails the node",
        ),
        param("direction", "str", "asc", "sort direction", choices=("asc", "desc")),
        param("depth", "int", 1, "flatten depth", minimum=0),
        param("count", "int", 10, "limit/skip: how many items", minimum=0),
        param("start", "int", 0, "slice start"),
        param("end", "int", None, "slice end (None = to the end)"),
        param("initial", "any", None, "reduce: the starting accumulator"),
        param(
            "language",
            "str",
            "jinja",
            "the expression's language: jinja (the template sandbox), or javascript (a V8 "
            "sandbox from the js extra: item => ..., or an expression over item, index, acc, "
            "items, params; a function in reduce is called (acc, item, index))",
            choices=LANGUAGES,
        ),
        param(
            "aggregate",
            "dict",
            None,
            "group: output column -> count() | count(c) | sum(c) | mean(c) | min(c) | max(c) | "
            "first(c) | last(c) | list(c) | distinct(c); one row per group",
        ),
        param(
            "columns",
            "any",
            None,
            "select: the columns to keep (a list), or old -> new names; rename: old -> new",
        ),
        param("column", "str", "", "map over a table: set this column to the expression"),
        param(
            "time_limit",
            "float",
            _limits.DEFAULT_TIME_LIMIT,
            "seconds the expression may take for one item (javascript: for the whole list)",
            minimum=0,
        ),
        param(
            "size_limit",
            "int",
            _limits.DEFAULT_SIZE_LIMIT,
            "data the expression may produce for one item",
            minimum=1,
        ),
    ],
    example={
        "type": "transform",
        "params": {
            "input": [{"name": "Ada", "age": 36}, {"name": "Linus", "age": 12}],
            "operation": "filter",
            "expression": "item.age >= 18",
        },
    },
    validate=_check_transform,
    takes_context=True,
)

NODE_TYPES = [EDIT_FIELDS, TRANSFORM]
