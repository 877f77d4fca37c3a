"""The fake Gemini server used by provider tests and benchmarks speaks the real wire format."""

import base64
import io
import json
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from providers.tests.fakes.gemini import FakeGemini

FLASH = "gemini-2.5-flash-image"
PRO = "gemini-3-pro-image-preview"
JPEG_BYTES = b"\xff\xd8\xff\xe0" + b"fake-jpeg" * 100


@pytest.fixture(scope="module")
def server() -> Iterator[FakeGemini]:
    fake = FakeGemini()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeGemini) -> Iterator[FakeGemini]:
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def client(fake: FakeGemini) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, timeout=5) as c:
        yield c


def body(*, images: int = 1, prompt: str = "make it pop", image_size: str | None = None) -> dict[str, Any]:
    data = base64.b64encode(JPEG_BYTES).decode()
    parts: list[dict[str, Any]] = [
        {"inline_data": {"mime_type": "image/jpeg", "data": data}} for _ in range(images)
    ]
    parts.append({"text": prompt})
    image_config: dict[str, str] = {"aspectRatio": "1:1"}
    if image_size:
        image_config["imageSize"] = image_size
    return {
        "contents": [{"parts": parts}],
        "generationConfig": {"responseModalities": ["IMAGE"], "imageConfig": image_config},
    }


def generate(
    client: httpx.Client, payload: Any, *, model: str = FLASH, key: str | None = "AIza-test"
) -> httpx.Response:
    headers = {"x-goog-api-key": key} if key is not None else {}
    return client.post(f"/v1beta/models/{model}:generateContent", json=payload, headers=headers)


def test_image_mode_returns_a_decodable_png_and_records_the_request(fake, client):
    response = generate(client, body(images=2, prompt="swap the background"))

    assert response.status_code == 200
    candidate = response.json()["candidates"][0]
    assert candidate["finishReason"] == "STOP"
    inline = candidate["content"]["parts"][0]["inlineData"]
    assert inline["mimeType"] == "image/png"
    image = Image.open(io.BytesIO(base64.b64decode(inline["data"])))
    image.load()
    assert image.format == "PNG"
    assert image.size == (64, 64)

    assert fake.calls == 1
    recorded = fake.requests[0]
    assert recorded["model"] == FLASH
    assert recorded["api_key"] == "AIza-test"
    parts = recorded["body"]["contents"][0]["parts"]
    assert parts[0]["inline_data"] == {"mime_type": "image/jpeg", "data": len(JPEG_BYTES)}
    assert parts[1]["inline_data"]["data"] == len(JPEG_BYTES)
    assert parts[2] == {"text": "swap the background"}
    assert recorded["body"]["generationConfig"]["imageConfig"] == {"aspectRatio": "1:1"}


def test_camel_case_parts_are_accepted(client):
    payload = {
        "contents": [
            {
                "parts": [
                    {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(b"x" * 10).decode()}},
                    {"text": "go"},
                ]
            }
        ]
    }
    assert generate(client, payload).status_code == 200


def test_the_script_is_consumed_in_order_then_the_default_applies(fake, client):
    fake.set_script(["429", "503", "no_image", "500", "404"])

    statuses = [generate(client, body()) for _ in range(6)]

    assert [r.status_code for r in statuses] == [429, 503, 200, 500, 404, 200]
    assert statuses[0].json()["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert statuses[1].json()["error"] == {
        "code": 503,
        "message": "The model is overloaded. Please try again later.",
        "status": "UNAVAILABLE",
    }
    assert statuses[2].json()["candidates"] == [{"finishReason": "NO_IMAGE", "index": 0}]
    assert statuses[3].json()["error"]["status"] == "INTERNAL"
    assert statuses[4].json()["error"]["status"] == "NOT_FOUND"
    assert "inlineData" in statuses[5].json()["candidates"][0]["content"]["parts"][0]
    assert fake.calls == 6
    assert [r["mode"] for r in fake.requests] == ["429", "503", "no_image", "500", "404", "image"]


@pytest.mark.parametrize("key", [None, ""])
def test_a_missing_api_key_is_permission_denied(client, key):
    response = generate(client, body(), key=key)
    assert response.status_code == 403
    assert response.json()["error"]["status"] == "PERMISSION_DENIED"


def test_response_mime_type_is_rejected(client):
    payload = body()
    payload["generationConfig"]["responseMimeType"] = "image/png"
    response = generate(client, payload)
    assert response.status_code == 400
    assert response.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_image_size_is_only_accepted_by_3_pro_models(client):
    rejected = generate(client, body(image_size="2K"), model=FLASH)
    assert rejected.status_code == 400
    assert rejected.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert generate(client, body(image_size="2K"), model=PRO).status_code == 200


def test_bodies_without_an_image_or_not_json_are_invalid(client):
    text_only = {"contents": [{"parts": [{"text": "hello"}]}]}
    bad_b64 = {"contents": [{"parts": [{"inline_data": {"mime_type": "image/jpeg", "data": "@@@"}}]}]}
    for payload in (text_only, bad_b64):
        assert generate(client, payload).status_code == 400
    not_json = client.post(
        f"/v1beta/models/{FLASH}:generateContent", content=b"{nope", headers={"x-goog-api-key": "k"}
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"]["status"] == "INVALID_ARGUMENT"


def test_hang_mode_makes_the_client_time_out(fake):
    fake.set_script(["hang"])
    started = time.monotonic()
    with httpx.Client(base_url=fake.base_url, timeout=0.5) as c, pytest.raises(httpx.ReadTimeout):
        generate(c, body())
    assert time.monotonic() - started < 2


def test_chunked_request_bodies_and_keep_alive(fake, client):
    encoded = json.dumps(body()).encode()
    padded = encoded[:-1] + b', "pad": "' + b"x" * 3_000_000 + b'"}'

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(padded), 65536):
            yield padded[i : i + 65536]

    response = client.post(
        f"/v1beta/models/{FLASH}:generateContent", content=chunks(), headers={"x-goog-api-key": "k"}
    )
    assert response.status_code == 200
    assert fake.requests[0]["body"]["contents"][0]["parts"][0]["inline_data"]["data"] == len(JPEG_BYTES)

    # two requests on one raw connection
    request = (
        f"POST /v1beta/models/{FLASH}:generateContent HTTP/1.1\r\nHost: x\r\nx-goog-api-key: k\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(encoded)}\r\n\r\n"
    ).encode() + encoded
    with socket.create_connection(("127.0.0.1", fake.port), timeout=5) as sock:
        for _ in range(2):
            sock.sendall(request)
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(65536)
            header_text, _, rest = head.partition(b"\r\n\r\n")
            assert header_text.startswith(b"HTTP/1.1 200 OK")
            length = int(header_text.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(rest) < length:
                rest += sock.recv(65536)
    assert fake.calls == 3


def test_delay_applies_and_concurrency_is_measured(fake):
    fake.delay = 0.2
    results: list[int] = []

    def one() -> None:
        with httpx.Client(base_url=fake.base_url, timeout=5) as c:
            results.append(generate(c, body()).status_code)

    threads = [threading.Thread(target=one) for _ in range(8)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started

    assert results == [200] * 8
    assert elapsed >= 0.2
    # All eight were held at once (no wall-clock bound: on a loaded machine it proves nothing more).
    assert fake.max_inflight == 8
    assert fake.inflight == 0


def test_http_control_endpoints(fake, client):
    assert client.post("/__delay", params={"s": "0.05"}).json()["delay"] == 0.05
    stats = client.post("/__mode", params={"default": "no_image", "script": "429,500"}).json()
    assert stats["default_mode"] == "no_image"
    assert client.post("/__mode", params={"default": "bogus"}).status_code == 400

    codes = [generate(client, body()).status_code for _ in range(3)]
    assert codes == [429, 500, 200]
    assert generate(client, body()).json()["candidates"][0]["finishReason"] == "NO_IMAGE"

    stats = client.get("/__stats").json()
    assert {k: stats[k] for k in ("calls", "max_inflight", "inflight", "delay", "default_mode")} == {
        "calls": 4,
        "max_inflight": 1,
        "inflight": 0,
        "delay": 0.05,
        "default_mode": "no_image",
    }

    client.post("/__reset")
    stats = client.get("/__stats").json()
    assert (stats["calls"], stats["delay"], stats["default_mode"]) == (0, 0.0, "image")
    assert fake.requests == []


def test_unknown_paths_are_not_found(client):
    assert client.get("/v1beta/models").status_code == 404
    assert client.get(f"/v1beta/models/{FLASH}:generateContent").status_code == 404
