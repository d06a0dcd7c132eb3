"""What the built-ins' own validation reports: each problem once, located at its param."""

from __future__ import annotations

import pytest

import conductor_nb as cnb
from conductor_nb.nodes.plugins import BUILTIN_MODULES
from tests.nodes.conftest import make

REQUIRED = [  # (type, the required param, other params it needs to be valid otherwise)
    ("file-system", "path", {}),
    ("sql", "query", {}),
    ("notebook", "path", {}),
    ("http-request", "url", {}),
    ("shell-command", "program", {}),
    ("if", "condition", {}),
    ("code", "code", {}),
]


def _problems(node: dict) -> list[str]:
    with pytest.raises(cnb.BlueprintError) as caught:
        make({"n": node})
    return [f"{p.path}: {p.message}" for p in caught.value.problems]


@pytest.mark.parametrize(("type_name", "name", "others"), REQUIRED)
def test_a_missing_required_param_is_reported_once(type_name, name, others):
    problems = _problems({"type": type_name, "params": others})
    assert len(problems) == 1, problems
    assert f"required param {name!r} of 'n' ({type_name}) is missing" in problems[0]


@pytest.mark.parametrize(("type_name", "name", "others"), REQUIRED)
@pytest.mark.parametrize("empty", ["", None])
def test_an_empty_required_param_is_reported_once_at_its_place(type_name, name, others, empty):
    problems = _problems({"type": type_name, "params": {**others, name: empty}})
    assert len(problems) == 1, problems
    assert problems[0].startswith(f"nodes.n.params.{name}: {name} is empty:")


def test_every_required_builtin_param_is_covered():
    """A new required param joins REQUIRED, so its single report is checked too."""
    import importlib

    required = {
        (t.name, p.name)
        for module in BUILTIN_MODULES
        for t in importlib.import_module(module).NODE_TYPES
        for p in t.params
        if p.required
    }
    assert required == {(t, n) for t, n, _ in REQUIRED}


def test_http_request_reports_every_problem():
    problems = _problems(
        {"type": "http-request", "params": {"url": "ftp://x", "json": {}, "body": "b"}}
    )
    assert len(problems) == 2, problems
    assert "only http" in problems[0]
    assert "one of json, body and form, not json and body" in problems[1]
