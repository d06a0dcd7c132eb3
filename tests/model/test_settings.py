"""Node settings are declared once (model.settings.NodeSettings): bp.add, set_params, save,
load, validation and the JSON Schema agree on every value, by construction.

The property: any value ``bp.add`` accepts for a setting round-trips through save and
load; any value a file is refused for is refused by ``bp.add`` with the same message.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

import conductor_nb as cnb
from conductor_nb.model.schema import check_settings
from conductor_nb.model.settings import DEFAULTS, SETTINGS, NodeSettings, file_form
from conductor_nb.model.types import NodeType, Registry


def _ident(x: object = None) -> object:
    return x


REG = Registry()
REG.register(NodeType.from_function(_ident, name="ident"))

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-3, 1200),
    st.floats(-5, 1e6, allow_nan=False),
    st.floats(allow_nan=False),
    st.text(max_size=4),
)
values = st.one_of(
    scalars,
    st.lists(scalars, max_size=3),
    st.tuples(scalars, scalars),
    st.dictionaries(st.text(max_size=3), scalars, max_size=2),
)


def added(name: str, value: object) -> tuple[cnb.Blueprint | None, list[cnb.errors.Problem]]:
    bp = cnb.Blueprint("s", registry=REG)
    try:
        bp.add("ident", id="n", **{name: value})
    except cnb.BlueprintError as exc:
        return None, exc.problems
    return bp, []


def loaded(name: str, value: object) -> tuple[cnb.Blueprint | None, list[cnb.errors.Problem]]:
    """The same setting written in a YAML file (a tuple is a list there), then loaded."""
    as_file = list(value) if isinstance(value, tuple) else value
    doc = {"conductor": 1, "id": "s", "nodes": {"n": {"type": "ident", name: as_file}}}
    try:
        return cnb.Blueprint.from_yaml(yaml.safe_dump(doc, sort_keys=False), registry=REG), []
    except cnb.BlueprintError as exc:
        return None, exc.problems


def messages(problems: list[cnb.errors.Problem]) -> list[tuple[str, str]]:
    return [(p.path, p.message) for p in problems]


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(SETTINGS), values)
@example("name", "\x85")  # YAML reads NEL as a line break: saved unescaped, it came back " "
def test_add_and_load_agree_on_every_setting_value(name: str, value: object) -> None:
    bp, refused_by_add = added(name, value)
    from_file, refused_on_load = loaded(name, value)
    assert messages(refused_by_add) == messages(refused_on_load)
    if bp is None:
        assert refused_by_add and all(p.path.startswith(f"nodes.n.{name}") for p in refused_by_add)
        return
    assert from_file is not None and from_file.nodes["n"] == bp.nodes["n"]
    again = cnb.Blueprint.from_yaml(bp.to_yaml(), registry=REG)  # save, load
    assert again.nodes["n"] == bp.nodes["n"]
    assert again.to_yaml() == bp.to_yaml()
    assert cnb.Blueprint.from_json(bp.to_json(), registry=REG).nodes["n"] == bp.nodes["n"]
    assert bp.problems() == []


def test_retry_backoff_below_one_is_refused_by_add_as_on_load(tmp_path: Path) -> None:
    """The bug: add accepted retry_backoff=0.5, then the saved file was refused on load."""
    bp, problems = added("retry_backoff", 0.5)
    assert bp is None
    assert messages(problems) == [("nodes.n.retry_backoff", "expected a number >= 1, got 0.5")]
    good = cnb.Blueprint("s", registry=REG)
    good.add("ident", id="n", retry_backoff=1.5, retry_on=[TimeoutError], position=(10, 20))
    path = good.save(tmp_path / "s.yaml")
    assert cnb.Blueprint.load(path, registry=REG) == good


def test_set_params_checks_settings_and_changes_nothing_on_a_refusal() -> None:
    bp = cnb.Blueprint("s", registry=REG)
    bp.add("ident", id="n", retries=2, x=1)
    with pytest.raises(cnb.BlueprintError) as info:
        bp.set_params("n", x=5, retries=-1)
    assert messages(info.value.problems) == [
        ("nodes.n.retries", "expected an integer >= 0 and <= 1000, got -1")
    ]
    assert bp["n"].retries == 2 and bp["n"].params == {"x": 1}
    bp.set_params("n", timeout=3, position=[1, 2], retries=None)  # None: back to the default
    assert (bp["n"].timeout, bp["n"].position, bp["n"].retries) == (3, (1, 2), 0)


def test_validation_catches_a_setting_changed_behind_the_api() -> None:
    bp = cnb.Blueprint("s", registry=REG)
    bp.add("ident", id="n")
    bp["n"].retry_backoff = 0  # direct attribute edits are checked when the blueprint is
    assert messages(bp.problems()) == [("nodes.n.retry_backoff", "expected a number >= 1, got 0")]


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(SETTINGS), values)
@example("retries", True)  # a bool is not an integer here, though True == 1
@example("retry_delay", 2**60)  # an int too large for every float to match: the model decides
@example("position", (float("inf"), 0))
def test_validation_judges_a_setting_set_behind_the_api_as_the_model_does(
    name: str, value: object
) -> None:
    """Validation checks plain values without pydantic; whatever it lets through or
    refuses, the pydantic model (what a file is checked by) says the same."""
    bp = cnb.Blueprint("s", registry=REG)
    setattr(bp.add("ident", id="n"), name, value)
    as_file = {name: file_form(value)}
    expected = check_settings(as_file, "n", dump=False)[1] if value != DEFAULTS[name] else []
    assert messages(bp.problems()) == messages(expected)


def test_the_json_schema_states_every_setting_from_the_declaration() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "conductor_nb.headless.cli", "schema"],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    schema = json.loads(done.stdout)
    node = schema["$defs"]["NodeDoc"]["properties"]
    for spec in dataclasses.fields(NodeSettings):
        prop = node[spec.name]
        assert prop["description"] == spec.metadata["description"]
        if DEFAULTS[spec.name] not in (None, [], {}):
            assert prop["default"] == DEFAULTS[spec.name]
    retries = node["retries"]
    assert (retries["minimum"], retries["maximum"], retries["type"]) == (0, 1000, "integer")
    assert node["retry_backoff"]["minimum"] == 1
    assert node["timeout"]["anyOf"][0]["exclusiveMinimum"] == 0
    assert node["position"]["anyOf"][0]["minItems"] == 2
