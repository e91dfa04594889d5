"""Caps that hold under abuse, for what throttles do not bound: open websockets.

A throttle limits requests per minute; an open socket costs memory and a
stream's share of the model for as long as it stays open. ``SocketCap`` lets
a signed-in user hold at most ``LIMITS["SOCKETS_PER_USER"]`` websockets, and a
client address without a signed-in user ``LIMITS["SOCKETS_PER_ADDRESS"]``
(generous: a whole school can sit behind one NAT address), per web process.
One over the cap is accepted, told why (an ``error`` message the pages
already show) and closed with code 4429.
"""

from __future__ import annotations

import json
from collections import Counter

from django.conf import settings

CLOSE_TOO_MANY = 4429


class SocketCap:
    def __init__(self, app):
        self.app = app
        self.open: Counter = Counter()

    def _ident(self, scope):
        user = scope.get("user")
        if user is not None and getattr(user, "is_authenticated", False):
            return ("user", user.pk), settings.LIMITS["SOCKETS_PER_USER"]
        client = scope.get("client") or ("unknown", 0)
        return ("address", client[0]), settings.LIMITS["SOCKETS_PER_ADDRESS"]

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        ident, limit = self._ident(scope)
        if limit and self.open[ident] >= limit:
            return await self._refuse(receive, send, limit, ident[0])
        self.open[ident] += 1
        try:
            return await self.app(scope, receive, send)
        finally:
            self.open[ident] -= 1
            if self.open[ident] <= 0:
                del self.open[ident]

    async def _refuse(self, receive, send, limit, kind):
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        who = "You have" if kind == "user" else "This network has"
        await send({"type": "websocket.accept"})
        await send(
            {
                "type": "websocket.send",
                "text": json.dumps(
                    {
                        "type": "error",
                        "code": "too_many_sockets",
                        "message": f"{who} {limit} live connections already: close another tab to open one here.",
                    }
                ),
            }
        )
        await send({"type": "websocket.close", "code": CLOSE_TOO_MANY})
