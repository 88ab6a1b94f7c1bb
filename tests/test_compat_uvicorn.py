"""What mnistx.compat.uvicorn relies on in uvicorn's internals: fails loudly when a uvicorn
release changes it (then adapt GuardedH11Protocol)."""

from __future__ import annotations

import inspect

import pytest

pytest.importorskip("uvicorn")


def test_uvicorn_h11_protocol_still_has_what_the_guard_uses():
    from uvicorn.protocols.http.h11_impl import H11Protocol

    for hook in ("connection_made", "connection_lost", "data_received", "on_response_complete"):
        assert callable(getattr(H11Protocol, hook, None)), f"H11Protocol.{hook} is gone"
    init = inspect.getsource(H11Protocol.__init__)
    made = inspect.getsource(H11Protocol.connection_made)
    assert "self.loop" in init and "self.conn = h11.Connection" in init
    assert "self.transport = transport" in made and "self.client = " in made
    assert "http" in inspect.signature(__import__("uvicorn").Config).parameters


def test_only_this_machine_names_are_allowed_hosts():
    from mnistx.app.server import host_allowed

    for ok in ("127.0.0.1:7860", "localhost:7860", "[::1]:7860", "10.0.0.5", "LOCALHOST"):
        assert host_allowed(ok), ok
    for bad in ("evil.example:7860", "127.0.0.1.evil.example", ""):
        assert not host_allowed(bad), bad
