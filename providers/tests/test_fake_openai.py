"""The fake OpenAI server used by provider tests and benchmarks speaks the real wire format."""

import base64
import io
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from PIL import Image

from providers.tests.fakes.gemini import PNG_BYTES
from providers.tests.fakes.openai import JPEG_BYTES, WEBP_BYTES, FakeOpenAI, parse_multipart

MODEL = "gpt-image-1.5"
KEY = "sk-test"

FileSpec = tuple[str, bytes, str]


@pytest.fixture(scope="module")
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    server.reset()
    yield server
    server.reset()


@pytest.fixture
def client(fake: FakeOpenAI) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.base_url, timeout=5) as c:
        yield c


def photo(name: str = "photo.jpg", data: bytes = JPEG_BYTES, content_type: str = "image/jpeg") -> FileSpec:
    return (name, data, content_type)


def edit(
    client: httpx.Client,
    *,
    images: list[FileSpec] | None = None,
    key: str | None = KEY,
    **fields: Any,
) -> httpx.Response:
    data = {"model": MODEL, "prompt": "make it pop", **fields}
    data = {name: str(value) for name, value in data.items() if value is not None}
    files = [("image[]", spec) for spec in (images if images is not None else [photo()])]
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    if not files:  # httpx would send a urlencoded body: build the multipart body by hand
        body = b"".join(
            b'--bnd\r\nContent-Disposition: form-data; name="%s"\r\n\r\n%s\r\n' % (k.encode(), v.encode())
            for k, v in data.items()
        )
        headers["Content-Type"] = "multipart/form-data; boundary=bnd"
        return client.post("/v1/images/edits", content=body + b"--bnd--\r\n", headers=headers)
    return client.post("/v1/images/edits", data=data, files=files, headers=headers)


def decode(response: httpx.Response) -> Image.Image:
    image = Image.open(io.BytesIO(base64.b64decode(response.json()["data"][0]["b64_json"])))
    image.load()
    return image


@pytest.mark.parametrize(
    ("output_format", "pil_format"), [("png", "PNG"), ("jpeg", "JPEG"), ("webp", "WEBP")]
)
def test_success_returns_an_image_in_the_requested_output_format(client, output_format, pil_format):
    response = edit(client, output_format=output_format, size="1536x1024", quality="medium")

    assert response.status_code == 200
    payload = response.json()
    assert decode(response).format == pil_format
    assert (payload["output_format"], payload["size"], payload["quality"]) == (
        output_format,
        "1536x1024",
        "medium",
    )
    assert payload["background"] == "opaque"
    assert isinstance(payload["created"], int)
    usage = payload["usage"]
    assert usage["total_tokens"] == usage["input_tokens"] + usage["output_tokens"]
    details = usage["input_tokens_details"]
    assert details["image_tokens"] + details["text_tokens"] == usage["input_tokens"]


def test_defaults_and_n_images(client):
    payload = edit(client, n=2).json()
    assert (payload["output_format"], payload["size"], payload["quality"]) == ("png", "1024x1024", "high")
    assert [base64.b64decode(d["b64_json"]) for d in payload["data"]] == [PNG_BYTES, PNG_BYTES]


def test_images_are_recorded_in_order_with_their_lengths(fake, client):
    images = [
        photo("photo.jpg"),
        ("template-1.png", PNG_BYTES, "image/png"),
        ("template-2.webp", WEBP_BYTES, "image/webp"),
    ]
    response = edit(client, images=images, prompt="swap the background", output_format="jpeg", quality="low")

    assert response.status_code == 200
    assert fake.calls == 1
    assert fake.requests == [
        {
            "model": MODEL,
            "api_key": KEY,
            "fields": {
                "model": MODEL,
                "prompt": "swap the background",
                "output_format": "jpeg",
                "quality": "low",
            },
            "images": [
                {"filename": "photo.jpg", "content_type": "image/jpeg", "length": len(JPEG_BYTES)},
                {"filename": "template-1.png", "content_type": "image/png", "length": len(PNG_BYTES)},
                {"filename": "template-2.webp", "content_type": "image/webp", "length": len(WEBP_BYTES)},
            ],
            "mode": "image",
            "n": 1,
        }
    ]


def test_the_script_is_consumed_in_order_then_the_default_applies(fake, client):
    fake.set_script(["429", "503", "500", "400", "moderation"])

    responses = [edit(client) for _ in range(6)]

    assert [r.status_code for r in responses] == [429, 503, 500, 400, 400, 200]
    errors = [r.json()["error"] for r in responses[:5]]
    assert [(e["type"], e["code"]) for e in errors] == [
        ("requests", "rate_limit_exceeded"),
        ("server_error", None),
        ("server_error", None),
        ("invalid_request_error", None),
        ("image_generation_user_error", "moderation_blocked"),
    ]
    assert all(set(e) == {"message", "type", "param", "code"} for e in errors)
    assert "data" in responses[5].json()
    assert [r["mode"] for r in fake.requests] == ["429", "503", "500", "400", "moderation", "image"]
    assert [r["n"] for r in fake.requests] == [1, 2, 3, 4, 5, 6]


def test_quota_mode_is_an_insufficient_quota_429(fake, client):
    fake.default_mode = "quota"
    for _ in range(2):
        response = edit(client)
        assert response.status_code == 429
        error = response.json()["error"]
        assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")


@pytest.mark.parametrize("authorization", [None, "", "Bearer", "Basic c2stdGVzdA=="])
def test_a_missing_or_invalid_bearer_key_is_401(fake, client, authorization):
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = client.post(
        "/v1/images/edits",
        data={"model": MODEL, "prompt": "x"},
        files=[("image[]", photo())],
        headers=headers,
    )
    assert response.status_code == 401
    error = response.json()["error"]
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_api_key")
    assert fake.requests[0]["api_key"] == ""


@pytest.mark.parametrize(
    ("kwargs", "param"),
    [
        ({"prompt": None}, "prompt"),
        ({"prompt": ""}, "prompt"),
        ({"images": []}, "image"),
        ({"images": [photo()] * 17}, "image"),
        ({"size": "512x512"}, "size"),
        ({"output_format": "gif"}, "output_format"),
        ({"output_compression": 80}, "output_compression"),
        ({"output_compression": 80, "output_format": "png"}, "output_compression"),
        ({"output_compression": 101, "output_format": "jpeg"}, "output_compression"),
        ({"quality": "ultra"}, "quality"),
        ({"n": 0}, "n"),
        ({"bogus": "1"}, "bogus"),
        ({"images": [photo(), photo("notes.txt", b"just some text", "image/png")]}, "image[1]"),
        ({"images": [photo("photo.jpg", JPEG_BYTES, "application/octet-stream")]}, "image[0]"),
    ],
)
def test_invalid_requests_are_400_with_the_param(client, kwargs, param):
    response = edit(client, **kwargs)
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == param


def test_compression_is_accepted_with_jpeg_and_webp(client):
    for output_format in ("jpeg", "webp"):
        assert edit(client, output_format=output_format, output_compression=50).status_code == 200


def test_sixteen_images_and_a_single_image_field_are_accepted(fake, client):
    assert edit(client, images=[photo()] * 16).status_code == 200
    response = client.post(
        "/v1/images/edits",
        data={"model": MODEL, "prompt": "x"},
        files={"image": photo()},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert response.status_code == 200
    assert len(fake.requests[0]["images"]) == 16
    assert len(fake.requests[1]["images"]) == 1


def test_a_body_that_is_not_multipart_is_400(client):
    response = client.post(
        "/v1/images/edits", json={"prompt": "x"}, headers={"Authorization": f"Bearer {KEY}"}
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_the_multipart_parser_is_binary_safe():
    payload = b"\r\n--xx\r\n--x" + bytes(range(256)) + b"\r\n"
    body = (
        b"preamble\r\n--b0\r\n"
        b'Content-Disposition: form-data; name="prompt"\r\n\r\n'
        b"line 1\r\nline 2\r\n"
        b"--b0\r\n"
        b'Content-Disposition: form-data; name="image[]"; filename="a b.png"\r\n'
        b"Content-Type: image/png\r\n\r\n" + payload + b"\r\n--b0--\r\nepilogue"
    )
    prompt, image = parse_multipart(body, "b0")
    assert (prompt.name, prompt.filename, prompt.text) == ("prompt", None, "line 1\r\nline 2")
    assert (image.name, image.filename, image.content_type) == ("image[]", "a b.png", "image/png")
    assert (image.length, image.text) == (len(payload), None)


def test_hang_mode_makes_the_client_time_out(fake):
    fake.set_script(["hang"])
    started = time.monotonic()
    with httpx.Client(base_url=fake.base_url, timeout=0.5) as c, pytest.raises(httpx.ReadTimeout):
        edit(c)
    assert time.monotonic() - started < 2


def test_http_control_endpoints(fake, client):
    assert client.post("/__delay", params={"s": "0.05"}).json()["delay"] == 0.05
    stats = client.post("/__mode", params={"default": "quota", "script": "429,500"}).json()
    assert (stats["default_mode"], stats["script"]) == ("quota", ["429", "500"])
    assert client.post("/__mode", params={"default": "no_image"}).status_code == 400

    assert [edit(client).status_code for _ in range(3)] == [429, 500, 429]
    assert fake.requests[2]["mode"] == "quota"

    stats = client.get("/__stats").json()
    assert {k: stats[k] for k in ("calls", "max_inflight", "inflight", "delay", "default_mode")} == {
        "calls": 3,
        "max_inflight": 1,
        "inflight": 0,
        "delay": 0.05,
        "default_mode": "quota",
    }

    client.post("/__reset")
    stats = client.get("/__stats").json()
    assert (stats["calls"], stats["delay"], stats["default_mode"]) == (0, 0.0, "image")
    assert fake.requests == []


def test_unknown_paths_are_not_found(client):
    response = client.get("/v1/images/edits")
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Invalid URL (GET /v1/images/edits)"
    assert client.post("/v1/images/generations").status_code == 404
