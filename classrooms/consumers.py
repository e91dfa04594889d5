"""``ws://HOST/ws/classes/<id>/live/``: the live class wheel's socket.

Who may connect: the class's members and staff; to anyone else the class
does not exist and the handshake is refused (close code 4404).

* everyone in the class gets ``round`` (the step changed or was reset) and
  ``push`` (the instructor sends the step to every screen, with the URL that
  opens it);
* the class's instructors and staff also get ``spin`` (a student's landed
  token on the open round).

The socket is one-way: actions (reset, next step, push) are HTTP POSTs on the
live page, so they pass CSRF and the same checks as every other page. A
client message gets an ``error`` reply, never a silent drop.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from . import access, live
from .models import Classroom

NOT_FOUND = 4404


@database_sync_to_async
def _role(user, classroom_id):
    classroom = Classroom.objects.filter(pk=classroom_id).first()
    if classroom is None:
        return None, None
    role = access.role_in(user, classroom)
    state = None
    current = live.current_round(classroom)
    if current is not None:
        state = live.round_summary(current)
    return role, state


class LiveClassConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.classroom_id = int(self.scope["url_route"]["kwargs"]["pk"])
        user = self.scope.get("user")
        role, state = await _role(user, self.classroom_id)
        if role is None:
            await self.close(code=NOT_FOUND)
            return
        self.role = role
        self.groups_joined = [live.class_group(self.classroom_id)]
        if role in (access.INSTRUCTOR, access.STAFF):  # those who manage the class
            self.groups_joined.append(live.teachers_group(self.classroom_id))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "role": role, "classroom": self.classroom_id, "round": state})

    async def disconnect(self, code):
        for group in getattr(self, "groups_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong"})
            return
        await self.send_json(
            {"type": "error", "code": "read_only", "message": "This socket only sends; use the live page's buttons."}
        )

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            await super().receive(text_data=text_data, bytes_data=bytes_data, **kwargs)
        except ValueError:
            await self.send_json({"type": "error", "code": "bad_json", "message": "Messages are JSON objects."})

    # ---- group events
    async def live_spin(self, event):
        await self.send_json({**event, "type": "spin"})

    async def live_round(self, event):
        await self.send_json({**event, "type": "round"})

    async def live_push(self, event):
        await self.send_json({**event, "type": "push"})

    async def live_guess(self, event):
        await self.send_json({**event, "type": "guess"})

    async def live_tree(self, event):
        await self.send_json({**event, "type": "tree"})
