"""Helpers for the playground's websocket tests: a communicator through the
whole ASGI application (origin check, auth, routing), as a browser reaches it;
reading server messages (the stream's tests read them too)."""

import asyncio
import json

import pytest
from channels.testing import WebsocketCommunicator

ORIGIN = (b"origin", b"http://testserver")


class Messages:
    """Reading a stream of server messages: ``recv(timeout)`` is the reader's own."""

    async def recv(self, timeout=10):
        raise NotImplementedError

    async def until(self, kind, timeout=20, collect=None):
        """Messages until one of type ``kind`` (returned); the others go into ``collect``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            left = deadline - loop.time()
            if left <= 0:
                raise AssertionError(f"no {kind!r} message within {timeout} s; got {collect}")
            msg = await self.recv(timeout=left)
            if msg["type"] == kind:
                return msg
            if collect is not None:
                collect.append(msg)

    async def tokens(self, n, timeout=60):
        """The next ``n`` token messages (failing on an error or done before them)."""
        out = []
        while len(out) < n:
            msg = await self.recv(timeout=timeout)
            assert msg["type"] not in ("error", "done"), msg
            if msg["type"] == "token":
                out.append(msg)
        return out


class Socket(Messages):
    """A connected playground websocket with small conveniences."""

    def __init__(self, communicator):
        self.c = communicator
        self.closed = False
        self.hello = None
        self.models = None

    async def send(self, **msg):
        await self.c.send_json_to(msg)

    async def send_raw(self, text=None, data=None):
        if data is not None:
            await self.c.send_to(bytes_data=data)
        else:
            await self.c.send_to(text_data=text)

    async def recv(self, timeout=10):
        return await self.c.receive_json_from(timeout=timeout)

    async def nothing(self, timeout=0.5):
        return await self.c.receive_nothing(timeout=timeout)

    async def close(self):
        self.closed = True
        await self.c.disconnect(timeout=20)


async def open_socket(cookies: dict | None = None, origin=ORIGIN) -> Socket:
    from tokenwheel_site.asgi import application

    headers = [origin] if origin else []
    if cookies:
        headers.append((b"cookie", "; ".join(f"{k}={v}" for k, v in cookies.items()).encode()))
    communicator = WebsocketCommunicator(application, "/ws/playground/", headers=headers)
    connected, _ = await communicator.connect(timeout=10)
    assert connected
    sock = Socket(communicator)
    sock.hello = await sock.recv()
    assert sock.hello["type"] == "hello"
    sock.models = await sock.recv()
    assert sock.models["type"] == "models"
    return sock


@pytest.fixture
async def ws(engine):
    """``await ws()`` opens a socket; every socket still open is closed after
    the test (as a browser leaving the page would), so its stream is freed."""
    opened = []

    async def make(**kwargs):
        sock = await open_socket(**kwargs)
        opened.append(sock)
        return sock

    yield make
    for sock in opened:
        if not sock.closed:
            await sock.close()


def as_json(obj):
    return json.loads(json.dumps(obj))
