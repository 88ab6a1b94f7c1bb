"""The HTTP side of the app: one static page, a JSON endpoint, and the socket they share.

Starlette (routing, static files) on uvicorn (the server), both small and well kept. An
upload is read as the request body (no multipart parser), at most MAX_UPLOAD bytes of it, and
decoded by mnistx.data.digit_image, which refuses images over its pixel limit from their header;
at most DECODERS uploads are decoded at once, so memory stays bounded whatever is sent.
"""

from __future__ import annotations

import errno
import ipaddress
import socket
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote

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
            data = await _body(request)
        except _TooLarge:
            return _error(
                f"{name}: the file is larger than {MAX_UPLOAD // 2**20} MB, the most this page "
                "reads. Send a smaller image of the digit (a crop, or a PNG/JPEG under "
                f"{MAX_UPLOAD // 2**20} MB).",
                413,
            )
        if not data:
            return _error("No image in the request: POST the image file's bytes as the body.", 400)
        try:
            return JSONResponse(await run_in_threadpool(answer, data, name))
        except UserError as e:
            return _error(str(e), 413 if isinstance(e, ImageTooLarge) else 400)

    return Starlette(
        routes=[
            Route("/", page),
            Route("/api/models", served),
            Route("/api/predict", predict, methods=["POST"]),
            Mount("/static", StaticFiles(directory=STATIC)),
        ],
        middleware=[Middleware(_Headers)],
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

    config = uvicorn.Config(
        app, log_level="warning", access_log=False, limit_concurrency=64, server_header=False
    )
    uvicorn.Server(config).run(sockets=[sock])
