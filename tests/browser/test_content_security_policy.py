"""The Content-Security-Policy, as a browser enforces it: every page carries
a strict policy (no inline script, no eval, connections only to this site and
its own websockets), every page and state works under it with no violation
reported, an inline script injected into a page does not run, and Swagger UI
at /api/docs/ still renders. Real daphne, real model, Debian's Chromium."""

import pytest
from playwright.sync_api import expect

from .site_tour import tour

pytestmark = pytest.mark.browser

# Reports every violation the page sees, from before its own scripts run.
REPORT_VIOLATIONS = """
document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation({
    page: location.pathname, directive: e.effectiveDirective, blocked: e.blockedURI, sample: e.sample,
}));
"""


def watch_csp(context):
    """Violations (from the event and from Chromium's console) and the policy of each page loaded."""
    seen = {"violations": [], "policies": {}}
    context.expose_binding("__cspViolation", lambda source, v: seen["violations"].append(v))
    context.add_init_script(REPORT_VIOLATIONS)

    def on_console(msg):
        if "Content Security Policy" in msg.text or "Content-Security-Policy" in msg.text:
            seen["violations"].append({"console": msg.text})

    def on_response(response):
        if response.request.resource_type == "document":
            seen["policies"][response.url] = response.headers.get("content-security-policy")

    context.on("console", on_console)
    context.on("response", on_response)
    return seen


def test_every_page_and_state_works_under_the_policy_with_no_violation(new_context, daphne_server, django_user_model):
    watched = []

    def watched_context(**options):
        context = new_context(**options)
        watched.append(watch_csp(context))
        return context

    stops = [name for name, _page in tour(watched_context, daphne_server, django_user_model)]
    assert len(stops) >= 14, stops  # the tour reached every page and state

    violations = [v for seen in watched for v in seen["violations"]]
    assert not violations, violations
    policies = {url: policy for seen in watched for url, policy in seen["policies"].items()}
    host = daphne_server.url.removeprefix("http://")
    for url, policy in policies.items():
        assert policy, f"{url} was served without a Content-Security-Policy"
        directives = {d.split()[0]: d.split()[1:] for d in policy.split(";") if d.strip()}
        assert directives["script-src"] == ["'self'"], (url, policy)
        assert directives["style-src"] == ["'self'"], (url, policy)
        assert directives["object-src"] == ["'none'"] and directives["frame-ancestors"] == ["'none'"], (url, policy)
        assert sorted(directives["connect-src"]) == sorted(["'self'", f"ws://{host}", f"wss://{host}"]), (url, policy)
        assert "'unsafe-eval'" not in policy and "'unsafe-inline'" not in policy, (url, policy)


def test_an_inline_script_put_into_a_page_does_not_run(page):
    seen = watch_csp(page.context)
    page.goto("/")
    expect(page.locator("#wheel-app")).to_have_attribute("data-booted", "true")
    ran = page.evaluate(
        """() => {
            const s = document.createElement('script');
            s.textContent = 'window.__injected = true';
            document.body.append(s);
            return window.__injected === true;
        }"""
    )
    assert ran is False
    # The refusal is reported (the event arrives a moment later).
    for _ in range(50):
        if any(v.get("directive") == "script-src-elem" for v in seen["violations"]):
            break
        page.wait_for_timeout(100)
    assert any(v.get("directive") == "script-src-elem" for v in seen["violations"]), seen["violations"]


def test_swagger_ui_still_renders_the_api_docs(page):
    seen = watch_csp(page.context)
    page.goto("/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Token Wheel")
    expect(page.locator(".opblock-summary-path", has_text="/api/sessions").first).to_be_visible()
    assert seen["policies"], "no document response seen"
    assert all(seen["policies"].values()), seen["policies"]
    assert not seen["violations"], seen["violations"]
