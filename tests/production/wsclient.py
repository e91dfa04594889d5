"""A small blocking websocket client (RFC 6455) for tests and the load benchmark.

Small on purpose: it lets a test send what browsers never would (binary and
1 MB frames, text that is not JSON, a foreign Origin) and see exactly how
the server answers, with no dependency beyond the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
import time
from urllib.parse import urlsplit

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class HandshakeRejected(Exception):
    def __init__(self, status: int, body: bytes):
        super().__init__(f"websocket handshake rejected with HTTP {status}")
        self.status = status
        self.body = body


class Closed(Exception):
    def __init__(self, code: int | None, reason: str = ""):
        super().__init__(f"websocket closed ({code}) {reason}")
        self.code = code
        self.reason = reason


class WebSocket:
    def __init__(self, url: str, origin: str | None = "auto", cookies: dict | None = None, timeout: float = 10):
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or 80
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self._buffer = b""
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if origin == "auto":
            origin = f"http://{host}:{port}"
        if origin:
            lines.append(f"Origin: {origin}")
        if cookies:
            lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in cookies.items()))
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = self._read_until(b"\r\n\r\n", timeout)
        status = int(head.split(b" ", 2)[1])
        if status != 101:
            raise HandshakeRejected(status, self._buffer)
        expected = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest())
        if expected not in head:
            raise HandshakeRejected(status, b"bad Sec-WebSocket-Accept")

    # ---- sending

    def send_text(self, text: str):
        self._send_frame(0x1, text.encode("utf-8", "surrogatepass"))

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def send_binary(self, data: bytes):
        self._send_frame(0x2, data)

    def _send_frame(self, opcode: int, payload: bytes):
        n = len(payload)
        header = bytes([0x80 | opcode])
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 65536:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        if n:
            repeated = (mask * (n // 4 + 1))[:n]
            payload = (int.from_bytes(payload, "big") ^ int.from_bytes(repeated, "big")).to_bytes(n, "big")
        self.sock.sendall(header + mask + payload)

    # ---- receiving

    def recv(self, timeout: float = 10) -> str | bytes:
        """The next text (str) or binary (bytes) message; raises Closed or TimeoutError."""
        deadline = time.monotonic() + timeout
        message, kind = b"", None
        while True:
            fin, opcode, payload = self._read_frame(deadline)
            if opcode == 0x8:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                try:
                    self._send_frame(0x8, payload[:2])
                except OSError:
                    pass
                raise Closed(code, payload[2:].decode(errors="replace"))
            if opcode == 0x9:
                self._send_frame(0xA, payload)
                continue
            if opcode == 0xA:
                continue
            if opcode in (0x1, 0x2):
                kind = opcode
            message += payload
            if fin:
                return message.decode() if kind == 0x1 else message

    def recv_json(self, timeout: float = 10) -> dict:
        return json.loads(self.recv(timeout))

    def _read_frame(self, deadline):
        head = self._read_exact(2, deadline)
        fin, opcode = head[0] & 0x80, head[0] & 0x0F
        n = head[1] & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read_exact(2, deadline))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_exact(8, deadline))[0]
        if head[1] & 0x80:  # servers do not mask, but be lenient
            mask = self._read_exact(4, deadline)
            data = self._read_exact(n, deadline)
            data = bytes(b ^ mask[i % 4] for i, b in enumerate(data))
        else:
            data = self._read_exact(n, deadline)
        return fin, opcode, data

    def _read_exact(self, n, deadline) -> bytes:
        while len(self._buffer) < n:
            self._fill(deadline)
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def _read_until(self, marker, timeout) -> bytes:
        deadline = time.monotonic() + timeout
        while marker not in self._buffer:
            self._fill(deadline)
        head, self._buffer = self._buffer.split(marker, 1)
        return head

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no websocket data in time")
        self.sock.settimeout(left)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            raise TimeoutError("no websocket data in time") from None
        if not chunk:
            raise Closed(None, "connection closed")
        self._buffer += chunk

    def close(self):
        try:
            self._send_frame(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
