"""The Content-Security-Policy header on every response (django-csp).

The policy itself is ``CONTENT_SECURITY_POLICY`` in settings: everything from
this site only, no inline script, no eval, no inline style. This middleware
adds what settings cannot know in advance:

* ``connect-src``: the websockets of the host the page was served from
  (``ws://HOST`` and ``wss://HOST``; browsers do not all count a websocket
  to the same host as ``'self'``);
* ``/api/docs/``: Swagger UI (drf-spectacular-sidecar) gets its own small
  relaxation, inline styles and ``data:`` images, which its bundle needs; its
  script is served as a file by ``SpectacularSwaggerSplitView``.
"""

from __future__ import annotations

from csp.constants import UNSAFE_INLINE
from csp.middleware import CSPMiddleware, PolicyParts

DOCS_PREFIX = "/api/docs/"


class SiteCSPMiddleware(CSPMiddleware):
    def get_policy_parts(self, request, response, report_only: bool = False) -> PolicyParts:
        parts = super().get_policy_parts(request, response, report_only)
        if report_only:
            return parts
        update = dict(parts.update or {})
        host = request.get_host()
        update["connect-src"] = [*update.get("connect-src", []), f"ws://{host}", f"wss://{host}"]
        if request.path_info.startswith(DOCS_PREFIX):
            update["style-src"] = [*update.get("style-src", []), UNSAFE_INLINE]
            update["img-src"] = [*update.get("img-src", []), "data:"]
        parts.update = update
        return parts
