"""The fake Turbotext server used by provider tests and benchmarks speaks the real wire format."""

import http.server
import io
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from providers.tests.fakes.turbotext import FakeTurbotext

JPEG_BYTES = b"\xff\xd8\xff\xe0" + b"fake-jpeg" * 100
STYLE_BYTES = b"\x89PNG\r\n\x1a\n" + b"style" * 50
KEY = "tt-test-key"


class _PhotoHandler(http.server.BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, str, bytes]] = {
        "/photo.jpg": (200, "image/jpeg", JPEG_BYTES),
        "/style.png": (200, "image/png", STYLE_BYTES),
        "/gone.jpg": (410, "text/plain", b"gone"),
    }

    def do_GET(self) -> None:
        status, content_type, body = self.routes.get(self.path, (404, "text/plain", b"nope"))
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def photos() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PhotoHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(scope="module")
def server() -> Iterator[FakeTurbotext]:
    fake = FakeTurbotext()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeTurbotext) -> Iterator[FakeTurbotext]:
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def client(fake: FakeTurbotext) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, timeout=5) as c:
        yield c


def call(client: httpx.Client, method: str, key: str | None = KEY, **fields: Any) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return client.post(f"/api_ai/{method}", data=fields, headers=headers)


def create(client: httpx.Client, method: str = "generate_image2image", **fields: Any) -> httpx.Response:
    return call(client, method, do="create_queue", **fields)


def poll(client: httpx.Client, queueid: int, limit: int = 200) -> tuple[int, dict[str, Any]]:
    """Poll get_result until it stops answering reconnect; returns (reconnects seen, final answer)."""
    for seen in range(limit):
        answer = call(client, "generate_image2image", do="get_result", queueid=queueid).json()
        if answer != {"action": "reconnect"}:
            return seen, answer
        time.sleep(0.01)
    raise AssertionError(f"still reconnecting after {limit} polls")


def closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}/photo.jpg"


def test_create_queue_reconnect_then_success_and_the_result_downloads(fake, client, photos):
    photo = f"{photos}/photo.jpg"
    created = create(client, url=photo, content="make it pop", strength="40", seed="7", scale="7.5")
    assert created.status_code == 200
    queueid = created.json()["queueid"]
    assert created.json() == {"success": True, "queueid": queueid}
    assert create(client, url=photo, content="again").json()["queueid"] == queueid + 1

    first = call(client, "generate_image2image", do="get_result", queueid=queueid)
    assert first.json() == {"action": "reconnect"}
    reconnects, answer = poll(client, queueid)

    uploaded = f"{fake.base_url}/download/{queueid}.png"
    assert answer == {
        "success": True,
        "error": "",
        "data": {
            "image": [f"image/generate_image2image_id{queueid}_0.png"],
            "width": 64,
            "height": 64,
            "uploaded_image": uploaded,
        },
        "uploaded_image": uploaded,
    }
    assert poll(client, queueid)[1] == answer  # answering again is harmless
    image = httpx.get(uploaded, timeout=5)
    assert image.status_code == 200
    assert image.headers["content-type"] == "image/png"
    png = Image.open(io.BytesIO(image.content))
    png.load()
    assert png.size == (64, 64)

    assert fake.calls == 2
    assert fake.polls == reconnects + 3
    recorded = fake.requests[0]
    assert {k: recorded[k] for k in ("method", "do", "api_key", "mode", "queueid")} == {
        "method": "generate_image2image",
        "do": "create_queue",
        "api_key": KEY,
        "mode": "image",
        "queueid": queueid,
    }
    assert recorded["fields"] == {
        "do": "create_queue",
        "url": photo,
        "content": "make it pop",
        "strength": "40",
        "seed": "7",
        "scale": "7.5",
    }
    assert recorded["content_type"].startswith("application/x-www-form-urlencoded")
    download = recorded["downloads"][photo]
    assert (download["status"], download["length"], download["content_type"]) == (
        200,
        len(JPEG_BYTES),
        "image/jpeg",
    )
    assert fake.requests[2]["do"] == "get_result"
    assert fake.requests[2]["fields"] == {"do": "get_result", "queueid": str(queueid)}
    # The two tasks fetch in the background: find this task's fetch rather than rely on their order.
    fetched = [download for download in fake.downloads if download["queueid"] == queueid]
    assert [download["url"] for download in fetched] == [photo]
    assert fake.stats()["result_downloads"] == 1


@pytest.mark.parametrize("location", ["top", "data"])
def test_result_url_location(fake, client, photos, location):
    fake.result_url_location = location
    queueid = create(client, url=f"{photos}/photo.jpg", content="x").json()["queueid"]
    answer = poll(client, queueid)[1]
    uploaded = f"{fake.base_url}/download/{queueid}.png"
    assert ("uploaded_image" in answer) is (location == "top")
    assert ("uploaded_image" in answer["data"]) is (location == "data")
    assert uploaded in (answer.get("uploaded_image"), answer["data"].get("uploaded_image"))


def test_both_urls_are_fetched_and_a_410_ends_in_url_error(fake, client, photos):
    ok = create(
        client, "mix_images", url_image_target=f"{photos}/photo.jpg", url=f"{photos}/style.png", content="x"
    ).json()["queueid"]
    bad = create(
        client, "deepfake_photo", url=f"{photos}/style.png", url_image_target=f"{photos}/gone.jpg"
    ).json()["queueid"]

    assert poll(client, ok)[1]["success"] is True
    assert poll(client, bad)[1] == {"success": False, "error": "url_error"}

    mix, deepfake = fake.requests[0]["downloads"], fake.requests[1]["downloads"]
    assert mix[f"{photos}/photo.jpg"]["length"] == len(JPEG_BYTES)
    assert (mix[f"{photos}/style.png"]["length"], mix[f"{photos}/style.png"]["content_type"]) == (
        len(STYLE_BYTES),
        "image/png",
    )
    assert deepfake[f"{photos}/style.png"]["status"] == 200
    assert deepfake[f"{photos}/gone.jpg"]["status"] == 410
    assert {d["url"]: d["fields"] for d in fake.downloads if d["queueid"] == bad} == {
        f"{photos}/style.png": ["url"],
        f"{photos}/gone.jpg": ["url_image_target"],
    }
    assert httpx.get(f"{fake.base_url}/download/{bad}.png", timeout=5).status_code == 404


def test_an_unreachable_url_is_a_url_error(fake, client):
    url = closed_port_url()
    queueid = create(client, url=url, content="x").json()["queueid"]
    assert poll(client, queueid)[1] == {"success": False, "error": "url_error"}
    record = fake.requests[0]["downloads"][url]
    assert record["status"] is None
    assert record["error"]


@pytest.mark.parametrize(
    ("method", "fields"),
    [
        ("generate_image2image", {"content": "no url"}),
        ("generate_image2image", {"url": "http://x/p.jpg", "content": ""}),
        ("generate_image2image", {"url": "http://x/p.jpg", "content": "x", "strength": "81"}),
        ("generate_image2image", {"url": "http://x/p.jpg", "content": "x", "scale": "abc"}),
        ("mix_images", {"url": "http://x/style.png"}),
        (
            "deepfake_photo",
            {"url": "http://x/t.jpg", "url_image_target": "http://x/f.jpg", "face_restore": "yes"},
        ),
    ],
)
def test_bad_params_are_params_error(fake, client, method, fields):
    response = create(client, method, **fields)
    assert response.status_code == 200
    assert response.json() == {"success": False, "error": "params_error"}
    assert fake.calls == 1
    assert fake.downloads == []


def test_get_result_errors(client):
    assert call(client, "mix_images", do="get_result").json() == {"success": False, "error": "params_error"}
    assert call(client, "mix_images", do="get_result", queueid="99999").json() == {
        "success": False,
        "error": "queue_not_found",
    }
    assert client.get("/download/99999.png").status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer", "Basic dXNlcjpwYXNz", "tt-test-key"])
def test_a_missing_bearer_is_an_auth_error(fake, client, photos, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    for do in ("create_queue", "get_result"):
        fields = {"do": do, "url": f"{photos}/photo.jpg", "content": "x", "queueid": "1"}
        response = client.post("/api_ai/generate_image2image", data=fields, headers=headers)
        assert response.status_code == 401
        assert response.json() == {"success": False, "error": "auth_error"}
    assert fake.downloads == []


def test_limit_then_the_default_mode(fake, client, photos):
    fake.set_script(["limit"])
    assert create(client, url=f"{photos}/photo.jpg", content="x").json() == {
        "success": False,
        "error": "LIMIT",
    }
    assert create(client, url=f"{photos}/photo.jpg", content="x").json()["success"] is True
    assert [r["mode"] for r in fake.requests] == ["limit", "image"]


def test_reconnect_forever_error_and_lost_result(fake, client, photos):
    fake.set_script(["reconnect_forever", "error", "lost_result"])
    url = f"{photos}/photo.jpg"
    forever, error, lost = (create(client, url=url, content="x").json()["queueid"] for _ in range(3))

    with pytest.raises(AssertionError, match="still reconnecting"):
        poll(client, forever, limit=20)
    assert poll(client, error)[1] == {"success": False, "error": "face_not_found"}
    answer = poll(client, lost)[1]
    assert answer["success"] is True
    assert httpx.get(answer["uploaded_image"], timeout=5).status_code == 404


def test_plain_text_5xx_and_hang(fake, client, photos):
    fake.set_script(["500", "503", "hang"])
    url = f"{photos}/photo.jpg"
    for status in (500, 503):
        response = create(client, url=url, content="x")
        assert response.status_code == status
        assert response.headers["content-type"].startswith("text/plain")
    started = time.monotonic()
    with httpx.Client(base_url=fake.base_url, timeout=0.5) as c, pytest.raises(httpx.ReadTimeout):
        create(c, url=url, content="x")
    assert time.monotonic() - started < 2
    assert fake.calls == 3
    assert fake.downloads == []


def test_delay_and_reconnect_count_gate_the_result(fake, client, photos):
    fake.delay = 0.3
    fake.reconnects = 3
    started = time.monotonic()
    queueid = create(client, url=f"{photos}/photo.jpg", content="x").json()["queueid"]
    reconnects, answer = poll(client, queueid)
    assert answer["success"] is True
    assert time.monotonic() - started >= 0.3
    assert reconnects >= 3


def test_http_control_endpoints(fake, client, photos):
    assert client.post("/__delay", params={"s": "0.05"}).json()["delay"] == 0.05
    stats = client.post("/__mode", params={"default": "error", "script": "limit,image"}).json()
    assert (stats["default_mode"], stats["script"]) == ("error", ["limit", "image"])
    assert client.post("/__mode", params={"default": "bogus"}).status_code == 400
    stats = client.post("/__config", params={"reconnects": "2", "result_url_location": "top"}).json()
    assert (stats["reconnects"], stats["result_url_location"]) == (2, "top")
    assert client.post("/__config", params={"result_url_location": "nowhere"}).status_code == 400
    assert client.get("/__config").status_code == 405

    url = f"{photos}/photo.jpg"
    assert create(client, url=url, content="x").json()["error"] == "LIMIT"
    ok = create(client, url=url, content="x").json()["queueid"]
    failing = create(client, url=url, content="x").json()["queueid"]
    reconnects, answer = poll(client, ok)
    assert reconnects >= 2
    assert set(answer) == {"success", "error", "data", "uploaded_image"}
    assert poll(client, failing)[1]["error"] == "face_not_found"

    stats = client.get("/__stats").json()
    assert {k: stats[k] for k in ("calls", "downloads", "tasks", "default_mode", "delay")} == {
        "calls": 3,
        "downloads": 2,
        "tasks": 2,
        "default_mode": "error",
        "delay": 0.05,
    }
    assert stats["polls"] >= 6

    stats = client.post("/__reset").json()
    assert (stats["calls"], stats["polls"], stats["delay"], stats["default_mode"]) == (0, 0, 0.0, "image")
    assert (stats["reconnects"], stats["result_url_location"]) == (1, "both")
    assert fake.requests == [] and fake.downloads == []
    assert call(client, "mix_images", do="get_result", queueid=ok).json()["error"] == "queue_not_found"


def test_unknown_paths_and_methods(client):
    assert client.get("/api_ai/generate_image2image").status_code == 405
    assert create(client, "text_to_image", url="x").status_code == 404
    assert client.get("/nothing").status_code == 404
