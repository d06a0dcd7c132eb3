"""One contract suite for every blueprint store backend, plus name validation."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import conductor_nb as cnb
from conductor_nb.errors import StoreError
from conductor_nb.storage import BlueprintStore


@cnb.node(name="store_contract_step")
def step(path: str = "", factor: float = 1.0) -> str:
    return path * int(factor)


def _blueprint(bp_id: str = "sales", description: str = "") -> cnb.Blueprint:
    bp = cnb.Blueprint(bp_id, description=description, params={"path": "data.csv"})
    bp.add(step, id="load", path="{{ params.path }}")
    bp.add(step, id="again", factor=2)
    bp.connect("load", "again.path")
    return bp


BACKENDS = ["folder", "memory", "fsspec-memory", "fsspec-file"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[BlueprintStore]:
    kind = request.param
    if kind == "folder":
        yield BlueprintStore(tmp_path / "bps")
    elif kind == "memory":
        yield BlueprintStore(":memory:")
    elif kind == "fsspec-memory":
        root = f"memory://conductor-tests/{uuid.uuid4().hex}"
        yield BlueprintStore(root)
        import fsspec

        fs = fsspec.filesystem("memory")
        if fs.exists(root):
            fs.rm(root, recursive=True)
    else:
        yield BlueprintStore((tmp_path / "fs-bps").as_uri())


def test_empty_store_lists_nothing(store: BlueprintStore) -> None:
    assert store.list() == []
    assert store.versions("sales") == []
    assert "sales" not in store


def test_save_then_load_round_trips(store: BlueprintStore) -> None:
    bp = _blueprint()
    assert store.save(bp) == 1
    loaded = store.load("sales")
    assert loaded == bp
    assert loaded.to_dict() == bp.to_dict()
    assert store.list() == ["sales"]
    assert "sales" in store


def test_save_under_another_name(store: BlueprintStore) -> None:
    store.save(_blueprint(), name="sales-v2")
    assert store.list() == ["sales-v2"]
    assert store.load("sales-v2").id == "sales"


def test_each_save_is_a_new_version(store: BlueprintStore) -> None:
    store.save(_blueprint(description="first"))
    store.save(_blueprint(description="second"))
    assert store.save(_blueprint(description="third")) == 3
    assert store.versions("sales") == [1, 2, 3]
    assert store.load("sales").description == "third"
    assert store.load("sales", version=1).description == "first"
    assert store.load("sales", version=2).description == "second"


def test_load_unknown_version_names_the_saved_ones(store: BlueprintStore) -> None:
    store.save(_blueprint())
    with pytest.raises(StoreError, match=r"no version 7; saved versions: 1"):
        store.load("sales", version=7)
    with pytest.raises(StoreError, match="whole number"):
        store.load("sales", version=0)


def test_load_missing_suggests_close_names(store: BlueprintStore) -> None:
    store.save(_blueprint())
    with pytest.raises(StoreError, match=r"no blueprint 'sale'.*did you mean 'sales'"):
        store.load("sale")


def test_delete_removes_every_version(store: BlueprintStore) -> None:
    store.save(_blueprint())
    store.save(_blueprint(description="again"))
    store.save(_blueprint("other"))
    store.delete("sales")
    assert store.list() == ["other"]
    assert store.versions("sales") == []
    with pytest.raises(StoreError, match="no blueprint 'sales'"):
        store.load("sales")
    with pytest.raises(StoreError):
        store.delete("sales")


def test_delete_one_version(store: BlueprintStore) -> None:
    store.save(_blueprint(description="first"))
    store.save(_blueprint(description="second"))
    store.delete("sales", version=1)
    assert store.versions("sales") == [2]
    assert store.load("sales").description == "second"


def test_names_with_a_suffix_mean_the_bare_name(store: BlueprintStore) -> None:
    store.save(_blueprint(), name="sales.yaml")
    assert store.list() == ["sales"]
    assert store.load("sales.yaml").id == "sales"


def test_json_format_store(tmp_path: Path) -> None:
    store = BlueprintStore(tmp_path / "json-bps", format="json")
    store.save(_blueprint())
    assert (tmp_path / "json-bps" / "sales.json").exists()
    assert store.load("sales") == _blueprint()


def test_folder_store_reads_files_put_there_by_hand(tmp_path: Path) -> None:
    folder = tmp_path / "bps"
    _blueprint(description="by hand").save(folder / "sales.yaml")
    store = BlueprintStore(folder)
    assert store.list() == ["sales"]
    assert store.versions("sales") == [1]
    assert store.load("sales", version=1).description == "by hand"
    store.save(_blueprint(description="saved"))
    assert store.versions("sales") == [1, 2]
    assert store.load("sales", version=1).description == "by hand"


def test_folder_writes_leave_no_temporary_files(tmp_path: Path) -> None:
    store = BlueprintStore(tmp_path / "bps")
    for i in range(3):
        store.save(_blueprint(description=str(i)))
    leftovers = [p for p in (tmp_path / "bps").rglob("*") if ".tmp" in p.name]
    assert leftovers == []


def test_default_location_is_blueprints_in_the_cwd(tmp_path: Path) -> None:
    store = BlueprintStore()
    store.save(_blueprint())
    assert (tmp_path / "blueprints" / "sales.yaml").exists()


def test_group_loader_uses_the_default_store(tmp_path: Path) -> None:
    from conductor_nb.storage import load_blueprint

    BlueprintStore().save(_blueprint(), name="inner")
    assert load_blueprint("inner").id == "sales"


BAD_NAMES = [
    ("../escape", "separator"),
    ("..", "'..'"),
    ("a/../../b", "separator"),
    ("/etc/passwd", "absolute path"),
    ("\\\\server\\share", "absolute path"),
    ("C:evil", "absolute path"),
    ("a/b", "separator"),
    ("a\\b", "separator"),
    ("nul\x00byte", "NUL"),
    ("line\nbreak", "control character"),
    ("", "empty"),
    (".hidden", "characters other than"),
    ("sp ace", "characters other than"),
    ("s3://bucket/x", "':'"),
]


@pytest.mark.parametrize(("name", "why"), BAD_NAMES)
def test_bad_names_are_refused_everywhere(store: BlueprintStore, name: str, why: str) -> None:
    bp = _blueprint()
    for attempt in (
        lambda: store.save(bp, name=name),
        lambda: store.load(name),
        lambda: store.delete(name),
        lambda: store.versions(name),
    ):
        with pytest.raises(StoreError, match="is not allowed") as info:
            attempt()
        assert why in str(info.value)


def test_traversal_does_not_write_outside_the_folder(tmp_path: Path) -> None:
    store = BlueprintStore(tmp_path / "bps")
    with pytest.raises(StoreError):
        store.save(_blueprint(), name="../outside")
    assert not (tmp_path / "outside.yaml").exists()


def test_non_string_name_is_refused(store: BlueprintStore) -> None:
    with pytest.raises(StoreError, match="must be a string"):
        store.load(3)  # type: ignore[arg-type]
