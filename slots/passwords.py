"""Checking the global ingest password on the hot path without letting wrong passwords starve booths.

The stored hash is one of Django's password hashers: deliberately slow (PBKDF2, most of a second).
Booths send the same password with every photo, and a booth left on an old password after a rotation
sends the same wrong one again and again. So, per process and per stored hash:

- the password that last verified is remembered: a booth's photos cost no hashing;
- wrong passwords already hashed are remembered (a bounded set): repeating one costs no hashing;
- concurrent checks of the same unknown candidate share one hash;
- the hash itself runs on its own thread (``photochanger.offload.hash_call``), never on the threads
  that serve queries or parse uploads.

Candidates are remembered only as HMAC digests under a key made fresh for each process, never in
clear. Rotating the password changes the stored hash, which forgets everything remembered.
Rate limiting (who may ask at all) is decided before this is called: see ``jobs.ingest``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections import OrderedDict

from django.contrib.auth.hashers import check_password

from photochanger.offload import hash_call

logger = logging.getLogger(__name__)

REMEMBERED_WRONG_PASSWORDS = 4096
# After hashing a wrong password, no other hash starts for this many times as long (≤ 25 % of a core).
WRONG_PASSWORD_REST_FACTOR = 3.0


class IngestPasswordChecker:
    def __init__(self) -> None:
        self._key = secrets.token_bytes(32)
        self._lock = threading.Lock()  # the remembered digests; in-flight hashes stay on the event loop
        self._stored_hash = ""
        self._right: bytes | None = None
        self._wrong: OrderedDict[bytes, None] = OrderedDict()
        self._in_flight: dict[bytes, asyncio.Future[bool]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lane: asyncio.Semaphore | None = None
        self.hashes_run = 0

    @property
    def waiting(self) -> int:
        """Unknown candidates being hashed or waiting for the hashing thread right now."""
        return len(self._in_flight)

    def _digest(self, candidate: str) -> bytes:
        return hmac.new(self._key, candidate.encode(), hashlib.sha256).digest()

    def _follow(self, stored_hash: str) -> None:
        if stored_hash != self._stored_hash:
            self._stored_hash = stored_hash
            self._right = None
            self._wrong.clear()

    def known(self, *, stored_hash: str, candidate: str) -> bool | None:
        """True/False when this candidate was already checked against ``stored_hash``; None if not.

        Safe to call from any thread (the ingest path asks from a CPU thread while it parses).
        """
        if not stored_hash or not candidate:
            return False
        digest = self._digest(candidate)
        with self._lock:
            self._follow(stored_hash)
            if self._right is not None and hmac.compare_digest(self._right, digest):
                return True
            if digest in self._wrong:
                self._wrong.move_to_end(digest)
                return False
        return None

    async def verify(self, *, stored_hash: str, candidate: str) -> bool:
        """Whether ``candidate`` is the ingest password; hashes only what was never checked before."""
        known = self.known(stored_hash=stored_hash, candidate=candidate)
        if known is not None:
            return known
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            self._loop, self._in_flight, self._lane = loop, {}, asyncio.Semaphore(1)
        digest = self._digest(candidate)
        future = self._in_flight.get(digest)
        if future is None:
            future = asyncio.ensure_future(self._hash(stored_hash, candidate, digest))
            self._in_flight[digest] = future
        return await asyncio.shield(future)

    async def _hash(self, stored_hash: str, candidate: str, digest: bytes) -> bool:
        # One hash at a time per process; after a wrong password the lane rests WRONG_PASSWORD_REST_FACTOR
        # times as long as that hash took, so guessers get at most a quarter of one core, however
        # how busy the process is. (The right password is usually remembered and never gets here.)
        lane = self._lane
        assert lane is not None
        await lane.acquire()
        started = time.monotonic()
        matches = False
        try:
            self.hashes_run += 1
            matches = await hash_call(check_password, candidate, stored_hash)
        finally:
            self._in_flight.pop(digest, None)
            took = time.monotonic() - started
            if matches:
                lane.release()
            else:
                asyncio.get_running_loop().call_later(took * WRONG_PASSWORD_REST_FACTOR, lane.release)
        # Rare by design (once per password per process), so worth a line: a stream of these is guessing.
        logger.info(
            "ingest password: hashed a password not seen before (%s, %.0f ms)",
            "right" if matches else "wrong",
            took * 1000,
        )
        with self._lock:
            if stored_hash == self._stored_hash:
                if matches:
                    self._right = digest
                else:
                    self._wrong[digest] = None
                    while len(self._wrong) > REMEMBERED_WRONG_PASSWORDS:
                        self._wrong.popitem(last=False)
        return bool(matches)


ingest_password_checker = IngestPasswordChecker()
