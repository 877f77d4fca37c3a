"""Worker memory with many large photos in flight (issue 7). Prints figures; asserts nothing.

Brings up its own stack on 127.0.0.1: embedded PostgreSQL under ``var/bench-memory``, the fake Gemini
(``--no-inspect``: it reads each body and answers a small PNG after ``--delay``) and one ``run_worker``
process. Then, in one transaction, it queues ``--jobs`` pending Gemini jobs whose input is a
5472×3648 JPEG of about 6 MB (generated once under ``var/``), wakes the worker, and samples the worker's
resident memory every 20 ms until every job is final.

    .venv/bin/python bench/worker_memory.py [--jobs 100] [--delay 5] [--concurrency 256]
"""

from __future__ import annotations

import argparse
import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import psutil

BASE_DIR = Path(__file__).resolve().parent.parent
DATA_DIR = BASE_DIR / "var" / "bench-memory"
PHOTO = BASE_DIR / "var" / "bench-photo-5472x3648.jpg"
FAKE_PORT = 9921
MB = 1024 * 1024


def make_photo() -> Path:
    """A 5472×3648 JPEG of about 6 MB: smooth gradients under noise, quality 92 (a DSLR-like size)."""
    if PHOTO.exists():
        return PHOTO
    from PIL import Image

    width, height = 5472, 3648
    red = Image.linear_gradient("L").resize((width, height))
    green = Image.radial_gradient("L").resize((width, height))
    blue = red.transpose(Image.Transpose.ROTATE_180)
    noise = Image.effect_noise((width, height), 30).convert("RGB")
    image = Image.blend(Image.merge("RGB", (red, green, blue)), noise, 0.2)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=92)
    PHOTO.parent.mkdir(parents=True, exist_ok=True)
    PHOTO.write_bytes(buffer.getvalue())
    return PHOTO


class RssSampler:
    """Peak resident memory of one process while a scenario runs."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.process = psutil.Process(pid)
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.process.memory_info().rss)
            time.sleep(self.interval)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def setup_django() -> None:
    os.environ.update({"DATA_DIR": str(DATA_DIR), "DEBUG": "false", "LOG_LEVEL": "WARNING"})
    os.environ.setdefault("SECRET_KEY", "bench-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "photochanger.settings")
    os.environ.pop("DATABASE_URL", None)
    sys.path.insert(0, str(BASE_DIR))
    from photochanger.embedded_db import ensure_database_url

    ensure_database_url()  # starts (or reuses) the embedded server under DATA_DIR and exports its URL
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", interactive=False, verbosity=0)
    from providers.services import provider_key_set
    from slots.models import StudioSettings
    from slots.services import slots_ensure_static, studio_settings_get

    slots_ensure_static()
    studio_settings_get()
    # The fake has no rate limit: no cap may hold jobs back here.
    StudioSettings.objects.filter(id=1).update(provider_concurrency={"gemini": 4096})
    provider_key_set(provider="gemini", api_key="bench-key")


def queue_jobs(count: int, photo: Path) -> list[uuid.UUID]:
    """``count`` pending Gemini jobs, each with its own copy of the photo, committed (and NOTIFYed) at once."""
    from django.db import transaction
    from django.utils import timezone

    from jobs.models import Job
    from jobs.services import CHANNEL_JOB_CREATED, notify
    from media import storage
    from media.models import MediaObject

    now = timezone.now()
    jobs, inputs = [], []
    for _ in range(count):
        job = Job(
            id=uuid.uuid4(),
            slot_id="slot-001",
            provider="gemini",
            operation="image_edit",
            provider_settings={"prompt": "bench"},
            created_at=now,
            expires_at=now + timedelta(seconds=60),
        )
        path = storage.input_path(job.id, "image/jpeg")
        with open(photo, "rb") as source:
            storage.write_new_from(path, source)
        jobs.append(job)
        inputs.append(
            MediaObject(
                job=job,
                kind="input",
                path=path,
                mime_type="image/jpeg",
                size_bytes=photo.stat().st_size,
                created_at=now,
                expires_at=job.expires_at,
            )
        )
    with transaction.atomic():
        Job.objects.bulk_create(jobs)
        MediaObject.objects.bulk_create(inputs)
        notify(CHANNEL_JOB_CREATED)
    return [job.id for job in jobs]


def wait_final(job_ids: list[uuid.UUID], timeout: float) -> dict[str, int]:
    from django.db.models import Count

    from jobs.models import Job

    deadline = time.monotonic() + timeout
    while True:
        states = dict(
            Job.objects.filter(id__in=job_ids).values_list("state").annotate(n=Count("id")).order_by()
        )
        if (not states.get("pending") and not states.get("processing")) or time.monotonic() > deadline:
            return states
        time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=100)
    parser.add_argument("--delay", type=float, default=5.0, help="the fake's answer delay, seconds")
    parser.add_argument("--concurrency", type=int, default=256)
    options = parser.parse_args()

    photo = make_photo()
    setup_django()
    from django.db import connections

    env = {
        **os.environ,
        "GEMINI_API_BASE": f"http://127.0.0.1:{FAKE_PORT}",
        "PROVIDER_CONCURRENCY": "gemini=4096",
        "PYTHONUNBUFFERED": "1",
    }
    logs = DATA_DIR / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    python = sys.executable
    fake = subprocess.Popen(
        [python, "-m", "providers.tests.fakes.gemini", "--port", str(FAKE_PORT), "--no-inspect",
         "--delay", str(options.delay)],
        env=env, cwd=BASE_DIR, stdout=open(logs / "fake.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    worker = subprocess.Popen(
        [python, "manage.py", "run_worker", "--concurrency", str(options.concurrency)],
        env=env, cwd=BASE_DIR, stdout=open(logs / "worker.log", "wb"), stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while "running with concurrency" not in (logs / "worker.log").read_text(errors="replace"):
            if time.monotonic() > deadline or worker.poll() is not None:
                raise RuntimeError("worker did not start; see " + str(logs / "worker.log"))
            time.sleep(0.1)
        time.sleep(2)  # the worker's first claims, LISTEN and housekeeping threads are up
        baseline = psutil.Process(worker.pid).memory_info().rss
        with RssSampler(worker.pid) as sampler:
            started = time.monotonic()
            job_ids = queue_jobs(options.jobs, photo)
            states = wait_final(job_ids, timeout=120)
            elapsed = time.monotonic() - started
        stats = httpx.get(f"http://127.0.0.1:{FAKE_PORT}/__stats", timeout=5).json()
        print(f"photo: {photo.stat().st_size / MB:.1f} MB JPEG 5472x3648; {options.jobs} jobs; fake delay "
              f"{options.delay:.0f} s; worker --concurrency {options.concurrency}")  # fmt: skip
        print(f"jobs: {states}; {elapsed:.1f} s end to end; fake calls {stats['calls']}, "
              f"max in flight at the fake {stats['max_inflight']}")  # fmt: skip
        print(f"worker RSS: baseline {baseline / MB:.0f} MB, peak {sampler.peak / MB:.0f} MB "
              f"(+{(sampler.peak - baseline) / MB:.0f} MB, "
              f"{(sampler.peak - baseline) / MB / max(1, options.jobs):.2f} MB per job in flight)")  # fmt: skip
    finally:
        for process in (worker, fake):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in (worker, fake):
            try:
                process.wait(timeout=70)
            except subprocess.TimeoutExpired:
                process.kill()
        connections.close_all()
        from photochanger.embedded_db import release_embedded_postgres

        release_embedded_postgres()


if __name__ == "__main__":
    main()
