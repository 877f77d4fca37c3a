"""Thousands of generated hostile requests at the real ingest URL; prints figures, asserts nothing.

Brings up the bench stack of ``bench/run.py`` (embedded PostgreSQL under ``var/bench``, the fake Gemini,
one uvicorn web process, one ``run_worker``), with the web process's temporary directory (spooled bodies,
uploads) in ``var/bench/fuzz-tmp`` and the wrong-password lockout out of the way (wrong passwords are
part of the fuzz). Then throws the requests of ``jobs/tests/hostile.py`` — the fuzz test's generator
(hypothesis), with a random seed it prints — one after another at ``POST /ingest/<slot_id>`` over raw
HTTP, and prints:

- counts by status and by ``failure_reason``, and how often each hostile change was thrown;
- 5xx answers, and answers that break the rules (not the catalogue's JSON, its status not the reason's,
  the booth's own request refused);
- jobs created for refused requests (jobs made since the start whose id no 200 answer named);
- orphan files once every job is final: new files under ``MEDIA_ROOT/inputs`` and in the temporary
  directory.

    .venv/bin/python bench/fuzz.py [--cases 10000] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(BASE_DIR))
sys.path.insert(0, str(BASE_DIR / "bench"))

from hypothesis import HealthCheck, Phase, given, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from run import PASSWORD, WEB_PORT, Stack  # noqa: E402

from jobs.tests.booth import booth_post  # noqa: E402
from jobs.tests.hostile import HostileRequest, answer_problems, hostile_requests  # noqa: E402


def files_in(folder: Path) -> set[str]:
    return {str(path) for path in folder.rglob("*") if path.is_file()} if folder.exists() else set()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=None)
    options = parser.parse_args()
    fuzz_seed = options.seed if options.seed is not None else random.randrange(2**32)

    upload_tmp = BASE_DIR / "var" / "bench" / "fuzz-tmp"
    shutil.rmtree(upload_tmp, ignore_errors=True)
    upload_tmp.mkdir(parents=True)
    stack = Stack(worker_concurrency=None, workers=1)
    stack.env.update(
        {
            "TMPDIR": str(upload_tmp),
            "INGEST_PASSWORD_FAILURES_ALLOWED": "100000000",
            "INGEST_PASSWORD_GLOBAL_FAILURES_ALLOWED": "100000000",
        }
    )
    stack.setup_database()
    from django.conf import settings as django_settings
    from django.utils import timezone

    from jobs.models import Job
    from jobs.states import LIVE_STATES

    inputs = Path(django_settings.MEDIA_ROOT) / "inputs"
    inputs_before = files_in(inputs)
    stack.up()
    started_at = timezone.now()
    statuses: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    thrown: Counter[str] = Counter()
    problems: list[str] = []
    accepted: set[str] = set()
    seconds: list[float] = []

    @seed(fuzz_seed)
    @settings(
        max_examples=options.cases,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(hostile_requests(PASSWORD), st.just(None))
    def throw(request: HostileRequest, _unused: None) -> None:
        for change in request.changes or ["(the booth's own request)"]:
            thrown[change.split(" '")[0]] += 1
        began = time.monotonic()
        try:
            response = booth_post(
                WEB_PORT,
                request.path,
                request.body,
                content_type=request.content_type,
                headers=request.headers,
                chunked=request.chunked,
                timeout=120,
            )
        except OSError as error:
            statuses["no answer"] += 1
            problems.append(f"no answer ({error}) for {request.describe()}")
            return
        seconds.append(time.monotonic() - began)
        statuses[str(response.status)] += 1
        if response.status == 200:
            accepted.add(response.headers.get("x-job-id", ""))
        else:
            try:
                reasons[json.loads(response.body).get("failure_reason", "?")] += 1
            except ValueError:
                reasons["(not JSON)"] += 1
        problems.extend(answer_problems(request, response))

    began = time.monotonic()
    try:
        throw()
        elapsed = time.monotonic() - began
        deadline = time.monotonic() + 120
        while Job.objects.filter(state__in=LIVE_STATES).exists() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(2)  # inputs kept for a thumbnail are released right after it is recorded
        created = {
            str(job_id)
            for job_id in Job.objects.filter(created_at__gte=started_at).values_list("id", flat=True)
        }
        live = Job.objects.filter(created_at__gte=started_at, state__in=LIVE_STATES).count()
        orphan_inputs = sorted(files_in(inputs) - inputs_before)
        orphan_temporary = sorted(files_in(upload_tmp))
    finally:
        stack.down()

    cases = sum(statuses.values())
    seconds.sort()
    print(f"seed {fuzz_seed}: {cases} cases in {elapsed:.0f} s ({cases / elapsed:.0f}/s), "
          f"answer p50 {1000 * seconds[len(seconds) // 2]:.1f} ms, max {1000 * seconds[-1]:.0f} ms")  # fmt: skip
    print("by status:", json.dumps(dict(sorted(statuses.items()))))
    print("by failure_reason:", json.dumps(dict(reasons.most_common())))
    print("changes thrown:", json.dumps(dict(thrown.most_common())))
    print("5xx answers:", sum(count for status, count in statuses.items() if status.startswith("5")))
    print("answers breaking the rules:", len(problems))
    for problem in problems[:10]:
        print("  ", problem[:300])
    print("jobs created for refused requests:", len(created - accepted))
    print("jobs still live:", live)
    print("orphan files: inputs", len(orphan_inputs), "temporary", len(orphan_temporary))
    for path in (orphan_inputs + orphan_temporary)[:10]:
        print("  ", path)


if __name__ == "__main__":
    main()
