"""Receiving bodies (photochanger.intake): time and size limits, the shared memory budget, intake places."""

from __future__ import annotations

import asyncio

import pytest

from photochanger.intake import (
    BodyTimeout,
    BodyTooLarge,
    ClientGone,
    IntakePlaces,
    MemoryBudget,
    ReceivedBody,
    receive_body,
)


def chunks(*parts: bytes, then_hang: bool = False):
    """An ASGI ``receive`` delivering ``parts`` as body messages (and then, optionally, nothing ever)."""
    queue = list(parts)

    async def receive():
        if queue:
            part = queue.pop(0)
            return {"type": "http.request", "body": part, "more_body": bool(queue) or then_hang}
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    return receive


def test_a_body_within_the_budget_stays_in_memory_and_gives_its_bytes_back_when_closed():
    budget = MemoryBudget(1000)
    body = ReceivedBody(budget, per_body_memory=1000)
    asyncio.run(receive_body(chunks(b"a" * 300, b"b" * 300), body, timeout=5, max_bytes=10_000))
    assert (body.on_disk, body.size, budget.used) == (False, 600, 600)
    assert body.file.read() == b"a" * 300 + b"b" * 300
    body.close()
    assert budget.used == 0


def test_a_body_beyond_the_shared_budget_goes_to_disk_and_holds_no_budget():
    budget = MemoryBudget(1000)
    first = ReceivedBody(budget, per_body_memory=1000)
    asyncio.run(receive_body(chunks(b"x" * 800), first, timeout=5, max_bytes=10_000))
    second = ReceivedBody(budget, per_body_memory=1000)
    asyncio.run(receive_body(chunks(b"y" * 150, b"z" * 150), second, timeout=5, max_bytes=10_000))
    assert second.on_disk, "the budget was spent by the first body"
    assert budget.used == 800
    assert second.file.read() == b"y" * 150 + b"z" * 150, "nothing lost in the move to disk"
    first.close()
    second.close()
    assert budget.used == 0


def test_a_body_bigger_than_one_body_may_keep_in_memory_goes_to_disk():
    budget = MemoryBudget(10_000)
    body = ReceivedBody(budget, per_body_memory=100)
    asyncio.run(receive_body(chunks(b"x" * 60, b"y" * 60), body, timeout=5, max_bytes=10_000))
    assert body.on_disk and budget.used == 0
    body.close()


def test_a_body_growing_past_its_limit_is_refused_as_it_arrives():
    body = ReceivedBody(MemoryBudget(10_000), per_body_memory=10_000)
    with pytest.raises(BodyTooLarge):
        asyncio.run(receive_body(chunks(b"x" * 600, b"y" * 600), body, timeout=5, max_bytes=1000))
    body.close()


def test_a_body_that_stops_arriving_times_out():
    body = ReceivedBody(MemoryBudget(10_000), per_body_memory=10_000)
    with pytest.raises(BodyTimeout):
        asyncio.run(receive_body(chunks(b"x" * 10, then_hang=True), body, timeout=0.2, max_bytes=1000))
    body.close()


def test_a_client_that_hangs_up_is_reported_gone():
    async def receive():
        return {"type": "http.disconnect"}

    body = ReceivedBody(MemoryBudget(10_000), per_body_memory=10_000)
    with pytest.raises(ClientGone):
        asyncio.run(receive_body(receive, body, timeout=5, max_bytes=1000))
    body.close()


def test_places_bound_the_bodies_flowing_at_once():
    places = IntakePlaces(2)
    flowing = {"now": 0, "most": 0}

    def steady_body():
        sent = {"n": 0}

        async def receive():
            if sent["n"] == 0:
                flowing["now"] += 1
                flowing["most"] = max(flowing["most"], flowing["now"])
            await asyncio.sleep(0.01)
            sent["n"] += 1
            last = sent["n"] == 3
            if last:
                flowing["now"] -= 1
            return {"type": "http.request", "body": b"x" * 100, "more_body": not last}

        return receive

    async def many() -> None:
        bodies = [ReceivedBody(MemoryBudget(10_000), per_body_memory=10_000) for _ in range(5)]
        await asyncio.gather(
            *(
                receive_body(steady_body(), body, timeout=5, max_bytes=1000, places=places, stall=1.0)
                for body in bodies
            )
        )
        assert all(body.size == 300 for body in bodies)

    asyncio.run(many())
    assert flowing["most"] == 2


def test_a_stalled_body_gives_its_place_back_and_still_arrives_whole():
    async def scenario() -> None:
        places = IntakePlaces(1)
        resume = asyncio.Event()
        slow_sent = {"n": 0}

        async def slow_receive():
            slow_sent["n"] += 1
            if slow_sent["n"] == 1:
                return {"type": "http.request", "body": b"first-", "more_body": True}
            await resume.wait()
            return {"type": "http.request", "body": b"second", "more_body": False}

        slow_body = ReceivedBody(MemoryBudget(10_000), per_body_memory=10_000)
        slow = asyncio.ensure_future(
            receive_body(slow_receive, slow_body, timeout=5, max_bytes=1000, places=places, stall=0.05)
        )
        await asyncio.sleep(0.2)
        assert places.free, "the stalled body gave its place back"
        fast_body = ReceivedBody(MemoryBudget(10_000), per_body_memory=10_000)
        await receive_body(
            chunks(b"booth photo"), fast_body, timeout=1, max_bytes=1000, places=places, stall=1.0
        )
        assert fast_body.file.read() == b"booth photo", "another booth got the place meanwhile"
        assert not slow.done()
        resume.set()
        await slow
        assert slow_body.file.read() == b"first-second", "the slow body still arrived whole"
        assert places.free

    asyncio.run(scenario())
