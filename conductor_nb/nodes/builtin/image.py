"""``image``: edit an image with Pillow (imported lazily): resize, convert, composite,
blend, watermark, grayscale, blur, sharpen, and save with a quality.

``watermark`` scales the ``overlay`` image to ``scale`` of the image's width, fades
it to ``opacity`` and places it at ``position`` (``bottom-right``, ``center``...),
``margin`` pixels from the edges.

The image comes from ``path`` (or bytes on the input); the result is written to
``output_path`` (atomically, inside the allowed roots) or returned as bytes.
Output: ``{path, width, height, format, mode}`` (plus ``bytes`` when not saved).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

from conductor_nb._extras import require
from conductor_nb.model.types import Port
from conductor_nb.nodes.builtin._define import define, param
from conductor_nb.nodes.builtin.files import allowed_roots, atomic_write, confine

OPERATIONS = (
    "resize",
    "convert",
    "composite",
    "blend",
    "watermark",
    "grayscale",
    "blur",
    "sharpen",
    "quality",
)
POSITIONS = (
    "center",
    "top",
    "bottom",
    "left",
    "right",
    "top-left",
    "top-right",
    "bottom-left",
    "bottom-right",
)
FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".gif": "GIF",
    ".bmp": "BMP",
}


def _open(pil: Any, source: Any, roots: Any) -> Any:
    if isinstance(source, bytes | bytearray):
        return pil.open(io.BytesIO(source))
    if not source:
        raise ValueError("image needs a path (or image bytes on the input)")
    return pil.open(confine(str(source), roots))


def _resize(img: Any, width: int | None, height: int | None, keep_aspect: bool) -> Any:
    if not width and not height:
        raise ValueError("resize needs width and/or height")
    w, h = img.size
    if keep_aspect or not (width and height):
        scale = min((width or w * 10**6) / w, (height or h * 10**6) / h)
        return img.resize((max(1, round(w * scale)), max(1, round(h * scale))))
    return img.resize((int(width), int(height)))


def _overlay(pil: Any, img: Any, other: Any, opts: Mapping[str, Any]) -> Any:
    base = img.convert("RGBA")
    top = other.convert("RGBA")
    if opts["operation"] == "blend":
        return pil.blend(base, top.resize(base.size), float(opts["alpha"]))
    layer = pil.new("RGBA", base.size, (0, 0, 0, 0))
    # copied as is (no mask): alpha_composite applies the overlay's alpha, once
    layer.paste(top, (int(opts["x"]), int(opts["y"])))
    return pil.alpha_composite(base, layer)


def _watermark(pil: Any, img: Any, mark: Any, opts: Mapping[str, Any]) -> Any:
    """The overlay scaled to ``scale`` of the image's width, faded to ``opacity``, placed
    at ``position`` (``bottom-right``...) ``margin`` pixels from the edges."""
    base, top = img.convert("RGBA"), mark.convert("RGBA")
    scale = float(opts["scale"])
    if scale > 0:
        width = max(1, round(base.width * scale))
        top = top.resize((width, max(1, round(top.height * width / top.width))))
    opacity = float(opts["opacity"])
    if opacity < 1:
        top.putalpha(top.getchannel("A").point(lambda a: round(a * opacity)))
    layer = pil.new("RGBA", base.size, (0, 0, 0, 0))
    layer.paste(top, _place(base.size, top.size, str(opts["position"]), int(opts["margin"])))
    return pil.alpha_composite(base, layer)


def _place(
    size: tuple[int, int], mark: tuple[int, int], position: str, margin: int
) -> tuple[int, int]:
    (w, h), (mw, mh) = size, mark
    x = margin if "left" in position else w - mw - margin if "right" in position else (w - mw) // 2
    y = margin if "top" in position else h - mh - margin if "bottom" in position else (h - mh) // 2
    return x, y


def _apply(pil: Any, img: Any, opts: Mapping[str, Any], roots: Any) -> Any:
    op = opts["operation"]
    if op == "resize":
        return _resize(img, opts["width"], opts["height"], opts["keepAspect"])
    if op == "grayscale":
        return img.convert("L")
    if op in ("blur", "sharpen"):
        filters = require("PIL.ImageFilter", "image", "the image node")
        if op == "blur":
            return img.filter(filters.GaussianBlur(float(opts["radius"])))
        return img.filter(filters.SHARPEN)
    if op == "watermark":
        with _open(pil, opts["overlay"], roots) as mark:
            return _watermark(pil, img, mark, opts)
    if op in ("composite", "blend"):
        return _overlay(pil, img, _open(pil, opts["overlay"], roots), opts)
    if op == "convert" and opts["mode"]:
        return img.convert(opts["mode"])
    return img  # convert (format only) and quality: the work happens on save


def _save(img: Any, fmt: str, quality: int) -> bytes:
    if fmt == "JPEG" and img.mode not in ("RGB", "L"):
        img = img.convert("RGB")  # JPEG has no alpha channel
    buffer = io.BytesIO()
    options: dict[str, Any] = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def image(
    ctx: Any,
    input: Any = None,
    operation: str = "resize",
    path: str = "",
    output_path: str = "",
    format: str = "",
    width: int | None = None,
    height: int | None = None,
    keepAspect: bool = True,
    radius: float = 2.0,
    overlay: str = "",
    x: int = 0,
    y: int = 0,
    alpha: float = 0.5,
    mode: str = "",
    quality: int = 85,
    position: str = "bottom-right",
    opacity: float = 1.0,
    scale: float = 0.25,
    margin: int = 10,
) -> dict[str, Any]:
    """Apply one operation to an image and save it (or return its bytes)."""
    pil = require("PIL.Image", "image", "the image node")
    roots = allowed_roots(getattr(ctx, "settings", None))
    source = input if isinstance(input, bytes | bytearray) else path
    with _open(pil, source, roots) as img:
        img.load()
        opts: dict[str, Any] = {"operation": operation, "width": width, "height": height}
        opts.update(keepAspect=keepAspect, radius=radius, overlay=overlay, x=x, y=y)
        opts.update(alpha=alpha, mode=mode)
        opts.update(position=position, opacity=opacity, scale=scale, margin=margin)
        result = _apply(pil, img, opts, roots)
        source_format = img.format or "PNG"
    target = confine(output_path, roots) if output_path else None
    suffix_format = FORMATS.get(target.suffix.lower()) if target else None
    fmt = (format or suffix_format or source_format).upper().replace("JPG", "JPEG")
    data = _save(result, fmt, quality)
    info: dict[str, Any] = {
        "width": result.size[0],
        "height": result.size[1],
        "format": fmt,
        "mode": result.mode,
        "path": None,
    }
    if target is None:
        info["bytes"] = data
    else:
        target.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(target, data)
        info["path"] = str(target)
    return info


def _check(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    op = values.get("operation", "resize")
    problems = []
    if op == "resize" and not values.get("width") and not values.get("height"):
        problems.append(("width", "resize needs width and/or height"))
    if op in ("composite", "blend", "watermark") and not values.get("overlay"):
        problems.append(("overlay", f"{op} needs an overlay image path"))
    return problems


IMAGE = define(
    "image",
    image,
    category="media",
    description="Resize, convert, composite, blend, grayscale, blur or sharpen an image "
    "(Pillow) and save it with a format and quality.",
    outputs=[
        Port("path", type="str", description="the saved image"),
        Port("width", type="int"),
        Port("height", type="int"),
        Port("bytes", type="bytes", description="the image, when no output_path is given"),
    ],
    params=[
        param("operation", "str", "resize", "what to do", choices=OPERATIONS),
        param("path", "path", "", "the source image (else image bytes on the input)"),
        param("output_path", "path", "", "where to save (else bytes are output)"),
        param("format", "str", "", "output format, e.g. PNG, JPEG, WEBP (default: by suffix)"),
        param("width", "int", None, "resize: width in pixels", minimum=1),
        param("height", "int", None, "resize: height in pixels", minimum=1),
        param("keepAspect", "bool", True, "resize: keep the aspect ratio inside width x height"),
        param("radius", "float", 2.0, "blur: radius", minimum=0),
        param("overlay", "path", "", "composite/blend: the other image"),
        param("x", "int", 0, "composite: left offset"),
        param("y", "int", 0, "composite: top offset"),
        param("alpha", "float", 0.5, "blend: weight of the overlay", minimum=0, maximum=1),
        param("mode", "str", "", "convert: a Pillow mode such as RGB, L, RGBA"),
        param("quality", "int", 85, "JPEG/WEBP quality", minimum=1, maximum=100),
        param("position", "str", "bottom-right", "watermark: where", choices=POSITIONS),
        param("opacity", "float", 1.0, "watermark: opacity of the overlay", minimum=0, maximum=1),
        param(
            "scale", "float", 0.25, "watermark: overlay width / image width (0: as is)", minimum=0
        ),
        param("margin", "int", 10, "watermark: pixels from the edges", minimum=0),
    ],
    output_type="dict",
    example={
        "type": "image",
        "params": {
            "operation": "resize",
            "path": "in.png",
            "width": 128,
            "output_path": "out/thumb.png",
        },
    },
    validate=_check,
    takes_context=True,
    side_effects=True,
)

NODE_TYPES = [IMAGE]
