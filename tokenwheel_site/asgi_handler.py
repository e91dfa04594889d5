"""Django's ASGI handler, with a request served in one sync call on a
long-lived thread, as a threaded WSGI server would.

Django builds the chain for async (``load_middleware(is_async=True)``). Each
``MiddlewareMixin`` middleware (most of Django's own) then hands its
``process_request`` and ``process_response`` to a thread and back
(``sync_to_async``), and so do a sync-only one (WhiteNoise) and the sync
view: about 17 thread switches per request with this site's 12 middlewares.
Under a class of 40 the switches (asgiref's context copies, futures, thread
wake-ups) were a fifth of the web process's Python time. Every view here is
sync and so is the ORM, so nothing gains from the async chain: this handler
builds the sync chain, as WSGI would.

It also serves the request in one hop to a thread, where Django's
``handle()`` takes three (the ``request_started`` signal, the chain, the
response's ``close()`` with ``request_finished``), each on a thread made for
that one request (``ThreadSensitiveContext``), and watches for a disconnect
with two tasks. Served in-process, that was ~1.2 ms of CPU a request beside
Django's test client's ~1.8 ms for the same session read. Here the signal,
the chain and the close run in one call on a pool thread that lives on
(``WEB_REQUEST_THREADS``; a request beyond them waits for one, first come
first served); a streamed response (a static file) is still sent and closed
Django's way. Without the disconnect watch, a client that leaves mid-request
only means the response goes nowhere: a sync view cannot be stopped anyway,
and each model call is bounded by the request's deadline.

Before a request goes to a thread, :mod:`.admission` may refuse it (503
busy) when the process is already too far behind.

Written against Django 5.2's ``ASGIHandler`` (``read_body``,
``create_request``, ``send_response``); pinned in pyproject.toml.
"""

from concurrent.futures import ThreadPoolExecutor

import django
from asgiref.sync import sync_to_async
from corsheaders.middleware import CorsMiddleware
from django.conf import settings
from django.core import signals
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.core.handlers.base import BaseHandler
from django.core.exceptions import RequestAborted
from django.http import FileResponse
from django.urls import set_script_prefix

from common.http import json_error

from .admission import Admission


class OneHopASGIHandler(ASGIHandler):
    def __init__(self):
        BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self.threads = ThreadPoolExecutor(max_workers=settings.WEB_REQUEST_THREADS, thread_name_prefix="request")
        self.admission = Admission(settings.WEB_MAX_WAIT_SECONDS, settings.WEB_SHED_MIN_IN_FLIGHT)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        # thread_sensitive=False with our executor: asgiref still records this
        # event loop for the thread, so async_to_sync in a view (a channel
        # layer's group_send) runs on it, as under Django's own handler.
        try:
            refusal = self.admission.refusal(scope["path"].removeprefix(get_script_prefix(scope).rstrip("/")))
            if refusal is not None:
                await self.send_response(self.refused(scope, body_file, json_error(refusal)), send)
                return
            self.admission.started()
            try:
                response = await sync_to_async(self.respond, thread_sensitive=False, executor=self.threads)(scope, body_file)
            finally:
                self.admission.finished()
            try:
                await self.send_response(response, send)
            finally:
                if response.streaming:
                    await sync_to_async(response.close, thread_sensitive=False, executor=self.threads)()
        finally:
            body_file.close()

    def refused(self, scope, body_file, response):
        """The refusal with the CORS headers an allowed origin gets (the
        rest of the chain is skipped: it is what the refusal saves)."""
        request, _ = self.create_request(scope, body_file)
        return response if request is None else CorsMiddleware(lambda request: response)(request)

    def respond(self, scope, body_file):
        """What Django's ``handle()`` does around the chain, in this one thread."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
        response._handler_class = self.__class__
        if isinstance(response, FileResponse):
            response.block_size = self.chunk_size  # the server chunks
        if not response.streaming:
            # Its body is in memory: request_finished (which closes this
            # thread's database connection) fires here, as WSGI does.
            response.close()
        return response


def get_asgi_application():
    """``django.core.asgi.get_asgi_application()`` with this handler."""
    django.setup(set_prefix=False)
    return OneHopASGIHandler()
