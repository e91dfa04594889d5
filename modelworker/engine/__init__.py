"""The model engine: loads models once per process and answers requests.

Every request is plain data in, plain data out (``Engine.handle(op, payload)``),
so the same engine serves the in-process client and the channel-layer worker.

One job a module:

* :mod:`.tuning`: threads, malloc arenas, heap trimming, the forward thread
  (imported first: OpenMP reads ``OMP_NUM_THREADS`` when torch loads);
* :mod:`.loading`: tokenizer and weights (a GGUF file is converted once);
* :mod:`.caches`: the logits LRU and the KV store;
* :mod:`.padded_forward`: one forward over rows with their own pasts;
* :mod:`.batch_maths`: the probability maths of a forward's rows;
* :mod:`.pacing`: when a forward starts, and when a request is refused (busy);
* :mod:`.batcher`: the queue in front of the forward, per model;
* :mod:`.model`: a loaded model, its tokenizer and its batcher;
* :mod:`.ops` and :mod:`.wire`: the operations and their field names;
* :mod:`.service`: the :class:`Engine` of the process, :func:`get_engine`.

Forward passes of every model run on one thread, and each forward's
probability maths right after it on the same thread; request threads run no
torch work but the maths of a logits-cache hit, on one torch thread (see
:mod:`.tuning`).
"""

from . import tuning

tuning.tune_process()  # before anything below imports torch

from ..errors import ModelError  # noqa: E402
from .loading import load_model  # noqa: E402
from .model import LoadedModel  # noqa: E402
from .service import Engine, get_engine  # noqa: E402

__all__ = ["Engine", "LoadedModel", "ModelError", "get_engine", "load_model"]
