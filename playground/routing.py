from django.urls import re_path

from . import consumers

websocket_urlpatterns = [
    re_path(r"^ws/playground/?$", consumers.PlaygroundConsumer.as_asgi(), name="playground-ws"),
]
