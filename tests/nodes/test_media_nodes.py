"""image (Pillow) and notebook (a real papermill run)."""

from __future__ import annotations

import io

import nbformat
import pytest
from PIL import Image, ImageDraw

import conductor_nb as cnb
from conductor_nb.nodes.record import MIMETYPE, read_records
from tests.nodes.conftest import write_notebook

RED = (200, 10, 10)
BLUE, GREEN = (0, 0, 255, 255), (0, 255, 0, 255)
HALF_WHITE = (255, 255, 255, 128)  # white at alpha 128 of 255
DARK, LIGHT = (60, 60, 60), (180, 180, 180)


@pytest.fixture
def picture(tmp_path):
    """in.png: 40x20 plain red. logo.png: 10x10, columns 0-4 opaque blue, 5-9 half-
    transparent white. stripes.png: 10x10, columns 0-4 blue, 5-9 green, both opaque.
    edge.png: 40x20, columns 0-19 dark grey, 20-39 light grey (a sharp vertical edge)."""
    Image.new("RGB", (40, 20), RED).save(tmp_path / "in.png")
    logo = Image.new("RGBA", (10, 10), HALF_WHITE)
    ImageDraw.Draw(logo).rectangle((0, 0, 4, 9), fill=BLUE)
    logo.save(tmp_path / "logo.png")
    stripes = Image.new("RGBA", (10, 10), GREEN)
    ImageDraw.Draw(stripes).rectangle((0, 0, 4, 9), fill=BLUE)
    stripes.save(tmp_path / "stripes.png")
    edge = Image.new("RGB", (40, 20), DARK)
    ImageDraw.Draw(edge).rectangle((20, 0, 39, 19), fill=LIGHT)
    edge.save(tmp_path / "edge.png")
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


def _images(run_bp, folder, **nodes):
    """Run one image node per keyword (its params), saved to out/<name>.png; the saved
    images by name."""
    doc = {
        name: {"type": "image", "params": {"output_path": f"out/{name}.png", **params}}
        for name, params in nodes.items()
    }
    run = run_bp(doc)
    assert run.status.value == "succeeded", run.summary()
    saved = {}
    for name in nodes:
        with Image.open(folder / "out" / f"{name}.png") as image:
            saved[name] = image.copy()
    return saved


def _grey_row(image, y=10):
    """The grey level of each pixel of row y (the edge image keeps r == g == b)."""
    row = [image.getpixel((x, y)) for x in range(image.width)]
    assert all(r == g == b for r, g, b in row)
    return [r for r, _, _ in row]


def _close(found, expected, tolerance=1):
    assert len(found) == len(expected), (found, expected)
    assert all(abs(f - e) <= tolerance for f, e in zip(found, expected, strict=True)), (
        found,
        expected,
    )


def _weighted(below, above, alpha):
    return tuple(round((1 - alpha) * b + alpha * a) for b, a in zip(below, above, strict=True))


def test_blur_softens_an_edge_by_its_radius_and_sharpen_steepens_it(run_bp, picture):
    out = _images(
        run_bp,
        picture.parent,
        blur={"operation": "blur", "path": "edge.png", "radius": 3},
        slight={"operation": "blur", "path": "edge.png", "radius": 1},
        sharp={"operation": "sharpen", "path": "edge.png"},
    )
    with Image.open(picture.parent / "edge.png") as edge:
        original = _grey_row(edge)
    assert (original[19], original[20]) == (60, 180)  # a step of 120 between columns 19, 20

    blurred = _grey_row(out["blur"])
    assert 60 < blurred[19] < blurred[20] < 180  # both sides pulled toward each other
    assert blurred[20] - blurred[19] < 60  # the step is less than half as steep
    assert (blurred[0], blurred[39]) == (60, 180)  # far from the edge nothing changes
    slight = _grey_row(out["slight"])
    assert blurred[20] - blurred[19] < slight[20] - slight[19] < 120  # radius 3 blurs more

    sharpened = _grey_row(out["sharp"])
    assert sharpened[19] < 60 and sharpened[20] > 180  # overshoot: a steeper step
    assert (sharpened[5], sharpened[34]) == (60, 180)  # flat areas are left alone


def test_composite_places_the_overlay_at_x_y_with_its_transparency(run_bp, picture):
    out = _images(
        run_bp,
        picture.parent,
        c={"operation": "composite", "path": "in.png", "overlay": "logo.png", "x": 5, "y": 5},
    )["c"]
    assert out.size == (40, 20)
    for outside in [(0, 0), (4, 5), (5, 4), (15, 5), (5, 15), (39, 19)]:
        assert out.getpixel(outside) == (*RED, 255), outside
    for opaque in [(5, 5), (9, 14)]:  # logo columns 0-4 cover image columns 5-9, rows 5-14
        assert out.getpixel(opaque) == BLUE, opaque
    # white at alpha 128/255 over red, applied once: ~ (228, 133, 133), fully opaque
    mixed = (*_weighted(RED, HALF_WHITE[:3], 128 / 255), 255)
    for half in [(10, 5), (14, 14)]:
        _close(out.getpixel(half), mixed)


def test_blend_stretches_the_overlay_and_weights_it_by_alpha(run_bp, picture):
    out = _images(
        run_bp,
        picture.parent,
        b={"operation": "blend", "path": "in.png", "overlay": "stripes.png", "alpha": 0.25},
    )["b"]
    # stripes.png stretched to 40x20: blue on the left half, green on the right half;
    # each pixel is 3/4 of the picture and 1/4 of the overlay
    for x in (0, 2, 15):
        _close(out.getpixel((x, 10)), _weighted((*RED, 255), BLUE, 0.25))
    for x in (25, 37, 39):
        _close(out.getpixel((x, 10)), _weighted((*RED, 255), GREEN, 0.25))


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


NOTEBOOK_PARAMETERS = "factor = 1\nitems = []\ninput = None"


@pytest.mark.notebook
def test_notebook_runs_with_parameters_and_records(run_bp, tmp_path):
    write_notebook(
        tmp_path / "calc.ipynb",
        NOTEBOOK_PARAMETERS,
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
    write_notebook(
        tmp_path / "bad.ipynb", NOTEBOOK_PARAMETERS, "raise ValueError('broken on purpose')"
    )
    run = run_bp({"nb": {"type": "notebook", "params": {"path": "bad.ipynb"}}})
    assert run.status.value == "failed"
    assert "ValueError: broken on purpose" in str(run["nb"].error)


def test_record_outside_a_kernel_returns_the_value_and_rejects_non_json():
    assert cnb.record("x", [1, 2]) == [1, 2]
    with pytest.raises(TypeError, match="JSON"):
        cnb.record("x", object())
    notebook = {"cells": [{"outputs": [{"data": {MIMETYPE: {"name": "a", "value": 1}}}]}]}
    assert read_records(notebook) == {"a": 1}
