"""The runtime's rules, as a unit (a stand-in engine; the real model is in test_concurrent_streams.py):
jobs of one key run in arrival order, jobs of different keys run at once, and only one job's code runs
at a time outside `waiting()`."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Generator
from types import SimpleNamespace

from rolecraft.backends.sharing import released, waiting
from rolecraft.server.runtime import Runtime


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str]] = []
        self.inside = 0
        self.most_inside = 0
        self.guard = threading.Lock()

    def job(self, name: str, pieces: int = 3) -> Generator[str, None, str]:
        for i in range(pieces):
            with self.guard:
                self.inside += 1
                self.most_inside = max(self.most_inside, self.inside)
            self.events.append((name, "start" if i == 0 else "piece"))
            time.sleep(0.01)  # engine code: nobody else may run it now
            with self.guard:
                self.inside -= 1
            with waiting():
                time.sleep(0.05)  # waiting on the model: the others run meanwhile
            yield f"{name}{i}"
        self.events.append((name, "end"))
        return name


def _runtime(streams: int) -> Runtime:
    return Runtime(SimpleNamespace(settings=SimpleNamespace(batch_streams=streams), close=lambda: None))  # type: ignore[arg-type]


async def _collect_all(runtime: Runtime, recorder: Recorder, keys: list[str | None]) -> list[str]:
    runs = [runtime.run(recorder.job(f"j{i}"), key=key) for i, key in enumerate(keys)]
    return await asyncio.gather(*(run.collect() for run in runs))


def test_jobs_of_different_keys_interleave_but_never_run_engine_code_together() -> None:
    recorder, runtime = Recorder(), _runtime(4)
    try:
        texts = asyncio.run(_collect_all(runtime, recorder, ["a", "b", None, "c"]))
    finally:
        runtime.close()
    assert texts == [f"j{i}0j{i}1j{i}2" for i in range(4)]
    starts = [i for i, (_, what) in enumerate(recorder.events) if what == "start"]
    first_end = next(i for i, (_, what) in enumerate(recorder.events) if what == "end")
    assert max(starts) < first_end  # all four were under way before any ended
    assert recorder.most_inside == 1


def test_jobs_of_one_key_run_one_after_another_in_arrival_order() -> None:
    recorder, runtime = Recorder(), _runtime(4)
    try:
        asyncio.run(_collect_all(runtime, recorder, ["s", "s", "s"]))
    finally:
        runtime.close()
    order = [(name, what) for name, what in recorder.events if what != "piece"]
    assert order == [("j0", "start"), ("j0", "end"), ("j1", "start"), ("j1", "end"), ("j2", "start"), ("j2", "end")]


def test_one_stream_runs_jobs_one_after_another() -> None:
    recorder, runtime = Recorder(), _runtime(1)
    try:
        asyncio.run(_collect_all(runtime, recorder, ["a", "b"]))
    finally:
        runtime.close()
    assert [what for _, what in recorder.events if what != "piece"] == ["start", "end", "start", "end"]


def test_a_call_of_a_key_waits_for_that_keys_running_job() -> None:
    recorder, runtime = Recorder(), _runtime(4)

    async def scenario() -> list[str]:
        seen: list[str] = []
        run = runtime.run(recorder.job("turn", pieces=4), key="s")
        pieces = asyncio.ensure_future(run.collect())
        await asyncio.sleep(0.02)
        seen.append(await runtime.call(lambda: "edit after " + recorder.events[-1][1], key="s"))
        seen.append(await pieces)
        return seen

    try:
        seen = asyncio.run(scenario())
    finally:
        runtime.close()
    assert seen == ["edit after end", "turn0turn1turn2turn3"]


def test_a_remote_engines_stream_lets_the_other_jobs_run() -> None:
    """openai_compat reads its server's chunks through `released`: two slow remote streams overlap."""
    runtime = _runtime(2)

    def remote(name: str) -> Generator[str, None, None]:
        def chunks() -> Generator[str, None, None]:
            for i in range(3):
                time.sleep(0.1)  # the remote engine producing its next chunk
                yield f"{name}{i}"

        yield from released(chunks())

    async def both() -> float:
        start = time.monotonic()
        await asyncio.gather(runtime.run(remote("a")).collect(), runtime.run(remote("b")).collect())
        return time.monotonic() - start

    try:
        took = asyncio.run(both())
    finally:
        runtime.close()
    assert took < 0.5  # one after the other: 0.6 s
