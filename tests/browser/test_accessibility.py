"""Accessibility (WCAG 2.1 AA), as a screen-reader or keyboard user meets it:
axe-core finds nothing on any page or state, the spin's result, streamed
tokens and errors are announced, the playground drawer keeps focus inside
while open and gives it back when it closes, and every control shows where
the focus is. Real daphne, real model, Debian's Chromium."""

import re

import pytest
from playwright.sync_api import expect

from .axe_scan import axe_violations, describe
from .site_tour import PROMPT, play_to_the_end, play_until_tokens_arrive, tour, wheel_ready

pytestmark = pytest.mark.browser


def test_axe_finds_no_violation_on_any_page_or_state(new_context, daphne_server, django_user_model):
    found = {}
    for name, page in tour(new_context, daphne_server, django_user_model):
        violations = axe_violations(page)
        if violations:
            found[name] = describe(violations)
    assert not found, "axe-core found:\n" + "\n".join(f"-- {name}\n{text}" for name, text in found.items())


# --------------------------------------------------------------------------- screen readers

# How a screen reader treats an element: the nearest live region around it
# ("polite", "assertive", or the role that implies one), or None.
LIVE = """el => {
    for (let n = el; n && n.nodeType === 1; n = n.parentElement) {
        const live = n.getAttribute('aria-live');
        if (live && live !== 'off') return live;
        const role = n.getAttribute('role');
        if (role === 'alert') return 'assertive';
        if (role === 'status' || role === 'log') return 'polite';
    }
    return null;
}"""


def test_screen_readers_hear_errors_and_the_spins_result(page):
    page.goto("/")
    expect(page.locator("#wheel-app")).to_have_attribute("data-booted", "true")
    # An error lands in a region that was already on the page (a region added
    # together with its text is not read) and is read at once.
    error = page.locator('[data-testid="error"][data-for="prompt"]')
    assert error.evaluate(LIVE) == "assertive" and error.inner_text() == ""
    page.get_by_test_id("prompt-submit").click()
    expect(error).to_have_text("Type a prompt first: the model needs some text to continue.")

    page.get_by_test_id("prompt-input").fill(PROMPT)
    page.get_by_test_id("prompt-submit").click()
    wheel_ready(page)
    result = page.get_by_test_id("spin-result")
    assert result.evaluate(LIVE) == "polite"
    page.get_by_test_id("spin").click()
    expect(page.get_by_test_id("history-token")).to_have_count(1)
    token = page.get_by_test_id("history-token").first
    expect(result).to_contain_text(re.compile(r"(landed on|drew the rare token) .+\d%"))
    assert token.get_attribute("data-tip").split(" · ")[0] in result.inner_text()
    # The text itself is not a live region: it is redrawn whole after every
    # token, and a reader would start reading it from the top each time.
    assert page.get_by_test_id("text-so-far").evaluate(LIVE) is None


RECORD_ANNOUNCEMENTS = """() => {
    window.__said = [];
    const region = document.querySelector('[data-testid="playground-announcer"]');
    new MutationObserver(() => window.__said.push([performance.now(), region.textContent]))
        .observe(region, {childList: true, characterData: true, subtree: true});
}"""


def test_streamed_tokens_are_announced_politely_a_few_at_a_time(page):
    page.goto("/")
    page.get_by_test_id("playground-open").click()
    page.get_by_test_id("playground-input").fill("Once upon a time, in a quiet village,")
    page.locator("#pg-settings summary").click()
    page.get_by_test_id("playground-max-tokens").fill("20")
    page.get_by_test_id("playground-speed").evaluate(
        "el => { el.value = 100; el.dispatchEvent(new Event('input', {bubbles: true})); }"
    )
    announcer = page.get_by_test_id("playground-announcer")
    assert announcer.evaluate(LIVE) == "polite"
    page.evaluate(RECORD_ANNOUNCEMENTS)
    play_until_tokens_arrive(page)
    pauses = play_to_the_end(page, "✓ Reached max length (20 tokens)")

    said = page.evaluate("() => window.__said")
    tokens = page.locator('[data-testid="playground-output"] .pg-gen').all_text_contents()
    assert len(tokens) == 20
    # Every token is heard, in order, none twice...
    assert "".join(text for _, text in said) == "".join(tokens)
    # ...gathered into a few phrases at least 2 s apart, not 20 interruptions
    # (what is gathered is said at once when the stream ends, or pauses: a busy
    # machine can make the drawer pause a slow run).
    assert 2 <= len(said) <= len(tokens) / 2, said
    gaps = [b[0] - a[0] for a, b in zip(said, said[1:])]
    assert sum(gap < 1900 for gap in gaps) <= 1 + pauses, gaps


# --------------------------------------------------------------------------- keyboard

IN_DRAWER = "() => document.getElementById('playground-drawer').contains(document.activeElement)"
FOCUSED = "() => { const el = document.activeElement; return el.id || el.dataset.testid || el.outerHTML.slice(0, 60); }"


def test_the_playground_drawer_keeps_focus_inside_and_gives_it_back(page):
    page.goto("/")
    opener = page.get_by_test_id("playground-open")
    opener.focus()
    page.keyboard.press("Enter")
    drawer = page.get_by_test_id("playground-drawer")
    expect(drawer).to_have_attribute("aria-hidden", "false")
    expect(drawer).to_have_attribute("aria-modal", "true")
    assert page.evaluate(IN_DRAWER)
    # The page behind is out of reach while the drawer is open.
    expect(page.locator("main")).to_have_js_property("inert", True)

    for keys in ("Tab", "Shift+Tab"):
        start = page.evaluate(FOCUSED)
        visited = []
        for _ in range(60):
            page.keyboard.press(keys)
            assert page.evaluate(IN_DRAWER), f"{keys} left the drawer after {visited}"
            visited.append(page.evaluate(FOCUSED))
            if visited[-1] == start and len(visited) > 1:
                break
        # It went round every control of the drawer and came back to the start.
        assert visited[-1] == start and len(set(visited)) >= 8, visited
        assert {"pg-input", "playground-close", "pg-speed", "pg-output"} <= set(visited), visited

    page.keyboard.press("Escape")
    expect(drawer).to_be_hidden()
    assert page.evaluate("() => document.activeElement.dataset.testid") == "playground-open"
    expect(page.locator("main")).to_have_js_property("inert", False)


# Does the focused control show where the focus is? An outline of at least 2 px
# in a visible colour, or (the wheel's SVG segments) a thickened stroke.
FOCUS_RING = """() => {
    const el = document.activeElement;
    if (!el || el === document.body) return null;
    const cs = getComputedStyle(el);
    const outline = cs.outlineStyle !== 'none' && parseFloat(cs.outlineWidth) >= 2
        && !/rgba\\(.*, 0\\)$/.test(cs.outlineColor);
    const stroke = el instanceof SVGElement && parseFloat(cs.strokeWidth) >= 3;
    return {ok: outline || stroke, what: `${el.tagName.toLowerCase()}#${el.id}.${el.getAttribute('class') || ''} ${el.dataset.testid || ''}`};
}"""


def tab_through(page, limit=120):
    """Press Tab until the focus leaves the page or comes round again; yield each stop."""
    first = None
    for _ in range(limit):
        page.keyboard.press("Tab")
        stop = page.evaluate(FOCUS_RING)
        if stop is None or stop["what"] == first:
            return
        first = first or stop["what"]
        yield stop


def test_every_control_shows_a_focus_ring(page, daphne_server):
    page.goto("/accounts/login/")
    stops = list(tab_through(page))
    page.goto("/")
    page.get_by_test_id("prompt-input").fill(PROMPT)
    page.get_by_test_id("prompt-submit").click()
    wheel_ready(page)
    page.get_by_test_id("spin").click()
    expect(page.get_by_test_id("history-token")).to_have_count(1)
    wheel_ready(page)
    page.reload()  # Tab from the top of the page, with the session (and its token) restored
    wheel_ready(page)
    stops += list(tab_through(page))
    page.get_by_test_id("playground-open").click()
    page.locator("#pg-settings summary").click()
    stops += list(tab_through(page))

    kinds = {s["what"].split("#")[0] for s in stops}
    assert {"a", "button", "textarea", "select", "input", "summary", "path"} <= kinds, kinds
    assert any("history-token" in s["what"] for s in stops) and any("legend-item" in s["what"] for s in stops)
    missing = [s["what"] for s in stops if not s["ok"]]
    assert not missing, f"no visible focus ring on: {missing}"
