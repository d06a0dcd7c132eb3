"""Third-party node packages register through the ``conductor_nb.nodes`` entry-point group."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _python_with(site, code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that sees the distributions installed in ``site``."""
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"},
        check=False,
    )


def test_entry_point_plugins_load_lazily_on_first_lookup(tmp_path) -> None:
    site = tmp_path / "site"
    pkg = site / "cnb_demo_plugin"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(
        textwrap.dedent(
            """
            import conductor_nb as cnb
            LOADED = True

            @cnb.node(name="shout", category="text")
            def shout(text: str) -> str:
                return text.upper() + "!"
            """
        )
    )
    dist = site / "cnb_demo_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: cnb-demo-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[conductor_nb.nodes]\ndemo = cnb_demo_plugin\n")
    code = textwrap.dedent(
        """
        import sys
        import conductor_nb as cnb
        assert "cnb_demo_plugin" not in sys.modules      # nothing loads at import time
        bp = cnb.Blueprint("p")
        bp.add("shout", id="s", text="hi")                # first lookup loads plugins
        print(bp.run(history=False)["s"].output)
        """
    )
    out = _python_with(site, code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "HI!"


def test_a_broken_plugin_is_logged_not_fatal(tmp_path) -> None:
    site = tmp_path / "site"
    dist = site / "broken_plugin-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[conductor_nb.nodes]\nbroken = no_such_module\n")
    code = "import conductor_nb as cnb; print(len(cnb.registry.names()) > 0)"
    out = _python_with(site, code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
    assert "could not load node plugin 'broken'" in out.stderr
