"""Notebook parameters as papermill means them, typed by the declared default where that
reads better; papermill's two-argument ``-p NAME VALUE`` (in-process, fast)."""

from __future__ import annotations

import base64

import pytest

from conductor_nb.headless.params import (
    ParamValueError,
    merge_yaml_sources,
    notebook_assignments,
    notebook_value,
    papermill_value,
)
from conductor_nb.headless.run_options import papermill_pairs


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("True", True),
        ("False", False),
        ("None", None),
        ("3", 3),
        ("-2.5", -2.5),
        ('"Hello"', '"Hello"'),  # quotes kept
        ("[1, 2]", "[1, 2]"),  # papermill does not parse lists
        ("true", "true"),
        ("1e3", 1000.0),
    ],
)
def test_papermill_value(raw: str, expected: object) -> None:
    assert papermill_value(raw) == expected


@pytest.mark.parametrize(
    ("raw", "declared", "expected", "fits"),
    [
        ("7", "str", "7", True),
        ("no", "bool", False, True),
        ("3", "float", 3.0, True),
        ("[a, b]", "list", ["a", "b"], True),
        ("{k: 1}", "dict", {"k": 1}, True),
        ('"Hi"', "any", '"Hi"', True),
        ("None", "int", None, True),
        ("abc", "int", "abc", False),
        ("2.5", "int", 2.5, False),
        ("maybe", "bool", "maybe", False),
        ("[a", "list", "[a", False),
    ],
)
def test_notebook_value(raw: str, declared: str, expected: object, fits: bool) -> None:
    value, why = notebook_value(raw, declared)
    assert value == expected
    assert (why is None) == fits


def test_assignments_keep_every_value_and_say_what_is_odd() -> None:
    values, problems = notebook_assignments(
        {"n": "int", "word": "str"},
        base={"word": 3},
        assignments=["n=abc", "nn=1", "PAPERMILL_INPUT_PATH=x"],
        raw=[("word", "12")],
        owner="notebook 'a.ipynb'",
    )
    assert values == {"word": "12", "n": "abc", "nn": 1, "PAPERMILL_INPUT_PATH": "x"}
    rendered = [p.render() for p in problems]
    assert rendered[0].startswith("parameter word: param 'word' (str): expected a string")
    assert rendered[1].startswith("-p n=abc: param 'n' (int): expected an integer, got 'abc'")
    assert "notebook 'a.ipynb' has no param 'nn'" in rendered[2]
    assert "did you mean 'n'?" in rendered[2]
    assert len(problems) == 3  # PAPERMILL_INPUT_PATH is never odd


def test_yaml_sources_in_papermill_order(tmp_path) -> None:
    (tmp_path / "p.yaml").write_text("a: 1\nday: 2026-11-24\n")
    encoded = base64.b64encode(b"a: 0\nb: [x]").decode()
    merged = merge_yaml_sources(
        files=[str(tmp_path / "p.yaml")], yaml_texts=["c: {k: v}"], base64_texts=[encoded]
    )
    assert merged == {"a": 1, "b": ["x"], "day": "2026-11-24", "c": {"k": "v"}}
    with pytest.raises(ParamValueError, match="-b 'not base64!': not base64"):
        merge_yaml_sources(base64_texts=["not base64!"])
    with pytest.raises(ParamValueError, match="expected a mapping"):
        merge_yaml_sources(yaml_texts=["[1, 2]"])


def test_papermill_pairs() -> None:
    assert papermill_pairs(["run", "a.ipynb", "-p", "x", "1", "-p", "y=2"]) == [
        "run",
        "a.ipynb",
        "-p",
        "x=1",
        "-p",
        "y=2",
    ]
    assert papermill_pairs(["run", "a", "-p", "n", "-5"])[-1] == "n=-5"
    assert papermill_pairs(["run", "a", "-p", "x", "--json"])[-2:] == ["x", "--json"]
    assert papermill_pairs(["export", "-p", "x", "1"]) == ["export", "-p", "x", "1"]
