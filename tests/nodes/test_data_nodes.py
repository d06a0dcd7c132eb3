"""edit-fields and transform, the expression limits, the sandbox-escape corpus, the examples."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

import conductor_nb as cnb
from conductor_nb.model import templates
from conductor_nb.model.types import registry
from conductor_nb.nodes.builtin import _limits
from conductor_nb.nodes.builtin.data import edit_fields, transform
from tests.nodes.conftest import make

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

PEOPLE = [
    {"name": "Ada", "age": 36, "team": "a"},
    {"name": "Linus", "age": 12, "team": "b"},
    {"name": "Grace", "age": 45, "team": "a"},
]


def test_edit_fields_sets_nested_and_keeps_only_set():
    assert edit_fields({"a": 1, "b": 2}, {"c.d": 3}, remove=["b"]) == {"a": 1, "c": {"d": 3}}
    assert edit_fields({"a": 1}, {"z": 0}, keepOnlySet=True) == {"z": 0}
    assert edit_fields([{"a": 1}, {"a": 2}], {"b": 0}) == [{"a": 1, "b": 0}, {"a": 2, "b": 0}]
    with pytest.raises(TypeError, match=r"edits records \(mappings\); the input is an int \(3\)"):
        edit_fields(3, {"x": 1})


# edit-fields renders its values per record: item (the record) and index (its position)


def _edit(values, **params):
    return {"e": {"type": "edit-fields", "params": {"values": values, **params}}}


def test_edit_fields_renders_values_per_record(run_bp):
    values = {
        "greeting": "{{ params.hello }} {{ item.name }}",
        "position": "{{ index }}",  # a lone expression keeps its type: an int
        "meta.team": "{{ item.team | upper }}",  # a dotted name nests
        "meta.of": "{{ inputs.input | length }}",
        "tags": ["literal", {"kept": True}],
    }
    run = run_bp(_edit(values, input=PEOPLE[:2]), params={"hello": "Hi"})
    assert run.status.value == "succeeded", run.summary()
    assert run["e"].output == [
        {
            **PEOPLE[0],
            "greeting": "Hi Ada",
            "position": 0,
            "meta": {"team": "A", "of": 2},
            "tags": ["literal", {"kept": True}],
        },
        {
            **PEOPLE[1],
            "greeting": "Hi Linus",
            "position": 1,
            "meta": {"team": "B", "of": 2},
            "tags": ["literal", {"kept": True}],
        },
    ]


def test_edit_fields_per_record_over_an_edge_keeps_the_records_nested_fields(run_bp):
    nodes = {
        "src": {"type": "pass", "params": {"input": [{"a": {"b": 1}}, {"a": {"b": 2, "c": 0}}]}},
        **_edit({"a.d": "{{ item.a.b * 10 }}", "first": "{{ index == 0 }}"}),
    }
    run = run_bp(nodes, ["src.output -> e.input"])
    assert run["e"].output == [
        {"a": {"b": 1, "d": 10}, "first": True},
        {"a": {"b": 2, "c": 0, "d": 20}, "first": False},
    ]


def test_edit_fields_on_one_record_sees_it_as_item_with_index_0(run_bp):
    values = {"who": "{{ item.name }} #{{ index }}", "ages": "{{ [item.age, item.age + 1] }}"}
    run = run_bp(_edit(values, input=PEOPLE[0], keepOnlySet=True))
    assert run["e"].output == {"who": "Ada #0", "ages": [36, 37]}


def test_edit_fields_values_may_be_one_template_rendered_per_record(run_bp):
    run = run_bp(_edit("{{ {'double': item.n * 2} }}", input=[{"n": 1}, {"n": 2}]))
    assert run["e"].output == [{"n": 1, "double": 2}, {"n": 2, "double": 4}]
    not_fields = run_bp(_edit("{{ item.n }}", input=[{"n": 1}]))
    assert "values for record 0 must render to a mapping of fields, got 1 (int)" in str(
        not_fields["e"].error
    )


def test_edit_fields_without_templates_sets_the_values_as_given(run_bp):
    values = {"n": 1, "nested": {"x": [1, 2]}, "text": "plain"}
    run = run_bp(_edit(values, input=[{"a": 1}, {}]))
    assert run["e"].output == [{"a": 1, **values}, values]
    assert run["e"].inputs["values"] == values


def test_a_per_record_template_error_names_the_node_field_and_record(run_bp):
    run = run_bp(_edit({"greeting": "Hi {{ item.name }}"}, input=[{"name": "Ada"}, {"nom": "Bo"}]))
    assert run.status.value == "failed"
    message = str(run["e"].error)
    assert "node 'e' (edit-fields)" in message
    assert "values.greeting for record 1" in message
    assert "has no attribute 'name'" in message
    assert "names available: index, inputs, item, now, params, run" in message


def test_edit_fields_without_an_input_says_so_when_a_template_reads_a_field(run_bp):
    for template in ("Hello {{ item.name }}", "Hello {{ inputs.input.name }}"):
        values = {"greeting": template}
        run = run_bp({"e": {"type": "edit-fields", "params": {"values": values}}})
        assert run.status.value == "failed"
        message = str(run["e"].error)
        assert "template error in values.greeting for record 0" in message
        assert "this node's input is None (not connected" in message
        assert "connect a node to its input or give input: ... in its params" in message
    # a None record inside a list is named as such
    params = {"input": [{"name": "Ada"}, None], "values": {"greeting": "Hi {{ item.name }}"}}
    run = run_bp({"e": {"type": "edit-fields", "params": params}})
    assert "template error in values.greeting for record 1" in str(run["e"].error)
    assert "record 1 is None, so item is {}" in str(run["e"].error)
    # templates that read no field still work without an input
    run = run_bp({"e": {"type": "edit-fields", "params": {"values": {"i": "{{ index }}"}}}})
    assert run["e"].output == {"i": 0}


def test_edit_fields_validation_checks_values_templates_and_type():
    with pytest.raises(cnb.BlueprintError) as info:
        make(_edit({"ok": "{{ item.a }}", "greeting": "Hi {{ item.name "}))
    assert info.value.paths == ["nodes.e.params.values.greeting"]
    assert "bad template syntax" in str(info.value)
    with pytest.raises(cnb.BlueprintError, match=r"nodes\.e\.params\.values: expected a mapping"):
        make(_edit(["not", "fields"]))
    with pytest.raises(cnb.BlueprintError) as undeclared:
        make(_edit({"g": "{{ params.nope }} {{ item.a }}"}))
    assert undeclared.value.paths == ["nodes.e.params.values.g"]
    assert "reads params.nope, which the blueprint does not declare" in str(undeclared.value)


def test_per_record_env_values_stay_masked_in_what_the_run_records(run_bp, monkeypatch):
    monkeypatch.setenv("CNB_TEST_SECRET", "s3cret-value")
    values = {"auth": "{{ env.CNB_TEST_SECRET }}-{{ index }}"}
    run = run_bp(_edit(values, input=[{"a": 1}, {"a": 2}]), env=True)
    assert run["e"].output == [
        {"a": 1, "auth": "s3cret-value-0"},
        {"a": 2, "auth": "s3cret-value-1"},
    ]
    assert "s3cret" not in repr(run["e"].inputs)
    failing = {"auth": "{{ env.CNB_TEST_SECRET ~ item.missing }}"}
    failed = run_bp(_edit(failing, input=[{"a": 1}]), env=True)
    assert "values.auth for record 0" in str(failed["e"].error)
    assert "s3cret" not in str(failed["e"].error) + failed["e"].traceback
    assert "s3cret" not in repr(failed["e"].inputs)
    with pytest.raises(cnb.BlueprintError, match="does not expose"):  # env is opt-in
        run_bp(_edit(values, input=[{"a": 1}]))


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"operation": "map", "expression": "item.name | upper"}, ["ADA", "LINUS", "GRACE"]),
        ({"operation": "filter", "expression": "item.age >= 18"}, [PEOPLE[0], PEOPLE[2]]),
        ({"operation": "reduce", "expression": "acc + item.age", "initial": 0}, 93),
        (
            {"operation": "sort", "key": "age", "direction": "desc"},
            [PEOPLE[2], PEOPLE[0], PEOPLE[1]],
        ),
        ({"operation": "sort", "expression": "item.name"}, [PEOPLE[0], PEOPLE[2], PEOPLE[1]]),
        ({"operation": "group", "key": "team"}, {"a": [PEOPLE[0], PEOPLE[2]], "b": [PEOPLE[1]]}),
        ({"operation": "unique", "key": "team"}, [PEOPLE[0], PEOPLE[1]]),
        ({"operation": "reverse"}, PEOPLE[::-1]),
        ({"operation": "limit", "count": 2}, PEOPLE[:2]),
        ({"operation": "skip", "count": 2}, PEOPLE[2:]),
        ({"operation": "slice", "start": 1, "end": 2}, PEOPLE[1:2]),
        ({"operation": "map", "expression": "index"}, [0, 1, 2]),
    ],
)
def test_transform_operations(params, expected):
    assert transform(PEOPLE, **params) == expected


@pytest.mark.parametrize(
    ("input", "params", "expected"),
    [
        (3, {"operation": "map", "expression": "item * 2"}, 6),  # one value in, one out
        (PEOPLE[0], {"operation": "map", "expression": "item.name"}, "Ada"),
        ([3], {"operation": "map", "expression": "item * 2"}, [6]),  # a list stays a list
        (None, {"operation": "map", "expression": "item * 2"}, []),  # nothing in, no items
        # the other operations see a single value as a list of one
        (PEOPLE[0], {"operation": "filter", "expression": "item.age > 18"}, [PEOPLE[0]]),
        (PEOPLE[1], {"operation": "filter", "expression": "item.age > 18"}, []),
        (PEOPLE[0], {"operation": "sort", "key": "age"}, [PEOPLE[0]]),
        (5, {"operation": "reduce", "expression": "acc + item", "initial": 1}, 6),
        (5, {"operation": "limit", "count": 3}, [5]),
    ],
)
def test_transform_of_a_single_value_in_a_run(run_bp, input, params, expected):
    nodes = {"src": {"type": "pass", "params": {"input": input}}, "t": {"type": "transform"}}
    nodes["t"]["params"] = params
    run = run_bp(nodes, ["src.output -> t.input"])
    assert run.status.value == "succeeded", run.summary()
    assert run["t"].output == expected


def test_transform_map_of_a_single_field_value(run_bp):
    params = {"input": {"n": 4}, "field": "n", "operation": "map", "expression": "item + 1"}
    assert run_bp({"t": {"type": "transform", "params": params}})["t"].output == 5


def test_transform_flatten_depth():
    assert transform([[1, [2, [3]]], 4], operation="flatten", depth=1) == [1, [2, [3]], 4]
    assert transform([[1, [2, [3]]], 4], operation="flatten", depth=5) == [1, 2, 3, 4]


def test_runaway_expression_fails_on_size():
    with pytest.raises(_limits.ExpressionLimitError, match="size limit"):
        transform([1], expression="range(100000) | map('center', 1000000) | list | length")


def test_runaway_expression_fails_on_time():
    # a zero budget: the first metered step is already past the deadline
    with pytest.raises(_limits.ExpressionLimitError, match="time limit"):
        transform(list(range(1000)), expression="range(1000) | map('string') | join", time_limit=0)


def test_transform_in_a_run_fails_the_node_with_a_clear_error(run_bp):
    nodes = {
        "t": {
            "type": "transform",
            "params": {
                "input": [1, 2],
                "expression": "range(100000) | map('center', 10**6) | list",
            },
        }
    }
    run = run_bp(nodes)
    assert run.status.value == "failed"
    assert "size limit" in str(run["t"].error)


ESCAPES = [
    "{{ ().__class__ }}",
    "{{ ().__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ joiner.__init__.__globals__.os }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ params.__class__.__base__ }}",
    "{{ params.update({'x': 1}) }}",
    "{{ dict.__subclasses__() }}",
    "{{ range.__self__ }}",
    "{{ range(10**9) | list }}",
    "{{ 'a' * 10**9 }}",
    "{{ [1] * 10**9 }}",
    "{{ 2 ** 100000 }}",
    "{{ request.application.__globals__ }}",
    "{{ config.items() }}",
    "{{ ''.format.__globals__ }}",
    "{{ '{0.__class__}'.format(params) }}",
    "{% import 'os' as os %}",
    "{% include '/etc/passwd' %}",
    "{{ now.__class__.__subclasses__() }}",
    "{{ (params|attr('__class__')) }}",
    "{{ env.PATH }}",
]


@pytest.mark.parametrize("text", ESCAPES)
def test_sandbox_escape_corpus_fails_cleanly(text):
    context = templates.base_context({"x": 1})
    with pytest.raises(templates.TemplateError):
        templates.render_value(text, context)


@pytest.mark.parametrize("text", [t[3:-3].strip() for t in ESCAPES if t.startswith("{{")])
def test_sandbox_escape_corpus_fails_in_transform_expressions(text):
    with pytest.raises((templates.TemplateError, _limits.ExpressionLimitError)):
        transform([1], expression=text)


def test_env_is_only_available_when_the_run_enables_it(run_bp, monkeypatch):
    monkeypatch.setenv("CNB_TEST_SECRET", "s3cret")
    nodes = {"e": {"type": "edit-fields", "params": {"values": {"v": "{{ env.CNB_TEST_SECRET }}"}}}}
    with pytest.raises(cnb.BlueprintError, match=r"reads env\.CNB_TEST_SECRET"):
        run_bp(nodes)  # refused before the run, with the fix
    assert run_bp(nodes, env=["CNB_TEST_SECRET"])["e"].outputs["output"] == {"v": "s3cret"}
    run = run_bp(nodes, env=True)
    assert run["e"].outputs["output"] == {"v": "s3cret"}


def test_validation_names_the_node_and_field():
    doc = {
        "conductor": 1,
        "id": "bad",
        "nodes": {
            "t": {"type": "transform", "params": {"operation": "filter", "expression": "item.("}}
        },
    }
    with pytest.raises(cnb.BlueprintError, match=r"nodes\.t\.params\.expression"):
        cnb.Blueprint.from_dict(doc)


@pytest.mark.parametrize("name", ["hello.yaml", "data-transform.yaml"])
def test_examples_run_end_to_end(name, tmp_path, monkeypatch):
    shutil.copy(EXAMPLES / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    run = cnb.load(name).run(history=False)
    assert run.status.value == "succeeded", run.summary()
    if name == "hello.yaml":
        assert run.outputs["greeted"] == ["Hello Ada", "Hello Grace"]
        assert (tmp_path / "out" / "greetings.txt").read_text() == "Hello Ada\nHello Grace"
    else:  # the CSV's numbers read back as numbers; the `| int` filters still work on them
        assert [(r["order"], r["amount"]) for r in run.outputs["top"]] == [
            (3, 300),
            (5, 220),
            (4, 150),
            (1, 120),
        ]
        assert run.outputs["totals"] == {"north": 420, "east": 150, "south": 220}
        summary = json.loads((tmp_path / "out" / "summary.json").read_text())
        assert summary == {"regions": 3, "totals": {"north": 420, "east": 150, "south": 220}}


# a key or field that matches nothing is a typo: say so instead of computing on None


@pytest.mark.parametrize("operation", ["sort", "group", "unique"])
def test_a_key_no_record_has_fails_with_the_fields_there(run_bp, operation):
    run = run_bp(
        {
            "t": {
                "type": "transform",
                "params": {"input": PEOPLE, "operation": operation, "key": "nme"},
            }
        }
    )
    assert run.status.value == "failed"
    assert str(run["t"].error).endswith(
        f"FieldError: {operation} by key 'nme': no record has field 'nme'; fields of the first "
        "record: name, age, team; did you mean 'name'?"
    )


def test_a_dotted_key_names_the_missing_part(run_bp):
    records = [{"who": {"name": "b"}}, {"who": {"name": "a"}}]
    typo = run_bp(
        {
            "t": {
                "type": "transform",
                "params": {"input": records, "operation": "sort", "key": "who.nme"},
            }
        }
    )
    assert "fields of the first record's 'who': name; did you mean 'who.name'?" in str(
        typo["t"].error
    )
    ok = run_bp(
        {
            "t": {
                "type": "transform",
                "params": {"input": records, "operation": "sort", "key": "who.name"},
            }
        }
    )
    assert ok["t"].output == records[::-1]


def test_a_key_over_items_that_are_not_records_says_so(run_bp):
    run = run_bp(
        {
            "t": {
                "type": "transform",
                "params": {"input": [3, 1, 2], "operation": "unique", "key": "name"},
            }
        }
    )
    assert "no item has field 'name': the items are not records (the first is an int: 3)" in str(
        run["t"].error
    )
    assert "leave key empty to dedupe by the items themselves" in str(run["t"].error)


def test_a_key_some_records_lack_reads_as_none_as_documented(run_bp):
    records = [{"name": "b"}, {"nick": "x"}, {"name": "a"}, {"nick": "y"}]
    out = {}
    for operation in ("sort", "group", "unique"):
        params = {"input": records, "operation": operation, "key": "name"}
        run = run_bp({"t": {"type": "transform", "params": params}})
        assert run.status.value == "succeeded", run.summary()
        out[operation] = run["t"].output
    assert out["sort"] == [records[2], records[0], records[1], records[3]]  # None sorts last
    assert out["group"] == {"b": [records[0]], None: [records[1], records[3]], "a": [records[2]]}
    assert out["unique"] == records[:3]  # the records without it dedupe as one (None)
    described = {p["name"]: p for p in registry.get("transform").describe()["params"]}
    assert "a record without it counts as None" in described["key"]["description"]
    assert "a key that no record has fails the node" in described["key"]["description"]


def test_a_missing_field_of_the_input_suggests_the_closest(run_bp):
    params = {"input": {"user": [1, 2]}, "field": "users", "operation": "reverse"}
    run = run_bp({"t": {"type": "transform", "params": params}})
    assert str(run["t"].error).endswith(
        "FieldError: field 'users': the input has no field 'users'; fields of the input: user; "
        "did you mean 'user'?"
    )
    listed = run_bp({"t": {"type": "transform", "params": {**params, "input": [1, 2]}}})
    assert "field 'users': the input is a list, not a mapping" in str(listed["t"].error)


def test_a_field_of_a_text_http_body_says_the_input_is_a_string(run_bp, server):
    nodes = {
        "get": {"type": "http-request", "params": {"url": f"{server}/text"}},
        "t": {"type": "transform", "params": {"field": "users", "operation": "reverse"}},
    }
    run = run_bp(nodes, ["get.body -> t.input"])
    message = str(run["t"].error)
    assert "field 'users': the input is a string, not a mapping" in message
    assert "has no field" not in message
    assert "response: json on the http-request node" in message


# expression errors speak of the expression, the param, the operation and the item


def test_an_expression_error_names_the_param_operation_and_item(run_bp):
    params = {"input": [{"d": 1}, {"d": 0}], "operation": "map", "expression": "10 / item.d"}
    run = run_bp({"t": {"type": "transform", "params": params}})
    assert str(run["t"].error).endswith(
        "ExpressionError: expression '10 / item.d' (param 'expression', operation map) failed "
        "on item 1: ZeroDivisionError: division by zero"
    )
    params = {"input": PEOPLE, "operation": "reduce", "expression": "acc + item.agee", "initial": 0}
    run = run_bp({"t": {"type": "transform", "params": params}})
    assert "(param 'expression', operation reduce) failed on item 0: 'dict object' has no " in str(
        run["t"].error
    )


def test_an_expression_syntax_error_says_expression_not_template(run_bp):
    with pytest.raises(cnb.BlueprintError) as loaded:
        make({"t": {"type": "transform", "params": {"operation": "map", "expression": "item +"}}})
    assert "nodes.t.params.expression: bad expression syntax: unexpected end of expression" in str(
        loaded.value
    )
    # a template that renders to a bad expression is caught when the node runs
    nodes = {"t": {"type": "transform", "params": {"input": [1], "expression": "{{ params.e }}"}}}
    run = run_bp(nodes, params={"e": {"default": "item +"}})
    message = str(run["t"].error)
    assert message.endswith(
        "ExpressionError: expression 'item +' (param 'expression', operation map): bad "
        "expression syntax: unexpected end of expression"
    )
    assert "template" not in message


# edit-fields on values that are not records: a hint that works when followed


@pytest.mark.parametrize(
    ("input", "where", "expected"),
    [
        ([1, 2], "record 0 of the input is an int (1)", [{"value": 1}, {"value": 2}]),
        (7, "the input is an int (7)", {"value": 7}),
        (["a", "b"], "record 0 of the input is a string ('a')", [{"value": "a"}, {"value": "b"}]),
    ],
)
def test_edit_fields_hint_for_values_that_are_not_records_works(run_bp, input, where, expected):
    wrapped = run_bp(_edit({"value": "{{ inputs.input }}"}, input=input))
    message = str(wrapped["e"].error)
    assert f"edit-fields edits records (mappings); {where}" in message
    assert "set keepOnlySet: true and values: {value: '{{ item }}'}" in message
    assert " a int" not in message
    hinted = run_bp(_edit({"value": "{{ item }}"}, input=input, keepOnlySet=True))
    assert hinted.status.value == "succeeded", hinted.summary()
    assert hinted["e"].output == expected
