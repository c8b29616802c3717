"""An edit's image_urls: issued URLs, data URIs, remote URLs (unfetched or fetched)."""

import base64
import io
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mock_server.engine import inputs
from mock_server.engine.inputs import CheckedInputs, FetchPolicy, check_image_urls
from mock_server.images.tokens import encode_image_token
from mock_server.types import DecodedImage, ImageSpec, IssuedImage, RemoteImage

SECRET = b"url-secret"
SPEC = ImageSpec("blackforestlabs/flux-2", "a red fox", 1472, 512, "png", 42, 0)
TOKEN = encode_image_token(SPEC, SECRET)
LOCAL = "http://127.0.0.1:8000"


def image_bytes(
    image_format: str = "PNG", size: tuple[int, int] = (40, 30), colour: object = (200, 30, 30)
) -> bytes:
    buffer = io.BytesIO()
    mode = "RGBA" if isinstance(colour, tuple) and len(colour) == 4 else "RGB"
    Image.new(mode, size, colour).save(buffer, image_format)  # type: ignore[arg-type]
    return buffer.getvalue()


def data_uri(data: bytes, media_type: str = "image/png") -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def check(*urls: object, fetch: FetchPolicy | None = None) -> CheckedInputs:
    return check_image_urls(list(urls), secret=SECRET, local_bases=[LOCAL], fetch=fetch)


def problems(result: CheckedInputs) -> list[tuple[str, str, str]]:
    return [(v.field, v.code, v.message) for v in result.violations]


@pytest.mark.parametrize(
    "url",
    [
        f"{LOCAL}/files/{TOKEN}.png",
        f"https://mock.example.test/files/{TOKEN}.png?download=1",
        f"http://localhost:9999/prefix/files/{TOKEN}.png",
    ],
    ids=["this-host", "another-host-with-query", "public-url-with-a-path"],
)
def test_an_issued_url_resolves_to_the_image_it_serves(url: str) -> None:
    result = check(url)
    assert result == CheckedInputs(images=(IssuedImage(SPEC),))


def test_issued_edits_resolve_with_their_own_inputs() -> None:
    edit = ImageSpec("m", "p", 512, 512, "webp", 1, 0, (RemoteImage("https://a.test/x.png"),))
    url = f"{LOCAL}/files/{encode_image_token(edit, SECRET)}.webp"
    assert check(url).images == (IssuedImage(edit),)


@pytest.mark.parametrize(
    "url",
    [
        f"{LOCAL}/files/{TOKEN[:-1]}A.png",
        f"{LOCAL}/files/{TOKEN}.jpeg",
        f"{LOCAL}/files/{encode_image_token(SPEC, b'another-secret')}.png",
        f"{LOCAL}/v1/models",
    ],
    ids=["tampered", "wrong-extension", "other-secret", "not-an-image-route"],
)
def test_a_url_on_this_fake_that_it_did_not_issue_is_refused(url: str) -> None:
    assert problems(check(url)) == [
        (
            "image_urls.0",
            "custom",
            "Unknown image URL: it points at this fake but at no image it issued (a tampered "
            "token, or one signed with another --url-secret)",
        )
    ]


def test_other_http_urls_are_accepted_without_fetching() -> None:
    urls = ["https://example.com/t-rex.png", f"https://cdn.example.com/files/{TOKEN[:-1]}A.png"]
    result = check(*urls)
    assert result.images == (RemoteImage(urls[0]), RemoteImage(urls[1]))
    assert result.unfetched == tuple(urls)
    assert result.violations == [] and result.fetched == ()


@pytest.mark.parametrize(
    ("image_format", "media_type"),
    [("PNG", "image/png"), ("JPEG", "image/jpeg"), ("WEBP", "image/webp")],
)
def test_a_data_uri_is_decoded(image_format: str, media_type: str) -> None:
    result = check(data_uri(image_bytes(image_format, (64, 48)), media_type))
    assert result.violations == []
    (image,) = result.images
    assert isinstance(image, DecodedImage)
    assert (image.width, image.height, image.format, image.source) == (
        64,
        48,
        image_format.lower(),
        "data",
    )
    red, green, blue = image.mosaic[:3]
    assert red > 180 and green < 60 and blue < 60
    assert len(image.mosaic) == 8 * 8 * 3


def test_transparent_and_palette_images_decode_without_warnings() -> None:
    transparent = image_bytes("PNG", (16, 16), (0, 0, 255, 0))
    palette = io.BytesIO()
    Image.new("P", (16, 16), 1).save(palette, "PNG", transparency=1)
    result = check(data_uri(transparent), data_uri(palette.getvalue()))
    assert result.violations == [] and len(result.images) == 2


def test_the_data_uri_header_is_read_leniently() -> None:
    uri = "DATA:Image/PNG;name=x.png;BASE64," + base64.b64encode(image_bytes()).decode().rstrip("=")
    assert check(uri).violations == []


def png_claiming(width: int, height: int) -> bytes:
    """A 1x1 PNG whose header claims another size."""
    data = bytearray(image_bytes("PNG", (1, 1)))
    ihdr = data.index(b"IHDR")
    data[ihdr + 4 : ihdr + 12] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr : ihdr + 17]))
    data[ihdr + 17 : ihdr + 21] = struct.pack(">I", crc)
    return bytes(data)


@pytest.mark.parametrize(
    ("url", "code", "message"),
    [
        (
            "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==",
            "invalid_string",
            "Invalid url: expected an http(s) URL or a data:image/png|jpeg|webp;base64,... URI; "
            "this looks like bare base64, send it as data:image/png;base64,<data>, received "
            "'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8…'",
        ),
        (
            "ftp://example.com/a.png",
            "invalid_string",
            "Invalid url: expected an http(s) URL or a data:image/png|jpeg|webp;base64,... URI, "
            "received 'ftp://example.com/a.png'",
        ),
        (
            "https:///a.png",
            "invalid_string",
            "Invalid url: it names no host, received 'https:///a.png'",
        ),
        ("http://[::1/a.png", "invalid_string", "Invalid url, received 'http://[::1/a.png'"),
        ("http://h:port/a.png", "invalid_string", "Invalid url, received 'http://h:port/a.png'"),
        (
            "data:image/gif;base64,R0lGODlhAQABAAAAACw=",
            "invalid_enum_value",
            "Unsupported image type in data URI: expected 'image/png' | 'image/jpeg' | "
            "'image/webp', received 'image/gif'",
        ),
        (
            "data:;base64,AAAA",
            "invalid_enum_value",
            "Unsupported image type in data URI: expected 'image/png' | 'image/jpeg' | "
            "'image/webp', received none",
        ),
        (
            "data:image/png,rawbytes",
            "invalid_string",
            "Invalid data URI: the image must be base64-encoded (data:image/png;base64,...)",
        ),
        (
            "data:image/png;base64",
            "invalid_string",
            "Invalid data URI: no ',' separates its header from its data",
        ),
        (
            "data:image/png;base64,not base64!",
            "invalid_string",
            "Invalid data URI: its data is not valid base64",
        ),
        ("data:image/png;base64,", "custom", "Invalid data URI: it holds no image data"),
        (
            data_uri(b"hello, world"),
            "custom",
            "Not a readable image: the data URI is not a PNG, JPEG or WebP image",
        ),
        (
            data_uri(image_bytes("PNG", (300, 300), (1, 2, 3))[:-40]),
            "custom",
            "Not a readable image: the data URI cannot be decoded (image file is truncated)",
        ),
        (
            data_uri(png_claiming(8200, 8200)),
            "custom",
            "Not a readable image: the data URI is 8200x8200 pixels, more than the 16,777,216 "
            "an input image may have",
        ),
        (
            data_uri(png_claiming(30000, 30000)),
            "custom",
            "Not a readable image: the data URI has too many pixels",
        ),
    ],
    ids=[
        "bare-base64",
        "ftp",
        "no-host",
        "broken-ipv6",
        "bad-port",
        "gif",
        "no-media-type",
        "not-base64-encoded",
        "no-comma",
        "bad-base64",
        "empty",
        "not-an-image",
        "truncated",
        "too-many-pixels",
        "decompression-bomb",
    ],
)
def test_bad_items_name_the_item_and_the_problem(url: str, code: str, message: str) -> None:
    result = check("https://example.com/fine.png", url)
    assert problems(result) == [("image_urls.1", code, message)]
    assert result.images == ()


def test_a_data_uri_over_the_size_cap_is_refused_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(inputs, "MAX_INPUT_BYTES", 1000)
    result = check(data_uri(b"\0" * 3000))
    assert problems(result) == [
        (
            "image_urls.0",
            "too_big",
            "Image too large: the data URI holds 3,000 bytes, more than the 1,000 an input image "
            "may have",
        )
    ]
    assert result.violations[0].expected == 1000


def test_every_bad_item_is_reported() -> None:
    result = check("nope", "https://example.com/a.png", data_uri(b"x"), 7, "data:image/png,x")
    assert [v.field for v in result.violations] == ["image_urls.0", "image_urls.2", "image_urls.4"]


@pytest.mark.parametrize("urls", [None, "https://example.com/a.png", {"url": "x"}, [1, None]])
def test_what_schema_validation_reports_is_left_to_it(urls: object) -> None:
    assert check_image_urls(urls, secret=SECRET) == CheckedInputs()


@settings(max_examples=200, deadline=None)
@given(
    urls=st.lists(st.text(max_size=300) | st.from_regex(r"data:image/png;base64,[A-Za-z0-9+/=]*"))
)
def test_any_text_gets_an_answer_not_an_exception(urls: list[str]) -> None:
    result = check_image_urls(urls, secret=SECRET, local_bases=[LOCAL])
    assert len(result.images) == len(urls) or result.violations


# Fetching, against a small HTTP server on 127.0.0.1.

PNG = image_bytes("PNG", (50, 20), (10, 200, 10))


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        path = self.path
        if path == "/ok.png":
            self._send(200, PNG)
        elif path == "/text":
            self._send(200, b"<html>not an image</html>", "text/html")
        elif path == "/slow.png":
            time.sleep(2)
            self._send(200, PNG)
        elif path == "/declared-big.png":
            self.send_response(200)
            self.send_header("Content-Length", str(50_000_000))
            self.end_headers()
        elif path == "/endless.png":
            self.send_response(200)
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"\0" * 8192)
        elif path == "/redirect":
            self._redirect("/ok.png")
        elif path == "/redirect-ftp":
            self._redirect("ftp://127.0.0.1/ok.png")
        else:
            self._send(404, b"missing", "text/plain")

    def _send(self, status: int, body: bytes, media_type: str = "image/png") -> None:
        self.send_response(status)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the client hanging up on a slow or endless answer is the point of those tests


@pytest.fixture(scope="module")
def image_host() -> Iterator[str]:
    server = _QuietServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


FETCH = FetchPolicy(timeout=0.5, max_bytes=200_000)


@pytest.mark.parametrize("path", ["/ok.png", "/redirect"])
def test_a_fetched_url_is_decoded(image_host: str, path: str) -> None:
    url = image_host + path
    result = check(url, fetch=FETCH)
    assert result.violations == []
    (image,) = result.images
    assert isinstance(image, DecodedImage)
    assert (image.width, image.height, image.format, image.source) == (50, 20, "png", "fetched")
    assert result.fetched == (url,) and result.unfetched == ()


def test_issued_urls_are_resolved_not_fetched(image_host: str) -> None:
    # The host would answer 404: the token alone says what the image is.
    result = check(f"{image_host}/files/{TOKEN}.png", fetch=FETCH)
    assert result.images == (IssuedImage(SPEC),) and result.fetched == ()


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/missing.png", "Could not fetch the image: HTTP 404 Not Found"),
        ("/text", "Not a readable image: the downloaded file is not a PNG, JPEG or WebP image"),
        ("/slow.png", "Could not fetch the image: no answer within 0.5 s"),
        (
            "/declared-big.png",
            "Image too large: the file at the URL has 50,000,000 bytes, more than the 200,000 "
            "an input image may have",
        ),
        (
            "/endless.png",
            "Image too large: the file at the URL has over 262,144 bytes, more than the 200,000 "
            "an input image may have",
        ),
        ("/redirect-ftp", "Could not fetch the image: HTTP 302 redirect to "),
    ],
    ids=["404", "not-an-image", "timeout", "declared-too-big", "too-big", "redirect-to-ftp"],
)
def test_fetch_problems_are_violations(image_host: str, path: str, message: str) -> None:
    result = check(image_host + path, fetch=FETCH)
    (violation,) = result.violations
    assert violation.field == "image_urls.0"
    assert violation.message.startswith(message)


def test_an_unreachable_host_is_a_violation() -> None:
    with socket_closed_port() as port:
        result = check(f"http://127.0.0.1:{port}/a.png", fetch=FETCH)
    (violation,) = result.violations
    assert violation.message.startswith("Could not fetch the image: ")


class socket_closed_port:
    """A port on 127.0.0.1 that nothing listens on, for the ``with`` block."""

    def __enter__(self) -> int:
        import socket

        self._socket = socket.socket()
        self._socket.bind(("127.0.0.1", 0))
        return int(self._socket.getsockname()[1])

    def __exit__(self, *exc: object) -> None:
        self._socket.close()
