"""API rate limits a school behind one address can live with.

A class shares the school's one public address (its NAT), but each student
has a session of their own, so limits key on what belongs to one student:
session operations on the session id (``session``), a signed-in user's
requests on the user (``user``). The per-address limits only bound abuse:
creating sessions (each new session is a new budget, ``create``) and all
anonymous requests from one address (``anon``), both sized well above what
a whole school sends (settings: ``THROTTLE_*``).

Counting: a sliding-window counter, two integers per key (this window's
count and the previous window's, weighted by how much of it the sliding
window still covers), updated with the cache's atomic ``incr``. DRF's
``SimpleRateThrottle`` keeps every request's timestamp in one cached list that
each request reads, edits and writes back: at an address limit of thousands
a minute that is a list of thousands of floats pickled per request, and
concurrent requests overwrite each other's entries.
"""

from rest_framework.throttling import SimpleRateThrottle


class CountingThrottle(SimpleRateThrottle):
    """``SimpleRateThrottle``'s rates and keys; counted in two cache integers."""

    def allow_request(self, request, view):
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        position = self.timer() / self.duration
        window = int(position)
        self.elapsed = position - window  # fraction of this window gone
        current_key = f"{self.key}:{window}"
        self.previous = self.cache.get(f"{self.key}:{window - 1}", 0) or 0
        self.current = self._increment(current_key)
        if self.current is None:  # the cache is unreachable: fail open, as the cache does
            return True
        if self.previous * (1 - self.elapsed) + self.current <= self.num_requests:
            return True
        # A refused request does not count: a client that retries too early
        # is not locked out for longer than Retry-After says.
        self.cache.decr(current_key)
        self.current -= 1
        return False

    def _increment(self, key):
        try:
            return self.cache.incr(key)
        except ValueError:  # the window's first request
            if self.cache.add(key, 1, timeout=2 * self.duration + 1):
                return 1
            try:
                return self.cache.incr(key)
            except ValueError:
                return None

    def wait(self):
        """Seconds until one more request fits (at least 1, for Retry-After)."""
        limit, previous, current = self.num_requests, self.previous, self.current
        if current + 1 <= limit and previous:
            # Later in this window, once enough of the previous one has slid out.
            fraction = 1 - self.elapsed - (limit - current - 1) / previous
        else:
            # In the next window, once enough of this one has slid out.
            fraction = 1 - self.elapsed + (max(0.0, 1 - (limit - 1) / current) if current else 0.0)
        # A hair over, so a client that waits exactly Retry-After is let in.
        return max(1.0, fraction * self.duration + 0.01)


class SessionRateThrottle(CountingThrottle):
    """Per session (the seed's "per-session rate limits"): one student's budget,
    whoever else shares the address."""

    scope = "session"

    def get_cache_key(self, request, view):
        session_id = view.kwargs.get("session_id")
        if session_id is None:
            return None
        return self.cache_format % {"scope": self.scope, "ident": str(session_id)}


class UserRateThrottle(CountingThrottle):
    """Per signed-in user, wherever they connect from."""

    scope = "user"

    def get_cache_key(self, request, view):
        if not (request.user and request.user.is_authenticated):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class AddressRateThrottle(CountingThrottle):
    """Anonymous requests per client address: a bound on abuse, sized for a
    whole school behind one address."""

    scope = "anon"

    def get_cache_key(self, request, view):
        if request.user and request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}


class CreateSessionThrottle(CountingThrottle):
    """Creating sessions, per signed-in user or else per client address."""

    scope = "create"

    def get_cache_key(self, request, view):
        if request.method != "POST":
            return None
        ident = request.user.pk if request.user and request.user.is_authenticated else self.get_ident(request)
        return self.cache_format % {"scope": self.scope, "ident": ident}
