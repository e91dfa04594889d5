"""ASGI entry point: HTTP through Django, websockets through Channels."""

import gc
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tokenwheel_site.settings")

# Django's handler, but the middleware and the (sync) view run in one thread switch.
from tokenwheel_site.asgi_handler import get_asgi_application  # noqa: E402

# Django must be set up before any consumer (or model) import.
django_asgi_app = get_asgi_application()

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ChannelNameRouter, ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from modelworker import client  # noqa: E402
from tokenwheel_site.limits import SocketCap  # noqa: E402
from tokenwheel_site.routing import channel_consumers, websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(SocketCap(URLRouter(websocket_urlpatterns)))),
        "channel": ChannelNameRouter(channel_consumers),
    }
)

# Django, DRF and the app are loaded and live as long as the process: keep
# them out of the cyclic collector's full passes. Under 120 students each of
# those passes held the interpreter lock for 70-90 ms; after freeze(), 10-30.
gc.freeze()

# Start loading the default model now (on its own thread) so the first student
# does not wait for it. Never at import time of settings/apps: `migrate` must not load torch.
client.preload_default()
