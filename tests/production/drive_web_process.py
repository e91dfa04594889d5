"""Run by test_stack.py in a process of its own, with MODELWORKER_BACKEND=channels:
drive the ASGI application through the wheel API and a playground websocket,
then print (JSON) the status codes, the websocket's message types, and every
torch/transformers module the process imported (with where the first came from)."""

import asyncio
import json
import sys
import traceback

first_import = []


class ImportSpy:
    """Remembers where torch (or transformers) was first imported from."""

    def find_spec(self, name, path=None, target=None):
        if name in ("torch", "transformers") and not first_import:
            first_import.append("".join(traceback.format_stack(limit=14)[:-1]))
        return None


sys.meta_path.insert(0, ImportSpy())

import django  # noqa: E402

django.setup()

from django.test import Client  # noqa: E402

from tokenwheel_site.asgi import application  # noqa: E402


def drive_wheel():
    c = Client()
    sid = c.post("/api/sessions", {}, content_type="application/json").json()["session_id"]
    calls = [
        c.post(f"/api/sessions/{sid}/set-prompt", {"prompt": "Once upon a time"}, content_type="application/json"),
        c.get(f"/api/sessions/{sid}/next-token-probs"),
        c.post(f"/api/sessions/{sid}/append-token", {"category": "sample"}, content_type="application/json"),
        c.post(f"/api/sessions/{sid}/append-token", {"category": "other"}, content_type="application/json"),
        c.post(f"/api/sessions/{sid}/undo"),
        c.get(f"/api/sessions/{sid}/statistics"),
        c.post(f"/api/sessions/{sid}/compare", {"n": 3}, content_type="application/json"),
        c.post(f"/api/sessions/{sid}/fork"),
        c.get(f"/api/sessions/{sid}/export?format=csv"),
        c.get("/api/models"),
        c.get("/healthz"),
        c.delete(f"/api/sessions/{sid}"),
    ]
    return [r.status_code for r in calls]


async def drive_websocket():
    from channels.testing import WebsocketCommunicator

    ws = WebsocketCommunicator(application, "/ws/playground/", headers=[(b"origin", b"http://127.0.0.1")])
    connected, _ = await ws.connect(timeout=10)
    if not connected:
        return ["not connected"]
    seen = []
    await ws.send_json_to({"type": "start", "text": "Hello", "max_tokens": 3, "speed_ms": 100})
    try:
        while True:
            message = await ws.receive_json_from(timeout=20)
            seen.append(message["type"])
            if message["type"] in ("done", "error"):
                break
    finally:
        await ws.disconnect()
    return seen


statuses = drive_wheel()
try:
    import playground.consumers  # noqa: F401

    ws_messages = asyncio.run(drive_websocket())
except ImportError:  # the playground is not there yet
    ws_messages = []
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("torch", "transformers", "accelerate", "gguf"))
print(json.dumps({"statuses": statuses, "ws": ws_messages, "heavy": heavy, "where": first_import}))
