"""Receiving bodies (photochanger.intake): time and size limits, the shared memory budget, intake places."""

from __future__ import annotations

import asyncio

import pytest

from photochanger.intake import (
    BodyTimeout,
    BodyTooLarge,
    ClientGone,
    MemoryBudget,
    ReceivedBody,
    intake_place,
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


def test_intake_places_bound_the_photos_processed_at_once(settings):
    settings.INGEST_MAX_CONCURRENT_INTAKE = 2
    inside = {"now": 0, "most": 0}

    async def one() -> None:
        async with intake_place():
            inside["now"] += 1
            inside["most"] = max(inside["most"], inside["now"])
            await asyncio.sleep(0.01)
            inside["now"] -= 1

    async def many() -> None:
        await asyncio.gather(*(one() for _ in range(7)))

    asyncio.run(many())
    assert inside["most"] == 2
