"""Channel-layer consumers of the model worker (used in production).

``python manage.py runworker model-worker`` serves the ``model-worker``
channel with :class:`~modelworker.consumers.ModelWorkerConsumer`. Web
processes import this module too (the ASGI router lists it) but never start
a worker, so they never load torch.
"""

import sys

from django.conf import settings

from .consumers import ModelWorkerConsumer, start_worker

CHANNEL = settings.MODELWORKER["CHANNEL"]

channel_consumers: dict = {CHANNEL: ModelWorkerConsumer.as_asgi()}


def _running_as_worker() -> bool:
    # `manage.py runworker model-worker`: the only process that should load models.
    return len(sys.argv) > 2 and sys.argv[1] == "runworker" and CHANNEL in sys.argv[2:]


if _running_as_worker():
    start_worker()
