"""The inline text of port values: exact for plain values, refused for anything else."""

from __future__ import annotations

import json
import math

import pytest

from conductor_nb.storage.values import is_plain, plain_text


@pytest.mark.parametrize(
    "values",
    [
        {"output": 3},
        {"items": [1, 1.5, "x", None, True]},
        {"row": {"a": 1, "b": 2.25}},
        {"rows": [{"a": [1, {"b": "é"}]}]},
        {"a": 0.1, "b": -0.0, "c": 1e300, "d": 12345678901234567890},
        {},
    ],
)
def test_plain_values_round_trip_exactly(values: dict) -> None:
    text = plain_text(values)
    assert text is not None
    decoded = {port: envelope["v"] for port, envelope in json.loads(text).items()}
    assert decoded == values
    assert all(type(decoded[k]) is type(v) for k, v in values.items())


@pytest.mark.parametrize(
    "values",
    [
        {"x": math.nan},
        {"x": [1.0, math.inf]},
        {"x": {"a": -math.inf}},
        {"x": [[math.nan]]},
        {"x": (1, 2)},  # a tuple would come back a list
        {"x": [1, (2, 3)]},
        {"x": {1: "a"}},  # an int key would come back a string
        {1: "a"},
        {"x": {"a": {1, 2}}},
        {"x": b"bytes"},
    ],
)
def test_values_json_would_change_are_not_inlined(values: dict) -> None:
    assert plain_text(values) is None
    assert not all(is_plain(v) for v in values.values()) or not all(type(k) is str for k in values)
