"""-p values typed by declared param types (in-process, fast)."""

from __future__ import annotations

import pytest

from conductor_nb.errors import BlueprintError
from conductor_nb.headless.params import parse_value, typed_params


@pytest.mark.parametrize(
    ("raw", "type_name", "expected"),
    [
        ("3", "int", 3),
        ("2.5", "float", 2.5),
        ("4", "number", 4),
        ("off", "bool", False),
        ("[1, 2]", "list", [1, 2]),
        ('{"a": 1}', "dict", {"a": 1}),
        ("[x, y]", "list", ["x", "y"]),  # YAML flow syntax, as in blueprints
        ("{a: 1, b: [c]}", "dict", {"a": 1, "b": ["c"]}),
        ("[1e5]", "list", [100000.0]),  # JSON first: YAML would read '1e5' as a string
        ("[x, y]", "any", ["x", "y"]),
        ("007", "str", "007"),
        ("3", "any", 3),
        ("abc", "any", "abc"),
        ("null", "any", None),
    ],
)
def test_parse_value(raw: str, type_name: str, expected: object) -> None:
    assert parse_value(raw, type_name) == expected


def test_typed_params_collects_every_problem() -> None:
    with pytest.raises(BlueprintError) as info:
        typed_params(["n=x", "flag=2x", "zz=1"], {"n": "int", "flag": "bool"})
    assert len(info.value.problems) == 3


def test_params_file_values_are_type_checked() -> None:
    with pytest.raises(BlueprintError, match="expected an integer"):
        typed_params([], {"n": "int"}, base={"n": "three"})
    assert typed_params(["n=2"], {"n": "int"}, base={"n": 1}) == {"n": 2}
