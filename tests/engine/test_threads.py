"""ThreadLane: sync calls on worker threads, results handed back to the loop in batches."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from conductor_nb.engine.threads import ThreadLane

WHO = contextvars.ContextVar("who", default="nobody")


def test_results_errors_and_context_reach_the_caller() -> None:
    lane = ThreadLane(2)

    def whoami(suffix: str) -> str:
        return WHO.get() + suffix

    def boom() -> None:
        raise ValueError("no")

    async def main() -> tuple[str, str]:
        WHO.set("node-a")
        text = await lane.call(whoami, {"suffix": "!"})
        with pytest.raises(ValueError, match="no"):
            await lane.call(boom, {})
        return text, threading.current_thread().name

    text, caller = asyncio.run(main())
    lane.shutdown()
    assert text == "node-a!"
    assert not caller.startswith("conductor-node")


def test_calls_that_finish_together_wake_the_loop_once() -> None:
    lane = ThreadLane(4)
    delivered = threading.Semaphore(0)
    deliver, drain = lane._deliver, lane._drain
    drains: list[int] = []

    def counting_deliver(loop, outcome):  # type: ignore[no-untyped-def]
        deliver(loop, outcome)
        delivered.release()

    def counting_drain(loop):  # type: ignore[no-untyped-def]
        drains.append(len(lane._done.get(loop, [])))
        drain(loop)

    lane._deliver = counting_deliver  # type: ignore[method-assign]
    lane._drain = counting_drain  # type: ignore[method-assign]

    async def main() -> list[int]:
        futures = [lane.call(pow, {"base": i, "exp": 2}) for i in range(8)]
        for _ in futures:  # the loop is blocked here: every result waits for one wake-up
            delivered.acquire()
        return list(await asyncio.gather(*futures))

    assert asyncio.run(main()) == [i * i for i in range(8)]
    lane.shutdown()
    assert drains == [8]


def test_a_shut_down_lane_refuses_new_calls() -> None:
    lane = ThreadLane(1)
    lane.shutdown()

    async def main() -> None:
        lane.call(print, {})

    with pytest.raises(RuntimeError, match="shut down"):
        asyncio.run(main())
