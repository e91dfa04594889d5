from rest_framework.throttling import SimpleRateThrottle


class SessionRateThrottle(SimpleRateThrottle):
    """Per-session limit (the seed's "per-session rate limits"): a whole class
    behind one school IP must not share one budget."""

    scope = "session"

    def get_cache_key(self, request, view):
        session_id = view.kwargs.get("session_id")
        if session_id is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": str(session_id)}


class CreateSessionThrottle(SimpleRateThrottle):
    """Creating sessions is limited per client address (or user)."""

    scope = "create"

    def get_cache_key(self, request, view):
        if request.method != "POST":
            return None
        ident = request.user.pk if request.user and request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
