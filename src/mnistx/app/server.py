"""The HTTP side of the app: one static page, a JSON endpoint, and the socket they share.

Starlette (routing, static files) on uvicorn (the server), both small and well kept. An
upload is read as the request body (no multipart parser), at most MAX_UPLOAD bytes of it, and
decoded by mnistx.data.digit_image, which refuses images over its pixel limit from their header;
at most UPLOADS bodies are read and DECODERS decoded at once (the others wait briefly, then
get 503), so memory stays bounded whatever is sent. A request must name this machine in its
Host header (a page on another site cannot reach the app by DNS rebinding), and a POST from a
page of another origin is refused; mnistx.compat.uvicorn closes connections that are too slow.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import ipaddress
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mnistx.app.models import ServedModel, ask
from mnistx.errors import UserError

STATIC = Path(__file__).parent / "static"
MAX_UPLOAD = 10 * 1024 * 1024  # bytes of one upload
DECODERS = 2  # uploads decoded at the same time
UPLOADS = 4  # upload bodies read at the same time
UPLOAD_WAIT = 5.0  # seconds an upload waits for its turn before a 503
# Nothing but the page's own files: no CDN, no fonts or scripts from elsewhere, no beacons.
SECURITY_HEADERS = [
    (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


class _Headers:
    """Adds SECURITY_HEADERS to every response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


def _host_name(value: str) -> str:
    """`example.org:7860` -> `example.org`; `[::1]:7860` -> `::1`."""
    if value.startswith("["):
        return value[1 : value.find("]")] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


@functools.cache
def _own_names() -> frozenset[str]:
    return frozenset({"localhost", socket.gethostname().lower(), socket.getfqdn().lower()})


def host_allowed(host: str) -> bool:
    """An IP address, localhost or this machine's own name: never a domain name that an
    attacker's DNS could point here (DNS rebinding)."""
    name = _host_name(host.strip()).lower().rstrip(".")
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name in _own_names()


class _Guard:
    """Refuses a Host header that is not this machine's (421) and a POST from a page of
    another origin (403), before any route runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
            host = headers.get("host", "")
            if not host_allowed(host):
                response = _error(
                    f"Host {host!r} is not this machine: open the page by its address, e.g. "
                    "http://127.0.0.1:7860",
                    421,
                )
                return await response(scope, receive, send)
            origin = headers.get("origin")
            cross = headers.get("sec-fetch-site") == "cross-site"
            if scope["method"] == "POST" and (
                cross or (origin is not None and urlsplit(origin).netloc.lower() != host.lower())
            ):
                response = _error(
                    "A page of another site may not send images here; use this app's own page.",
                    403,
                )
                return await response(scope, receive, send)
        await self.app(scope, receive, send)


class _TooLarge(Exception):
    pass


async def _body(request: Request) -> bytes:
    """The upload, or _TooLarge once it passes MAX_UPLOAD (the rest is read and dropped, so the
    client gets the answer rather than a reset connection)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > 4 * MAX_UPLOAD:
        raise _TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size <= MAX_UPLOAD:
            chunks.append(chunk)
    if size > MAX_UPLOAD:
        raise _TooLarge
    return b"".join(chunks)


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def make_app(models: Sequence[ServedModel]) -> Starlette:
    """The app for these models: GET / (the page), GET /api/models, POST /api/predict."""
    from mnistx.data.digit_image import MAX_PIXELS, ImageTooLarge, load_gray, to_mnist

    decoding = threading.BoundedSemaphore(DECODERS)
    reading = asyncio.Semaphore(UPLOADS)

    def answer(data: bytes, name: str) -> dict[str, Any]:
        with decoding:
            pixels = to_mnist(load_gray(data, name), name)
            return {
                "predictions": ask(models, pixels),
                "input": [[round(float(v), 3) for v in row] for row in pixels],
            }

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html", headers={"cache-control": "no-cache"})

    async def served(request: Request) -> Response:
        return JSONResponse(
            {
                "models": [m.describe() for m in models],
                "limits": {"max_upload_bytes": MAX_UPLOAD, "max_pixels": MAX_PIXELS},
            }
        )

    async def predict(request: Request) -> Response:
        name = unquote(request.headers.get("x-filename", "upload"))[:120] or "upload"
        try:
            await asyncio.wait_for(reading.acquire(), UPLOAD_WAIT)
        except TimeoutError:
            return _error("The app is busy with other uploads; try again in a moment.", 503)
        try:
            data = await _body(request)
            if not data:
                return _error(
                    "No image in the request: POST the image file's bytes as the body.", 400
                )
            return JSONResponse(await run_in_threadpool(answer, data, name))
        except _TooLarge:
            return _error(
                f"{name}: the file is larger than {MAX_UPLOAD // 2**20} MB, the most this page "
                "reads. Send a smaller image of the digit (a crop, or a PNG/JPEG under "
                f"{MAX_UPLOAD // 2**20} MB).",
                413,
            )
        except UserError as e:
            return _error(str(e), 413 if isinstance(e, ImageTooLarge) else 400)
        finally:
            reading.release()

    return Starlette(
        routes=[
            Route("/", page),
            Route("/api/models", served),
            Route("/api/predict", predict, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC)),
        ],
        middleware=[Middleware(_Headers), Middleware(_Guard)],
    )


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or one message saying why there cannot be one."""
    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
    except socket.gaierror:
        raise UserError(
            f"host={host} is not an address of this machine. Leave it out (127.0.0.1: this "
            "machine only) or give one of its addresses, e.g. host=0.0.0.0 for every network."
        ) from None
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError as e:
        sock.close()
        if e.errno == errno.EADDRINUSE:
            raise UserError(
                f"Port {port} on {host} is in use: another program (or another mnistx.serve) "
                f"listens there. Pass another port, e.g. port={port + 1 if port < 65535 else 7860}"
                ", or port=0 for any free one."
            ) from None
        if e.errno == errno.EACCES:
            raise UserError(
                f"Port {port} needs administrator rights. Use a port above 1023, e.g. port=7860."
            ) from None
        raise UserError(
            f"Cannot listen on {host}:{port} ({e.strerror}). Leave host= out for 127.0.0.1, "
            "or give an address of this machine."
        ) from None
    return sock


def run(app: Starlette, sock: socket.socket) -> None:
    """Serve until Ctrl-C (uvicorn shuts down cleanly on SIGINT and SIGTERM)."""
    import uvicorn

    from mnistx.compat.uvicorn import protocol_settings

    # No small limit_concurrency: it counted idle connections, so slow clients made everyone
    # get 503; the protocol's deadline and per-client cap bound them instead.
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        limit_concurrency=1024,
        server_header=False,
        **protocol_settings(),
    )
    uvicorn.Server(config).run(sockets=[sock])
