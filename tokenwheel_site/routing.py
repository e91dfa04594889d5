"""Websocket routes and background channel consumers, gathered from the apps."""

from classrooms.routing import websocket_urlpatterns as classrooms_ws
from modelworker.routing import channel_consumers
from playground.routing import websocket_urlpatterns as playground_ws

websocket_urlpatterns = [*playground_ws, *classrooms_ws]

__all__ = ["websocket_urlpatterns", "channel_consumers"]
