"""One bad blueprint per problem; each error must name where the problem is."""

from __future__ import annotations

from pathlib import Path

import pytest

import conductor_nb as cnb

BAD = sorted((Path(__file__).parent / "bad").glob("*.yaml"))


def _expectation(path: Path) -> tuple[str, str]:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect: "), path
    where, _, what = first.removeprefix("# expect: ").partition(" | ")
    return where.strip(), what.strip()


@pytest.mark.parametrize("path", BAD, ids=[p.stem for p in BAD])
def test_bad_blueprint_is_reported_with_its_location(path: Path, registry) -> None:
    where, what = _expectation(path)
    with pytest.raises(cnb.BlueprintError) as info:
        cnb.load(path, registry=registry)
    message = str(info.value)
    assert str(path) in message
    rendered = [p.render() for p in info.value.problems]
    assert any(r.startswith(where) and what in r for r in rendered), (
        f"no problem at {where!r} mentioning {what!r}:\n{message}"
    )


def test_problems_carry_line_numbers(registry) -> None:
    path = Path(__file__).parent / "bad" / "edge_missing_port.yaml"
    with pytest.raises(cnb.BlueprintError) as info:
        cnb.load(path, registry=registry)
    problem = next(p for p in info.value.problems if p.path == "edges[0]")
    assert problem.line == 8
    assert "(line 8" in str(info.value)
    assert "input ports of 'b' (double): 'x'" in str(info.value)


def test_every_problem_is_collected_before_raising(registry) -> None:
    text = """
conductor: 1
id: many
nodes:
  a: {type: double}
  t: {type: transfrom}
  u: {type: transform, params: {operation: nope}}
edges:
  - a.output -> zz.x
"""
    with pytest.raises(cnb.BlueprintError) as info:
        cnb.Blueprint.from_yaml(text, registry=registry)
    paths = info.value.paths
    assert "nodes.a" in paths
    assert "nodes.t.type" in paths
    assert "nodes.u.params.operation" in paths
    assert "edges[0]" in paths
    assert str(info.value).startswith("4 problems in blueprint 'many'")


def test_json_duplicate_keys_and_syntax(registry) -> None:
    with pytest.raises(cnb.BlueprintError, match="duplicate key 'a'"):
        cnb.Blueprint.from_json('{"id": "x", "nodes": {"a": {}, "a": {}}}', registry=registry)
    with pytest.raises(cnb.BlueprintError, match=r"\(line 1, column \d+\): JSON syntax error"):
        cnb.Blueprint.from_json('{"id": ', registry=registry)


def test_huge_document_is_refused_without_parsing(registry) -> None:
    with pytest.raises(cnb.BlueprintError, match="at most"):
        cnb.Blueprint.from_yaml("x" * 20_000_001, registry=registry)


def test_loading_never_executes_anything(tmp_path, registry) -> None:
    marker = tmp_path / "pwned"
    text = f"""
conductor: 1
id: evil
nodes:
  a: {{type: double, params: {{x: !!python/object/apply:os.system ["touch {marker}"]}}}}
"""
    with pytest.raises(cnb.BlueprintError, match="is not allowed"):
        cnb.Blueprint.from_yaml(text, registry=registry)
    assert not marker.exists()


def test_unknown_suffix_and_missing_file(tmp_path) -> None:
    with pytest.raises(cnb.BlueprintError, match="unknown blueprint file type '.txt'"):
        cnb.load(tmp_path / "x.txt")
    with pytest.raises(cnb.BlueprintError, match="no such file"):
        cnb.load(tmp_path / "missing.yaml")


def test_misspellings_get_a_suggestion_and_a_bad_edge_one_problem(registry, tmp_path) -> None:
    path = tmp_path / "typos.yaml"
    path.write_text(
        "conductor: 1\nid: t\nnodse: {}\nnodes:\n"
        "  a: {type: transform, params: {operation: mapp}, timout: 5}\n"
        "edges:\n  - a.output b.x\n"
    )
    with pytest.raises(cnb.BlueprintError) as info:
        cnb.load(path, registry=registry)
    by_path = {p.path: p for p in info.value.problems}
    assert by_path["nodse"].hints == ("hint: did you mean 'nodes'?",)
    assert by_path["nodes.a.timout"].hints == ("hint: did you mean 'timeout'?",)
    assert [p.path for p in info.value.problems].count("edges[0]") == 1
    path.write_text(
        "conductor: 1\nid: t\nnodes:\n  a: {type: transform, params: {operation: mapp}}\n"
    )
    with pytest.raises(cnb.BlueprintError, match=r"got 'mapp' \(did you mean 'map'\?\)"):
        cnb.load(path, registry=registry)


def test_an_undeclared_param_in_a_file_is_fixed_in_the_file(registry, tmp_path) -> None:
    path = tmp_path / "undeclared.yaml"
    path.write_text(
        "conductor: 1\nid: u\nnodes:\n  a: {type: double, params: {x: '{{ params.n }}'}}\n"
    )
    with pytest.raises(cnb.BlueprintError) as info:
        cnb.load(path, registry=registry)
    assert "fix: declare it in the file's params, e.g. params: {n: {default: ...}}" in str(
        info.value
    )
