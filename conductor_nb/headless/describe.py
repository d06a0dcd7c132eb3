"""Text (and JSON) descriptions of node types for ``conductor-nb nodes [TYPE]``."""

from __future__ import annotations

import json
from typing import Any

from conductor_nb.model.types import NodeType, Registry


def list_types(registry: Registry, *, as_json: bool = False) -> str:
    """One line per registered type: name, version, category and the first line of its doc."""
    types = list(registry)
    if as_json:
        rows = [
            {
                "name": t.name,
                "version": t.version,
                "category": t.category,
                "description": _first(t.description),
            }
            for t in types
        ]
        return json.dumps(rows, indent=2) + "\n"
    if not types:
        return "no node types are registered (use --import MODULE for your own)\n"
    width = max(len(t.name) for t in types)
    lines = [
        f"{t.name:<{width}}  v{t.version:<3} {t.category:<12} {_first(t.description)}".rstrip()
        for t in types
    ]
    return "\n".join(lines) + "\n"


def describe_type(node_type: NodeType, *, as_json: bool = False) -> str:
    info = node_type.describe()
    if as_json:
        return json.dumps(info, indent=2, default=repr) + "\n"
    lines = [f"{info['name']} (version {info['version']}, {info['category']})"]
    if info["description"]:
        lines += ["", *("  " + line for line in str(info["description"]).strip().splitlines())]
    lines += _section("inputs", info["inputs"])
    lines += _section("outputs", info["outputs"])
    lines += _section("params", info["params"])
    if info["examples"]:
        lines += ["", "example:"]
        for example in info["examples"]:
            text = example if isinstance(example, str) else _yaml(example)
            lines += ["  " + line for line in text.rstrip().splitlines()]
    else:
        lines += ["", "example:", *("  " + line for line in _example(node_type).splitlines())]
    return "\n".join(lines) + "\n"


def _section(title: str, items: list[dict[str, Any]]) -> list[str]:
    if not items:
        return ["", f"{title}: none"]
    lines = ["", f"{title}:"]
    for item in items:
        flags = []
        if item.get("required"):
            flags.append("required")
        if "default" in item:
            flags.append(f"default {item['default']!r}")
        if item.get("many"):
            flags.append("many")
        if item.get("choices"):
            flags.append("one of " + ", ".join(map(repr, item["choices"])))
        extra = f" ({', '.join(flags)})" if flags else ""
        desc = f"  {item['description']}" if item.get("description") else ""
        lines.append(f"  {item['name']}: {item['type']}{extra}{desc}")
    return lines


def _example(node_type: NodeType) -> str:
    """A YAML node entry using the type, with its required values as placeholders."""
    params: dict[str, Any] = {}
    for field in node_type.params:
        if field.required:
            params[field.name] = f"<{field.type}>"
    for port in node_type.inputs:
        if port.required:
            params[port.name] = f"<{port.type}>"
    node: dict[str, Any] = {"type": node_type.name}
    if params:
        node["params"] = params
    return _yaml({"nodes": {"my_node": node}})


def _yaml(data: Any) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False).rstrip()


def _first(text: str | None) -> str:
    return (text or "").strip().splitlines()[0] if (text or "").strip() else ""
