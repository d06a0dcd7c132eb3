"""BlueprintView: the graph widget that shows, edits, runs and steps through a blueprint.

State lives in synced traits built by :mod:`conductor_nb.widgets.state`; the
front end (``static/view.js``, bundled from ``js/src`` by ``scripts/build-view.sh``:
React Flow for the canvas, plain DOM around it) draws them and sends small
messages for what the user does (toolbar buttons, dragging, connecting, the
params form). The graph is sent once per edit; node states go as patches of
the nodes that changed (``state_patch``), and a page that opens mid-run asks
for a full one (the ``snapshot`` message).

Edits made in the view go through :mod:`conductor_nb.widgets.edits`, which records
them for undo/redo (Ctrl+Z / Ctrl+Shift+Z in the view, or the toolbar's buttons);
its docstring has the rules, including what an edit made from Python does to them.

Threads: runs live on the engine's background loop. Engine events reach the
view through a :class:`~conductor_nb.engine.coalesce.Coalescer` (at most
``MAX_FLUSHES`` trait updates a second, one comm message each), called on the
engine thread. Toolbar actions never block the kernel: stepping, retrying and
re-running are coroutines handed to the run's loop, their errors reported in
the view's error area. Errors in any callback are shown there too, never
swallowed.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import threading
import traceback
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anywidget
import traitlets

from conductor_nb.engine.api import launch, prepare
from conductor_nb.engine.coalesce import Coalescer
from conductor_nb.errors import BlueprintError
from conductor_nb.model.blueprint import plural
from conductor_nb.model.states import style_table
from conductor_nb.widgets import edits, state
from conductor_nb.widgets.edits import ConnectionRefused, HistoryError
from conductor_nb.widgets.picture import picture

if TYPE_CHECKING:
    from conductor_nb.engine.run import Run
    from conductor_nb.model.blueprint import Blueprint

STATIC = Path(__file__).parent / "static"
MAX_FLUSHES = 10.0
"""Trait updates per second from a live run (each is one comm message)."""


class BlueprintView(anywidget.AnyWidget):
    """The interactive graph of a blueprint, optionally bound to a run.

    >>> view = BlueprintView(bp)            # doctest: +SKIP
    >>> view.start_run(); view.step()       # the toolbar's buttons, from Python
    >>> view.connect("load", "clean.rows"); view.undo(); view.redo()  # doctest: +SKIP

    ``view.history`` holds the undo/redo stacks of edits made in this view; an edit to
    the blueprint made anywhere else (``bp.add`` in a cell) is not undoable here and
    clears the redo stack (see :mod:`conductor_nb.widgets.edits`).
    """

    _esm = STATIC / "view.js"
    _css = STATIC / "view.css"

    graph = traitlets.Dict().tag(sync=True)
    states = traitlets.Dict()
    """Every node's state, attempts and duration (Python side; the page gets ``state_patch``)."""
    state_patch = traitlets.Dict().tag(sync=True)
    """What the page gets of ``states``: ``{seq, full, nodes: {id: [state, attempts, duration]}}``,
    all nodes when ``full`` (attach, reset, a page asking for a snapshot), else only the nodes
    that changed since the last patch. A live 1,000-node run sends a few kB a message."""
    run_info = traitlets.Dict().tag(sync=True)
    breakpoints = traitlets.List(traitlets.Unicode()).tag(sync=True)
    selected = traitlets.Unicode("").tag(sync=True)
    inspector = traitlets.Dict().tag(sync=True)
    palette: traitlets.List[Any] = traitlets.List().tag(sync=True)
    error = traitlets.Unicode("").tag(sync=True)
    notice = traitlets.Unicode("").tag(sync=True)
    slow_motion = traitlets.Float(0.0).tag(sync=True)
    height = traitlets.Int(480).tag(sync=True)
    editable = traitlets.Bool(True).tag(sync=True)
    undo_state = traitlets.Dict().tag(sync=True)
    state_styles = traitlets.Dict().tag(sync=True)
    """How each state looks: :data:`conductor_nb.model.states.STATE_STYLES`, for the JS."""
    _front_key = traitlets.Unicode().tag(sync=True)
    """Names this widget to the front end, which keeps a view's zoom, selection and drafts
    under it when the notebook draws the view again (see ``_refresh_displays``)."""

    def __init__(
        self,
        blueprint: Blueprint,
        run: Run | None = None,
        *,
        breakpoints: Iterable[str] = (),
        slow_motion: float = 0.0,
        height: int = 480,
        editable: bool = True,
        params: Mapping[str, Any] | None = None,
        run_options: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            breakpoints=list(breakpoints),
            slow_motion=slow_motion,
            height=height,
            editable=editable,
            state_styles=style_table(),
            _front_key=uuid.uuid4().hex,
        )
        self.blueprint = blueprint
        self.run: Run | None = None
        self.params = dict(params or {})
        self.run_options = dict(run_options or {})
        self.flushes = 0
        self._lock = threading.RLock()
        self._unsubscribe: Callable[[], None] | None = None
        self._coalescer: Coalescer | None = None
        self._pending: list[concurrent.futures.Future[Any]] = []
        self._display_handles: list[Any] = []
        self.history = edits.History()
        self._editing = 0
        self._stop_listening = blueprint.on_change(self._on_blueprint_edit)
        self._patch_seq = 0
        self.graph = state.graph_payload(blueprint)
        self.palette = state.palette(blueprint)
        self.run_info = state.run_info(None)
        self.undo_state = self.history.summary()
        self.on_msg(self._on_message)
        self.observe(self._on_selection, names=["selected"])
        self.observe(self._on_breakpoints, names=["breakpoints"])
        if run is not None:
            self.attach(run)

    def __repr__(self) -> str:
        status = self.run.status.value if self.run is not None else "no run"
        nodes = plural(len(self.blueprint.nodes), "node")
        return f"<BlueprintView {self.blueprint.id!r} ({nodes}, {status})>"

    # ------------------------------------------------------------ static picture
    def to_svg(self) -> str:
        states, details = state.svg_states(self.run)
        return picture(self.blueprint, states, details)

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]] | None:
        result = super()._repr_mimebundle_(**kwargs)
        if result is None:
            return None
        data, metadata = result if isinstance(result, tuple) else (result, {})
        data = dict(data)
        try:
            data["image/svg+xml"] = self.to_svg()
        except Exception as exc:  # a picture must never break display
            data["text/plain"] = f"{data.get('text/plain', '')}\n(no picture: {exc})"
        return data, dict(metadata)

    def _ipython_display_(self) -> None:
        """Display with a display id, so the static picture can be updated when a run ends:
        a saved or papermill-run notebook then shows the final states, not the first ones."""
        from IPython.display import display

        bundle = self._repr_mimebundle_()
        if bundle is None:
            return
        data, metadata = bundle
        handle = display(data, metadata=metadata, raw=True, display_id=True)
        if handle is not None:
            self._display_handles.append(handle)

    def _refresh_displays(self) -> None:
        """Re-send the picture to every place this view is displayed (end of a run, a pause)."""
        if not self._display_handles:
            return
        bundle = self._repr_mimebundle_()
        if bundle is None:
            return
        data, metadata = bundle
        for handle in list(self._display_handles):
            try:
                handle.update(data, metadata=metadata, raw=True)
            except Exception:  # the kernel may be gone; the picture is a courtesy
                self._display_handles.remove(handle)

    # ------------------------------------------------------------ errors
    def _show_error(self, exc: BaseException, action: str = "") -> None:
        where = f"{action}: " if action else ""
        if isinstance(exc, BlueprintError | ConnectionRefused | HistoryError | KeyError):
            text = f"{where}{exc.args[0] if isinstance(exc, KeyError) and exc.args else exc}"
        else:
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__, limit=6))
            text = f"{where}{type(exc).__name__}: {exc}\n{tb}"
        run = self.run
        self.error = run.redact(text) if run is not None else text  # the run's secrets masked

    def _guarded(self, action: str, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as exc:
            self._show_error(exc, action)
            return None

    # ------------------------------------------------------------ run binding
    def attach(self, run: Run) -> None:
        """Show ``run``'s states live (events coalesced) and drive it from the toolbar."""
        self._detach()
        self.run = run
        coalescer = Coalescer(lambda changes: self._flush(run, changes), max_rate=MAX_FLUSHES)
        self._coalescer = coalescer
        self._unsubscribe = run.subscribe(coalescer)
        # only the view's breakpoints the run lacks: adding one again would re-arm it, and a
        # run started with it may already be paused there (resuming would stop there again)
        for node_id in self.breakpoints:
            if node_id in run.plan.nodes and node_id not in run.breakpoints:
                run.add_breakpoint(node_id)
        with self._lock, self.hold_sync():
            self._set_states(state.states_payload(run), full=True)
            self.run_info = state.run_info(run)
            self.inspector = state.inspector_payload(self.blueprint, self.selected, run)

    def _set_states(self, changed: Mapping[str, Any], *, full: bool = False) -> None:
        """Update ``states`` and send the page only what changed (everything when ``full``)."""
        if full:
            self.states = dict(changed)
        else:
            changed = {n: s for n, s in changed.items() if self.states.get(n) != s}
            if not changed:
                return
            self.states = {**self.states, **changed}
        self._patch_seq += 1
        self.state_patch = {
            "seq": self._patch_seq,
            "full": full,
            "nodes": state.wire_states(changed),
        }

    def _send_snapshot(self) -> None:
        """A page that (re)opens mid-run asks for every state: it missed the earlier patches."""
        with self._lock:
            self._set_states(self.states, full=True)

    def _detach(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
        self._unsubscribe = None
        self._coalescer = None

    def _flush(self, run: Run, changes: Mapping[str, Any]) -> None:
        """Coalesced engine changes -> one trait update (called on the engine thread)."""
        if run is not self.run:
            return
        try:
            nodes = changes.get("nodes") or {}
            with self._lock, self.hold_sync():
                if nodes:
                    self._set_states(state.states_payload(run, nodes))
                self.run_info = state.run_info(run)
                if self.selected and (self.selected in nodes or changes.get("run")):
                    self.inspector = state.inspector_payload(self.blueprint, self.selected, run)
            self.flushes += 1
            # the static picture follows the end of the run (a saved notebook shows it); not
            # each pause: re-sending it makes the page draw the whole view again at every Step
            if run.is_finished:
                self._refresh_displays()
        except Exception as exc:  # the bus would detach us silently: show it instead
            self._show_error(exc, "updating the view")

    def _is_live(self) -> bool:
        return self.run is not None and not self.run.is_finished

    def _start(self, paused: bool) -> Run:
        options: dict[str, Any] = {
            **self.run_options,
            "breakpoints": [b for b in self.breakpoints if b in self.blueprint.nodes],
        }
        if self.slow_motion:
            options["slow_motion"] = self.slow_motion
        if paused:
            options["paused"] = True
        run = prepare(self.blueprint, self.params or None, options)
        self.error = ""
        self.attach(run)  # before it starts: a quick run would be over before the view saw it
        return launch(run)

    def _submit(self, action: str, coro: Coroutine[Any, Any, Any]) -> None:
        """Run ``coro`` on the run's loop without waiting; errors go to the error area."""
        from conductor_nb.engine.api import EngineLoop

        loop = getattr(self.run, "_loop", None) or EngineLoop.get()
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        self._pending.append(future)

        def done(fut: concurrent.futures.Future[Any]) -> None:
            if fut in self._pending:
                self._pending.remove(fut)
            exc = None if fut.cancelled() else fut.exception()
            if exc is not None:
                self._show_error(exc, action)
            self._refresh_run_info()

        future.add_done_callback(done)

    def _refresh_run_info(self) -> None:
        run = self.run
        if run is None:
            return
        with self._lock, self.hold_sync():
            self._set_states(state.states_payload(run))
            self.run_info = state.run_info(run)
            self.inspector = state.inspector_payload(self.blueprint, self.selected, run)

    def wait_actions(self, timeout: float | None = 30) -> None:
        """Wait for the toolbar actions still in flight (step, retry, rerun): for scripts/tests."""
        for future in list(self._pending):
            try:
                future.result(timeout)
            except Exception:  # shown in the error area by the done callback
                pass
        self._refresh_run_info()

    # ------------------------------------------------------------ toolbar (public)
    def start_run(self) -> Run:
        """Run: start in the background (or resume a paused run)."""
        if self._is_live() and self.run is not None:
            if self.run.is_paused:
                self.run.resume()
            return self.run
        return self._start(paused=False)

    def step(self) -> None:
        """Step: run exactly one more node, then pause (starts a paused run if needed)."""
        run = self.run if self._is_live() else self._start(paused=True)
        assert run is not None
        self._submit("step", run.astep())

    def pause(self) -> None:
        if self.run is not None:
            self.run.pause()

    def resume(self) -> None:
        if self.run is not None:
            self.run.resume()

    def stop(self) -> None:
        if self.run is not None:
            self.run.cancel()

    def reset(self) -> None:
        """Forget the run (cancelling it if live): the graph goes back to its plain colours."""
        if self._is_live() and self.run is not None:
            self.run.cancel()
        self._detach()
        self.run = None
        with self._lock, self.hold_sync():
            self._set_states({}, full=True)
            self.run_info = state.run_info(None)
            self.error = ""
            self.inspector = state.inspector_payload(self.blueprint, self.selected, None)

    def toggle_breakpoint(self, node_id: str) -> bool:
        """Set or clear a breakpoint before ``node_id``; True when it is now set."""
        if node_id not in self.blueprint.nodes:
            raise KeyError(f"no node {node_id!r}")
        on = node_id not in self.breakpoints
        self.breakpoints = (
            [*self.breakpoints, node_id] if on else [b for b in self.breakpoints if b != node_id]
        )
        return on

    def retry(self, node_id: str) -> None:
        """Re-run a failed node with its function's current definition, then continue."""
        if self.run is None:
            raise KeyError(f"no run yet: nothing to retry for {node_id!r}")
        self._submit(f"retry {node_id}", self.run.aretry(node_id))

    def rerun(self, node_id: str, inputs: Mapping[str, Any] | None = None) -> None:
        """Run one node again with ``inputs`` (or its recorded ones)."""
        if self.run is None:
            raise KeyError(f"no run yet: nothing to re-run for {node_id!r}")
        self._submit(f"rerun {node_id}", self.run.arerun(node_id, inputs))

    # ------------------------------------------------------------ editing (public)
    def connect(self, source: str, target: str) -> None:
        """Add an edge, refusing (ConnectionRefused) one that would make the blueprint invalid."""
        with self._own_edit():
            edge = edits.checked_connect(self.blueprint, source, target)
        self._record(edits.Connected(edge))

    def disconnect(self, source: str, target: str) -> None:
        """Remove an edge (``"node.port"`` ends, as for ``connect``)."""
        before = list(self.blueprint.edges)
        with self._own_edit():
            self.blueprint.disconnect(source, target)
        after = set(self.blueprint.edges)
        for edge in (e for e in before if e not in after):
            self._record(edits.Disconnected(edge))

    def move(self, node_id: str, x: float, y: float) -> None:
        old = self._node(node_id).position
        new = (round(float(x), 1), round(float(y), 1))
        if old is None or tuple(old) != new:
            self._do(edits.NodeMoved(node_id, old, new))

    def add_node(self, type_name: str, x: float | None = None, y: float | None = None) -> str:
        position = None if x is None or y is None else (round(float(x)), round(float(y)))
        with self._own_edit():
            node = self.blueprint.add(type_name, position=position)
        self._record(edits.NodeAdded(edits.NodeSnapshot.of(self.blueprint, node.id)))
        self.selected = node.id
        return node.id

    def remove_node(self, node_id: str) -> None:
        """Delete a node with its edges (undo puts all of it back)."""
        self._do(edits.NodeRemoved(edits.NodeSnapshot.of(self.blueprint, node_id)))

    def set_param(self, node_id: str, name: str, text: Any) -> None:
        """Set a param (or unconnected input) from the form's text; empty text removes it."""
        node = self._node(node_id)
        node_type = self.blueprint.node_type(node_id)
        field = node_type.param(name) or node_type.input(name)
        type_name = field.type if field is not None else "any"
        try:
            value = state.coerce_value(type_name, text)
        except ValueError as exc:
            raise ValueError(f"nodes.{node_id}.params.{name}: {exc}") from None
        old = edits.param_value(node, name)
        new = edits.ABSENT if value is None else value
        if not edits.is_same_value(old, new):
            self._do(edits.ParamChanged(node_id, name, old, new))

    def undo(self) -> str | None:
        """Undo the newest edit made in this view; what was undone, or None when nothing was."""
        return self._travel(self.history.undo, "undone")

    def redo(self) -> str | None:
        """Redo the newest undone edit; what was redone, or None when nothing was."""
        return self._travel(self.history.redo, "redone")

    # ------------------------------------------------------------ editing (plumbing)
    def _node(self, node_id: str) -> Any:
        if node_id not in self.blueprint.nodes:
            raise KeyError(f"no node {node_id!r}")
        return self.blueprint.nodes[node_id]

    @contextlib.contextmanager
    def _own_edit(self) -> Iterator[None]:
        """Blueprint changes made inside are this view's (see ``_on_blueprint_edit``)."""
        self._editing += 1
        try:
            yield
        finally:
            self._editing -= 1

    def _do(self, edit: edits.Edit) -> None:
        with self._own_edit():
            edit.apply(self.blueprint)
        self._record(edit)

    def _record(self, edit: edits.Edit) -> None:
        self.history.record(edit)
        with self.hold_sync():
            self.undo_state = self.history.summary()
            self.notice = edits.past(edit.label)
            self.error = ""  # an edit went through: an older error no longer describes the view

    def _travel(self, step: Callable[[Blueprint], edits.Edit | None], done: str) -> str | None:
        """Undo or redo one step; the blueprint's change events arrive as one sync message."""
        try:
            with self._own_edit(), self.hold_sync():
                edit = step(self.blueprint)
        finally:
            self.undo_state = self.history.summary()
        if edit is None:
            return None
        with self.hold_sync():
            if edit.focus in self.blueprint.nodes:
                self.selected = edit.focus
            self.notice = f"{done}: {edit.label}"
            self.error = ""
        return edit.label

    # ------------------------------------------------------------ messages from the page
    def _on_message(self, _widget: Any, content: Any, _buffers: Any) -> None:
        if not isinstance(content, dict):
            return
        action = str(content.get("event", ""))
        handler = self._handlers().get(action)
        if handler is None:
            self.error = f"unknown view message {action!r}"
            return
        self._guarded(action.replace("_", " "), lambda: handler(content))

    def _handlers(self) -> dict[str, Callable[[dict[str, Any]], Any]]:
        return {
            "snapshot": lambda m: self._send_snapshot(),
            "run": lambda m: self.start_run(),
            "step": lambda m: self.step(),
            "pause": lambda m: self.pause(),
            "resume": lambda m: self.resume(),
            "stop": lambda m: self.stop(),
            "reset": lambda m: self.reset(),
            "toggle_breakpoint": lambda m: self.toggle_breakpoint(m["node"]),
            "move": lambda m: self.move(m["node"], m["x"], m["y"]),
            "connect": lambda m: self.connect(m["source"], m["target"]),
            "disconnect": lambda m: self._disconnect(m["edge"]),
            "remove": lambda m: self.remove_node(m["node"]),
            "undo": lambda m: self.undo(),
            "redo": lambda m: self.redo(),
            "add": lambda m: self.add_node(m["type"], m.get("x"), m.get("y")),
            "set_param": lambda m: self.set_param(m["node"], m["name"], m.get("value")),
            "retry": lambda m: self.retry(m["node"]),
            "rerun": lambda m: self.rerun(m["node"], _parse_inputs(m.get("inputs"))),
        }

    def _disconnect(self, edge_text: str) -> None:
        source, _, target = edge_text.partition("->")
        self.disconnect(source.strip(), target.strip())

    # ------------------------------------------------------------ observers
    def _on_blueprint_edit(self, bp: Blueprint) -> None:
        def update() -> None:
            with self._lock, self.hold_sync():
                if not self._editing:  # edited from Python or another view
                    self.history.outside_edit()
                    self.undo_state = self.history.summary()
                self.graph = state.graph_payload(bp)
                self.palette = state.palette(bp)
                if self.selected and self.selected not in bp.nodes:
                    self.selected = ""
                self.breakpoints = [b for b in self.breakpoints if b in bp.nodes]
                self.inspector = state.inspector_payload(bp, self.selected, self.run)

        self._guarded("showing the edited blueprint", update)

    def _on_selection(self, change: Any) -> None:
        self._guarded(
            "inspecting",
            lambda: setattr(
                self, "inspector", state.inspector_payload(self.blueprint, change["new"], self.run)
            ),
        )

    def _on_breakpoints(self, change: Any) -> None:
        run = self.run
        if run is None or run.is_finished:
            return
        old, new = set(change["old"]), set(change["new"])

        def apply() -> None:
            for node_id in new - old:
                if node_id in run.plan.nodes:
                    run.add_breakpoint(node_id)
            for node_id in old - new:
                run.remove_breakpoint(node_id)

        self._guarded("breakpoint", apply)


def _parse_inputs(text: Any) -> dict[str, Any] | None:
    if text is None or (isinstance(text, str) and not text.strip()):
        return None
    if isinstance(text, dict):
        return text
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"the inputs are not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ValueError('the inputs must be a JSON object: {"port": value, ...}')
    return value


def view_run(run: Run, **options: Any) -> BlueprintView:
    """``run.view()``: the graph bound to a live or finished run."""
    return BlueprintView(run.blueprint, run=run, **options)


def widget_mimebundle(bp: Blueprint) -> dict[str, Any] | None:
    """What ``display(bp)`` shows in a live kernel: a fresh view (None: SVG only)."""
    try:
        result = BlueprintView(bp)._repr_mimebundle_()
    except Exception:  # no comm (plain IPython) or a broken front end: the SVG stays
        return None
    return None if result is None else result[0]
