from django.urls import path

from .consumers import LiveClassConsumer

websocket_urlpatterns = [
    path("ws/classes/<int:pk>/live/", LiveClassConsumer.as_asgi()),
]
