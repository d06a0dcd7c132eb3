"""Options for the Jupyter kernels papermill starts for headless notebook runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

QUIET = ["--IPKernelApp.log_level=ERROR"]


def quiet_kernel(notebook_path: str | Path, kernel_name: str | None = None) -> dict[str, Any]:
    """papermill engine options that keep a Python kernel's start-up log below errors.

    ipykernel 7 warns at every start that a local TCP kernel is not encrypted; in a
    headless run that lands in the caller's terminal or cell and says nothing about the
    run. Other kernels (R, Julia...) get no extra arguments: they need not accept them.
    """
    if kernel_name:
        return {"extra_arguments": QUIET} if kernel_name.startswith("python") else {}
    try:
        metadata = json.loads(Path(notebook_path).read_text("utf-8")).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        return {}
    spec = metadata.get("kernelspec") or {}
    language = spec.get("language") or (metadata.get("language_info") or {}).get("name", "")
    is_python = language == "python" or str(spec.get("name", "")).startswith("python")
    return {"extra_arguments": QUIET} if is_python else {}
