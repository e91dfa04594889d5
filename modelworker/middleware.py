"""One model budget per HTTP request.

Without it each model call had ``MODELWORKER["TIMEOUT_SECONDS"]`` of its own,
counted from when the call started: a request that first waited on a stalled
Redis for its throttles, or that makes two calls (append-token), answered
long after the timeout. Listed first in ``MIDDLEWARE``, so the clock starts
when the request comes in.
"""

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from . import client


class ModelDeadlineMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request):
        if iscoroutinefunction(self):
            return self.__acall__(request)
        with client.deadline():
            return self.get_response(request)

    async def __acall__(self, request):
        with client.deadline():
            return await self.get_response(request)
