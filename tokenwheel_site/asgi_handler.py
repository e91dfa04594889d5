"""Django's ASGI handler, with the middleware chain and the view run in one
sync call.

Django builds the chain for async (``load_middleware(is_async=True)``). Each
``MiddlewareMixin`` middleware (most of Django's own) then hands its
``process_request`` and ``process_response`` to a thread and back
(``sync_to_async``), and so do a sync-only one (WhiteNoise) and the sync
view: about 17 thread switches per request with this site's 12 middlewares.
Under a class of 40 the switches (asgiref's context copies, futures, thread
wake-ups) were a fifth of the web process's Python time. Every view here is
sync and so is the ORM, so nothing gains from the async chain: this handler
builds the sync chain, as WSGI would, and runs it in one ``sync_to_async``
call on the request's own thread (the one Django's handler would have used).
"""

import django
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.base import BaseHandler


class OneHopASGIHandler(ASGIHandler):
    def __init__(self):
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_asgi_application():
    """``django.core.asgi.get_asgi_application()`` with this handler."""
    django.setup(set_prefix=False)
    return OneHopASGIHandler()
