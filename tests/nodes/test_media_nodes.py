"""image (Pillow) and notebook (a real papermill run)."""

from __future__ import annotations

import io

import nbformat
import pytest
from PIL import Image

import conductor_nb as cnb
from conductor_nb.nodes.record import MIMETYPE, read_records


@pytest.fixture
def picture(tmp_path):
    Image.new("RGB", (40, 20), (200, 10, 10)).save(tmp_path / "in.png")
    Image.new("RGBA", (10, 10), (0, 0, 255, 255)).save(tmp_path / "logo.png")
    return tmp_path / "in.png"


@pytest.mark.parametrize(
    ("params", "size", "mode"),
    [
        ({"operation": "resize", "width": 20}, (20, 10), "RGB"),
        ({"operation": "resize", "width": 8, "height": 8, "keepAspect": False}, (8, 8), "RGB"),
        ({"operation": "grayscale"}, (40, 20), "L"),
        ({"operation": "blur", "radius": 3}, (40, 20), "RGB"),
        ({"operation": "sharpen"}, (40, 20), "RGB"),
        ({"operation": "composite", "overlay": "logo.png", "x": 5, "y": 5}, (40, 20), "RGBA"),
        ({"operation": "blend", "overlay": "logo.png", "alpha": 0.5}, (40, 20), "RGBA"),
        ({"operation": "convert", "mode": "RGBA"}, (40, 20), "RGBA"),
    ],
)
def test_image_operations(run_bp, picture, params, size, mode):
    nodes = {
        "i": {"type": "image", "params": {"path": "in.png", "output_path": "out/o.png", **params}}
    }
    run = run_bp(nodes)
    assert run.status.value == "succeeded", run.summary()
    with Image.open(picture.parent / "out" / "o.png") as saved:
        assert saved.size == size
        assert saved.mode == mode


def test_image_quality_and_format_to_bytes(run_bp, picture):
    nodes = {
        "lo": {
            "type": "image",
            "params": {"operation": "quality", "path": "in.png", "format": "JPEG", "quality": 5},
        },
        "hi": {
            "type": "image",
            "params": {"operation": "quality", "path": "in.png", "format": "JPEG", "quality": 95},
        },
    }
    run = run_bp(nodes)
    low, high = run["lo"].outputs["bytes"], run["hi"].outputs["bytes"]
    assert Image.open(io.BytesIO(low)).format == "JPEG"
    assert len(low) < len(high)


def _notebook(path, *cells):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("factor = 1\nitems = []\ninput = None")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nbformat.write(nb, path)


@pytest.mark.notebook
def test_notebook_runs_with_parameters_and_records(run_bp, tmp_path):
    _notebook(
        tmp_path / "calc.ipynb",
        "import conductor_nb as cnb\ncnb.record('total', sum(items) * factor)",
        "cnb.record('n', len(input))",
    )
    nodes = {
        "nb": {
            "type": "notebook",
            "params": {
                "input": [1, 2],
                "path": "calc.ipynb",
                "output_path": "out/calc.out.ipynb",
                "parameters": {"factor": 3, "items": [1, 2, 3]},
            },
        }
    }
    run = run_bp(nodes)
    assert run.status.value == "succeeded", run.summary()
    assert run["nb"].outputs["records"] == {"total": 18, "n": 2}
    out = tmp_path / "out" / "calc.out.ipynb"
    assert run["nb"].outputs["output_path"] == str(out)
    assert read_records(nbformat.read(out, as_version=4)) == {"total": 18, "n": 2}


@pytest.mark.notebook
def test_failing_notebook_fails_the_node_with_the_cell_error(run_bp, tmp_path):
    _notebook(tmp_path / "bad.ipynb", "raise ValueError('broken on purpose')")
    run = run_bp({"nb": {"type": "notebook", "params": {"path": "bad.ipynb"}}})
    assert run.status.value == "failed"
    assert "ValueError: broken on purpose" in str(run["nb"].error)


def test_record_outside_a_kernel_returns_the_value_and_rejects_non_json():
    assert cnb.record("x", [1, 2]) == [1, 2]
    with pytest.raises(TypeError, match="JSON"):
        cnb.record("x", object())
    notebook = {"cells": [{"outputs": [{"data": {MIMETYPE: {"name": "a", "value": 1}}}]}]}
    assert read_records(notebook) == {"a": 1}
