"""Fault soak: many CLI runs of a mixed blueprint, hit by failures, timeouts, cancels and
SIGKILLs of the runner, each followed by ``conductor-nb runs resume`` until it succeeds.

    python bench/soak.py                 # 200 runs (the default)
    python bench/soak.py --runs 20       # a quicker pass
    python bench/soak.py --seed 3        # another sequence of faults

The blueprint mixes shell-command children (each side effect is one line appended
by a child process, after a random sleep), a function node, a transform, a delay and
a file write. Per run the soak picks one fault: none, a random node failure (the
child exits 1 before its effect), a node timeout (the child sleeps past it), a cancel
(SIGINT to the CLI) or a SIGKILL of the CLI process alone, at a random moment. The
run is then resumed (without faults) until it succeeds.

It prints what it did and what it found; every "found" count must be 0:
orphans (children alive after their runner died), nodes not in exactly one terminal
state (in any recorded run), side effects repeated (within or beyond the window below),
side effects missing, temp files left (``.*.tmp`` of atomic writes, in the project) and
completion records left (each is dropped once its node's outcome is committed).

Side effects. ``shell-command`` declares side effects, so its success is committed before
the run goes on; a kill (or cancel) may still land between a child's effect and that
commit. Each child runs under the runner's supervisor, which records the child's end on
disk, and ``runs resume`` finishes such a node from that record instead of running the
child again: no effect may repeat. Each child's effect is its last act (it prints its
output first, then appends its effect line with the time, then exits at once). The soak
counts the hits that landed inside that window (the effect came before the hit runner had
ended and the node's success was not committed in the run as the runner left it) and
every repeated effect, classified *within the window* (a repeat of such a node) or
*beyond* (any other): both must be 0. It also prints the measured window, from each
effect to its node's recorded finish, over all successful nodes. A kill that lands
after a child's effect but before the child has exited (microseconds here: the effect is
the last act) kills the child with its runner; that child's end is not a completion, so
the resume runs it again and the repeat is counted within the window.

Not a unit test, and it times nothing: the machine's load only changes how long it
takes. The whole soak runs in a temporary folder with its own CONDUCTOR_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import psutil

CLI = [sys.executable, "-m", "conductor_nb.headless.cli"]
MARK = "cnb-soak-child"  # in every child's command line, to find orphans
TERMINAL = {"succeeded", "failed", "skipped", "cancelled", "cached"}
FAULTS = ("none", "fail", "timeout", "cancel", "kill", "kill")

CHILD = textwrap.dedent("""
    import os, sys, time
    from pathlib import Path

    mark, node, chain, sleep, fault = sys.argv[1:6]
    once = Path("faults") / (chain + "-" + node)  # a fault strikes once; resumes go through
    if fault != "none" and not once.exists():
        once.touch()
        if fault == "fail":
            sys.exit("soak: injected failure in " + node)
        sleep = "30"  # past the node's timeout
    time.sleep(float(sleep))
    print(node, "done", flush=True)  # the output first: the effect is the child's last act
    with open(Path("effects") / (chain + ".txt"), "a") as fh:
        fh.write(node + " " + repr(time.time()) + "\\n")
    os._exit(0)
""")

NODES = textwrap.dedent("""
    import conductor_nb as cnb

    @cnb.node(name="soak_sum")
    def soak_sum(a: str, b: str) -> int:
        return len(a) + len(b)
""")


def blueprint() -> str:
    def child(node: str, upstream: str | None = None) -> str:
        args = [
            "child.py",
            MARK,
            node,
            "{{ params.chain }}",
            f"{{{{ params.sleep_{node} }}}}",
            f"{{{{ params.fault_{node} }}}}",
        ]
        return (
            f"  {node}:\n    type: shell-command\n"
            f"    params: {{program: {json.dumps(sys.executable)}, args: {json.dumps(args)}}}\n"
        )

    params = ["  chain: {default: c0}"]
    for node in ("a", "b", "c", "d"):
        params += [f"  sleep_{node}: {{default: 0.0}}", f"  fault_{node}: {{default: none}}"]
    return (
        "conductor: 1\nid: soak\nparams:\n"
        + "\n".join(params)
        + "\nnodes:\n"
        + child("a")
        + child("b")
        + child("c")
        + "    timeout: 3\n"
        + child("d")
        + "  total: {type: soak_sum}\n"
        + "  pause: {type: delay, params: {seconds: 0.05}}\n"
        + "  shout:\n    type: transform\n"
        + '    params: {operation: map, expression: "item | upper", input: [x, y]}\n'
        + "  write:\n    type: file-system\n"
        + "    params: {operation: write, path: 'out/{{ params.chain }}.txt',"
        + " content: '{{ inputs.input }}'}\n"
        + "edges:\n"
        + "  - a.stdout -> b.input\n  - a.stdout -> c.input\n"
        + "  - b.stdout -> total.a\n  - c.stdout -> total.b\n"
        + "  - total.output -> pause.input\n  - pause.output -> d.input\n"
        + "  - d.stdout -> write.input\n"
    )


class Soak:
    def __init__(self, work: Path, seed: int) -> None:
        self.work = work
        self.rng = random.Random(seed)
        self.env = dict(os.environ, CONDUCTOR_HOME=str(work / "home"), PYTHONPATH=str(work))
        self.counts: Counter[str] = Counter()
        self.found: Counter[str] = Counter()
        self.gaps: list[float] = []  # effect -> kill, for effects repeated within the window
        self.lags: list[float] = []  # effect -> recorded finish, for nodes that succeeded

    def setup(self) -> None:
        (self.work / "effects").mkdir()
        (self.work / "faults").mkdir()
        (self.work / "child.py").write_text(CHILD)
        (self.work / "soak_nodes.py").write_text(NODES)
        (self.work / "bp.yaml").write_text(blueprint())

    def cli(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*CLI, *args, "--import", "soak_nodes", "--progress", "none", "-q", "--json"],
            cwd=self.work,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # a SIGKILL below reaches the runner alone
        )

    def one(self, index: int) -> None:
        chain = f"c{index}"
        fault = self.rng.choice(FAULTS)
        self.counts["runs"] += 1
        self.counts[f"fault: {fault}"] += 1
        params = ["-p", f"chain={chain}"]
        for node in "abcd":
            params += ["-p", f"sleep_{node}={self.rng.uniform(0.0, 0.4):.2f}"]
        if fault == "fail":
            params += ["-p", f"fault_{self.rng.choice('abcd')}=fail"]
        if fault == "timeout":
            params += ["-p", "fault_c=hang"]  # node c has timeout: 3
        proc = self.cli("run", "bp.yaml", *params)
        hit_at = None
        if fault in ("cancel", "kill"):
            self.wait_recorded(proc, chain)
            time.sleep(self.rng.uniform(0.0, 1.2))  # somewhere in the run
            if proc.poll() is None:
                self.counts["kills" if fault == "kill" else "cancels"] += 1
                hit_at = time.time()
                proc.send_signal(signal.SIGKILL if fault == "kill" else signal.SIGINT)
        out, err = proc.communicate(timeout=300)
        self.check_orphans()
        run_id = self.run_id(out) or self.latest(chain)
        ended_at = time.time()  # the hit runner is gone by now (a cancel takes a moment)
        hit = None
        if hit_at is not None and run_id is not None:  # its nodes as the runner left them
            hit = Hit(run_id, hit_at, ended_at, self.node_states(run_id))
        if run_id is None:  # hit while starting up, before the run was recorded: start again
            self.counts["hit before the run was recorded"] += 1
            out, err = self.cli("run", "bp.yaml", *params).communicate(timeout=300)
            run_id = self.run_id(out) or self.latest(chain)
        status = "never recorded"
        for _ in range(5):
            if run_id is None:
                break
            status = self.status(run_id)
            if status == "succeeded":
                break
            self.counts["resumes"] += 1
            resumed = self.cli("runs", "resume", run_id)
            out, err = resumed.communicate(timeout=300)
            self.check_orphans()
            run_id = self.run_id(out) or self.latest(chain)
        if status != "succeeded":
            self.found["chains not finished after 5 resumes"] += 1
            print(f"  {chain}: still {status}: {err.strip()[-300:]}", file=sys.stderr)
        self.check_effects(chain, hit)

    def wait_recorded(self, proc: subprocess.Popen[str], chain: str) -> None:
        """Until the run is in the history (or the CLI has ended): start-up is not the
        interesting moment to strike (it is not skipped either: recording can be slow)."""
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            try:
                if self.latest(chain) is not None:
                    return
            except Exception:  # the history is being created by the CLI right now
                pass
            time.sleep(0.05)

    def run_id(self, out: str) -> str | None:
        try:
            return str(json.loads(out)["run_id"])
        except (ValueError, KeyError, TypeError):
            return None

    def latest(self, chain: str) -> str | None:
        """The newest recorded run of ``chain``, if any."""
        from conductor_nb.storage import RunHistory

        for record in RunHistory(self.work / "home").runs(5):
            if record.params.get("chain") == chain:
                return record.id
        return None

    def status(self, run_id: str) -> str:
        from conductor_nb.storage import RunHistory

        history = RunHistory(self.work / "home")
        history.mark_interrupted()
        return history.get(run_id).status

    def check_orphans(self) -> None:
        """Called once the CLI has exited: any child still alive (after a moment to die)
        outlived its runner."""
        deadline = time.monotonic() + 5
        while True:
            alive = _children_marked()
            if not alive or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        for proc in alive:
            self.found["orphans"] += 1
            proc.kill()

    def check_effects(self, chain: str, hit: Hit | None) -> None:
        """Count repeated and missing effects of ``chain``; ``hit``: the run that was killed
        or cancelled, when the signal was sent, when its runner had ended and its nodes'
        states as it left them (before any resume)."""
        effects = self.work / "effects" / f"{chain}.txt"
        text = effects.read_text() if effects.exists() else ""
        lines = [line.split() for line in text.splitlines()]
        first: dict[str, float] = {}
        every: dict[str, list[float]] = {}
        repeated: Counter[str] = Counter()
        for node, stamp in lines:
            every.setdefault(node, []).append(float(stamp))
            if node in first:
                repeated[node] += 1
            else:
                first[node] = float(stamp)
        self.found["side effects missing"] += len({"a", "b", "c", "d"} - set(first))
        self.measure_lags(chain, every)
        inside = set()  # nodes whose effect came before the hit runner ended, uncommitted
        if hit is not None:
            inside = {
                node
                for node, stamp in first.items()
                if stamp <= hit.ended_at and hit.states.get(node) != "succeeded"
            }
            self.counts["hits between an effect and its commit"] += len(inside)
            self.gaps += [hit.at - first[node] for node in inside]
        for node, times in repeated.items():
            where = "within" if node in inside else "beyond"
            self.found[f"side effects repeated {where} the window"] += times
            print(f"  {chain}: {node} repeated {times}x ({where}); hit: {hit}", file=sys.stderr)

    def node_states(self, run_id: str) -> dict[str, str]:
        from conductor_nb.storage import RunHistory

        return {n.node_id: n.status for n in RunHistory(self.work / "home").nodes(run_id)}

    def measure_lags(self, chain: str, every: dict[str, list[float]]) -> None:
        """Effect -> recorded finish of each child node that succeeded in a run of ``chain``
        (its effect: the last one before that finish)."""
        from conductor_nb.storage import RunHistory

        history = RunHistory(self.work / "home")
        for record in history.runs(12):
            if record.params.get("chain") != chain:
                continue
            for node in history.nodes(record.id):
                done = node.finished_at
                if node.status != "succeeded" or done is None:
                    continue
                before = [t for t in every.get(node.node_id, []) if t <= done]
                if before:
                    self.lags.append(done - max(before))

    def final_checks(self) -> None:
        from conductor_nb.storage import RunHistory

        history = RunHistory(self.work / "home")
        history.mark_interrupted()
        records = history.runs(None)
        self.counts["recorded runs"] = len(records)
        for record in records:
            for node in history.nodes(record.id):
                if node.status not in TERMINAL:
                    self.found["nodes not in exactly one terminal state"] += 1
        self.found["temp files left"] += len(list(self.work.rglob(".*.tmp")))
        records = self.work / "home" / "children"
        self.found["completion records left"] += len(list(records.rglob("record.json")))


@dataclass(frozen=True)
class Hit:
    """A run hit by a kill or a cancel."""

    run_id: str
    at: float  # when the signal was sent
    ended_at: float  # when its runner had ended
    states: dict[str, str]  # its nodes' states as it left them


def _children_marked() -> list[psutil.Process]:
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if MARK in (proc.info["cmdline"] or []):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def _spread(values: list[float]) -> str:
    if not values:
        return "-"
    ordered = sorted(values)
    median = ordered[len(ordered) // 2]
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"median {median * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms, max {ordered[-1] * 1000:.1f} ms"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200, help="how many runs (default 200)")
    parser.add_argument("--seed", type=int, default=1, help="the fault sequence")
    args = parser.parse_args()
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cnb-soak-") as folder:
        soak = Soak(Path(folder), args.seed)
        soak.setup()
        for index in range(args.runs):
            soak.one(index)
            if (index + 1) % 10 == 0:
                print(f"  ... {index + 1}/{args.runs} runs", file=sys.stderr, flush=True)
        soak.final_checks()
    print(f"fault soak: {args.runs} runs, seed {args.seed}, {time.monotonic() - started:.0f}s")
    for name in sorted(soak.counts):
        print(f"  {name:<42} {soak.counts[name]}")
    print("window between a child's effect and its node's commit (effect -> success recorded):")
    print(f"  measured over {len(soak.lags)} successful nodes: {_spread(soak.lags)}")
    print(
        f"  kills or cancels that hit inside it: "
        f"{soak.counts['hits between an effect and its commit']}"
        + (f" (effect -> signal: {_spread(soak.gaps)})" if soak.gaps else "")
        + "; each finished from its child's completion record on resume"
    )
    print("found (each must be 0):")
    names = [
        "orphans",
        "nodes not in exactly one terminal state",
        "side effects repeated within the window",
        "side effects repeated beyond the window",
        "side effects missing",
        "temp files left",
        "completion records left",
        "chains not finished after 5 resumes",
    ]
    for name in names:
        print(f"  {name:<42} {soak.found[name]}")
    return 1 if any(soak.found[name] for name in names) else 0


if __name__ == "__main__":
    sys.exit(main())
