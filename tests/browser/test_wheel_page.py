"""The wheel page, as a student uses it: real daphne, real model, real Chromium.

Every check is something a person would notice on the screen (a segment's
size, the token that appears in the text, a message next to a control),
compared against the API's own answer where there is one.
"""

import base64
import json
import math
import os
import re
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PROMPT = "The cat sat on the"
SEGMENT = '[data-testid="wheel-segment"]'
HISTORY = '[data-testid="history-token"]'
R = 184  # the wheel's radius in SVG units (static/wheel/wheel-svg.js)
REPO = Path(__file__).resolve().parents[2]


# --------------------------------------------------------------------------- helpers


def start_lesson(page, prompt=PROMPT):
    page.goto("/")
    page.get_by_test_id("prompt-input").fill(prompt)
    page.get_by_test_id("prompt-submit").click()
    wait_until_ready(page)
    return session_id(page)


def wait_until_ready(page):
    """The wheel is drawn and the page accepts the next action."""
    expect(page.get_by_test_id("wheel")).to_have_attribute("data-state", "ready")
    expect(page.locator("#wheel-app")).to_have_attribute("data-state", "ready")
    expect(page.locator("#wheel-loading")).to_be_hidden()


def session_id(page):
    ids = parse_qs(urlparse(page.url).query).get("session")
    assert ids, f"the page's URL carries no session id: {page.url}"
    return ids[0]


def history_ids(page):
    return page.locator(HISTORY).evaluate_all("els => els.map(e => Number(e.dataset.tokenId))")


def segments(page):
    return page.locator(SEGMENT).evaluate_all(
        """els => els.map(e => ({
            id: e.dataset.tokenId, probability: Number(e.dataset.probability), d: e.getAttribute('d'),
            label: e.getAttribute('aria-label')}))"""
    )


def sweep_degrees(d):
    """The angle a drawn slice covers, read back from its SVG path."""
    if " L " not in d:  # a full circle is drawn as two arcs
        return 360.0
    numbers = [float(x) for x in re.findall(r"-?\d+(?:\.\d+)?", d)]
    # M cx cy L x1 y1 A r r rot large sweep x2 y2 Z
    cx, cy, x1, y1, _, _, _, large, _, x2, y2 = numbers[:11]

    def angle(x, y):
        return math.degrees(math.atan2(x - cx, cy - y)) % 360

    span = (angle(x2, y2) - angle(x1, y1)) % 360
    if large and span < 180:
        span = 360 - span
    return span


def percent(p):
    """A probability as the page writes it (static/wheel/format.js)."""
    x = p * 100
    if x < 0.01:
        return "<0.01%"
    return f"{x:.2f}%" if x < 1 else f"{x:.1f}%"


def center_wheel(page):
    """Scroll the wheel to the middle of the window (clear of the sticky header)."""
    page.get_by_test_id("wheel").evaluate("el => el.scrollIntoView({block: 'center'})")


def click_segment(page, token_id):
    """Click inside a segment, half-way round its arc, as a person aims."""
    center_wheel(page)
    point = page.evaluate(
        """([id, r]) => {
            const svg = document.querySelector('[data-testid="wheel"]');
            const seg = svg.querySelector(`[data-testid="wheel-segment"][data-token-id="${id}"]`);
            const mid = (Number(seg.dataset.startAngle) + Number(seg.dataset.endAngle)) / 2 + Number(svg.dataset.rotation);
            const pt = svg.createSVGPoint();
            pt.x = 200 + r * Math.sin(mid * Math.PI / 180);
            pt.y = 200 - r * Math.cos(mid * Math.PI / 180);
            const p = pt.matrixTransform(svg.getScreenCTM());
            return {x: p.x, y: p.y};
        }""",
        [str(token_id), R * 0.72],
    )
    page.mouse.click(point["x"], point["y"])


def api_distribution(daphne_server, sid, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    status, body = daphne_server.get_json(f"/api/sessions/{sid}/next-token-probs?{query}")
    assert status == 200, body
    return body


def api_history(daphne_server, sid):
    status, body = daphne_server.get_json(f"/api/sessions/{sid}")
    assert status == 200, body
    return body["token_history"]


def tab_until(page, predicate_js, limit=80):
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate(f"() => {{ const el = document.activeElement; return Boolean({predicate_js}); }}"):
            return
    raise AssertionError(f"Tab never reached an element where {predicate_js}")


def focused_testid(page):
    return page.evaluate("() => document.activeElement && document.activeElement.dataset.testid")


# --------------------------------------------------------------------------- tests


def test_the_page_loads_with_prompt_models_and_settings(page):
    page.goto("/")
    expect(page).to_have_title(re.compile("Token Wheel"))
    expect(page.get_by_test_id("prompt-input")).to_be_visible()
    expect(page.get_by_test_id("prompt-submit")).to_have_text("Start")
    expect(page.get_by_test_id("spin")).to_have_attribute("aria-disabled", "true")
    expect(page.get_by_text("Type a prompt and press")).to_be_visible()

    # The model picker: the one model this machine has, ready; GPT-2 greyed out with the reason.
    picker = page.get_by_test_id("model-picker")
    expect(picker.locator('option[value="smollm2-135m"]')).to_be_enabled()
    expect(picker).to_have_value("smollm2-135m")
    expect(picker.locator('option[value="gpt2"]')).to_be_disabled()
    expect(picker.locator('option[value="gpt2"]')).to_contain_text("unavailable")
    why = page.get_by_test_id("model-notes-summary")
    expect(why).to_contain_text("Not available on this server: GPT-2 (124M)")
    why.click()
    reason = page.locator('.model-unavailable[data-model-id="gpt2"]')
    expect(reason).to_be_visible()
    expect(reason).to_contain_text(re.compile(r"GPT-2 \(124M\) is unavailable: \S+"))
    expect(page.get_by_test_id("model-status")).to_contain_text("ready")

    # Sliders start at the API's defaults and say so.
    expect(page.locator("#threshold-value")).to_have_text("1.0%")
    expect(page.locator("#temperature-value")).to_have_text("1.00")
    expect(page.locator("#top-p-value")).to_have_text("1.00")

    # Django's CSRF cookie is there for the page's POSTs.
    assert any(c["name"] == "csrftoken" for c in page.context.cookies())


def test_a_prompt_draws_segments_sized_by_the_apis_probabilities(page, daphne_server):
    sid = start_lesson(page)
    api = api_distribution(daphne_server, sid, threshold=0.01, temperature=1.0, top_p=1.0, other_top_k=10)

    drawn = segments(page)
    expected = {str(t["token_id"]): t["probability"] for t in api["above_threshold_tokens"]}
    expected["other"] = api["other_category"]["total_probability"]
    assert [s["id"] for s in drawn] == [str(t["token_id"]) for t in api["above_threshold_tokens"]] + ["other"]
    total = sum(expected.values())
    for s in drawn:
        assert s["probability"] == pytest.approx(expected[s["id"]], abs=1e-6)
        # The slice on screen covers its share of the full turn.
        assert sweep_degrees(s["d"]) == pytest.approx(360 * expected[s["id"]] / total, abs=0.05), s
    assert sum(sweep_degrees(s["d"]) for s in drawn) == pytest.approx(360, abs=0.1)

    # Whitespace is visible, BPE symbols never are: " mat" reads "␠mat".
    legend = page.get_by_test_id("legend-item")
    expect(legend).to_have_count(len(drawn))
    legend_texts = legend.all_inner_texts()
    wheel_text = page.get_by_test_id("wheel").inner_html()
    for t in api["above_threshold_tokens"]:
        if t["token_text"].startswith(" "):
            shown = "␠" + t["token_text"][1:].replace(" ", "␠")
            assert any(shown in text for text in legend_texts), (shown, legend_texts)
    assert not any(ch in "".join(legend_texts) + wheel_text for ch in "ĠĊ")
    # Every legend entry carries the percentage.
    top = api["above_threshold_tokens"][0]
    expect(legend.first).to_contain_text(percent(top["probability"]))

    # Other explains the long tail with the API's numbers.
    other = api["other_category"]
    info = page.get_by_test_id("other-info")
    expect(info).to_contain_text(f"{other['token_count']:,} other tokens")
    expect(info).to_contain_text(f"Other: {percent(other['total_probability'])} of the wheel")
    sample = other["sample_tokens"][0]["token_text"].replace(" ", "␠").replace("\n", "↵")
    expect(page.get_by_test_id("other-samples")).to_contain_text(sample)
    expect(page.get_by_test_id("prob-mode")).to_contain_text("raw probabilities")

    # The text so far: just the prompt, nothing generated yet.
    expect(page.get_by_test_id("prompt-text")).to_have_text(PROMPT)
    expect(page.locator(HISTORY)).to_have_count(0)


RECORD_ROTATION = """() => {
    // Every angle the wheel is drawn at, with the time: the test reads the motion back.
    window.__turns = [];
    const rotor = document.querySelector('#wheel-rotor');
    new MutationObserver(() => {
        const m = /rotate\\((-?[\\d.]+)/.exec(rotor.getAttribute('transform') || '');
        if (m) window.__turns.push([performance.now(), Number(m[1])]);
    }).observe(rotor, {attributes: true, attributeFilter: ['transform']});
}"""

# While the wheel rests after a spin: which segment is under the pointer?
LANDING = """() => {
    const svg = document.querySelector('[data-testid="wheel"]');
    if (svg.dataset.state !== 'landed') return false;
    const pt = svg.createSVGPoint();
    pt.x = 200; pt.y = 200 - 150;          // just below the pointer's tip
    const p = pt.matrixTransform(svg.getScreenCTM());
    const hit = document.elementFromPoint(p.x, p.y);
    const seg = hit && hit.closest('[data-testid="wheel-segment"]');
    return {under: seg ? seg.dataset.tokenId : null, turns: window.__turns.slice()};
}"""


def test_a_spin_lands_on_the_drawn_segment_and_appends_that_token(page, daphne_server):
    sid = start_lesson(page)
    center_wheel(page)
    page.evaluate(RECORD_ROTATION)
    page.get_by_test_id("spin").click()
    expect(page.get_by_test_id("wheel")).to_have_attribute("data-state", "spinning")
    landing = page.wait_for_function(LANDING, timeout=15_000).json_value()

    # It turned several times round, fast at first and slowing to a stop.
    turns = landing["turns"]
    assert len(turns) > 20 and turns[-1][1] - turns[0][1] > 3 * 360, turns[:3]
    duration = turns[-1][0] - turns[0][0]

    def speed(t0, t1):
        inside = [(t, a) for t, a in turns if t0 <= t <= t1]
        return (inside[-1][1] - inside[0][1]) / max(inside[-1][0] - inside[0][0], 1)

    start = turns[0][0]
    assert speed(start, start + duration / 4) > 4 * speed(start + duration * 3 / 4, start + duration)

    expect(page.locator(HISTORY)).to_have_count(1)
    wait_until_ready(page)
    history = api_history(daphne_server, sid)
    assert len(history) == 1
    drawn = history[0]
    assert drawn["method"] == "spun"
    assert history_ids(page) == [drawn["token_id"]]
    # The wheel came to rest on the segment the server drew.
    expected_segment = "other" if drawn["category"] == "other" else str(drawn["token_id"])
    assert landing["under"] == expected_segment, (landing, drawn)
    expect(page.get_by_test_id("spin-result")).to_contain_text("landed on")
    token = page.locator(HISTORY).first
    expect(token).to_have_attribute("data-method", "spun")
    assert drawn["token_text"].strip() in token.inner_text()
    assert token.get_attribute("data-tip").startswith(f"{drawn['token_text'].replace(' ', '␠')} · {percent(drawn['probability'])} · ")


def test_with_reduced_motion_the_wheel_jumps_straight_to_the_drawn_segment(new_context, daphne_server):
    page = new_context(reduced_motion="reduce").new_page()
    sid = start_lesson(page)
    center_wheel(page)
    page.evaluate(RECORD_ROTATION)
    page.get_by_test_id("spin").click()
    landing = page.wait_for_function(LANDING, timeout=15_000).json_value()
    assert len(landing["turns"]) == 1  # one move, no animation frames
    expect(page.locator(HISTORY)).to_have_count(1)
    drawn = api_history(daphne_server, sid)[0]
    assert landing["under"] == ("other" if drawn["category"] == "other" else str(drawn["token_id"]))


def test_clicking_a_segment_or_a_legend_entry_appends_it(page, daphne_server):
    sid = start_lesson(page)
    second = segments(page)[1]["id"]
    click_segment(page, second)
    expect(page.locator(HISTORY)).to_have_count(1)
    assert history_ids(page) == [int(second)]
    expect(page.get_by_test_id("spin-result")).to_contain_text("You picked")
    wait_until_ready(page)

    # The new distribution is the API's for the longer text.
    api = api_distribution(daphne_server, sid, threshold=0.01, temperature=1.0, top_p=1.0)
    assert api["current_text"].startswith(PROMPT)
    assert [s["id"] for s in segments(page)][:-1] == [str(t["token_id"]) for t in api["above_threshold_tokens"]]

    # A legend entry does the same as its segment.
    first_legend = page.get_by_test_id("legend-item").first
    legend_id = first_legend.get_attribute("data-token-id")
    first_legend.click()
    expect(page.locator(HISTORY)).to_have_count(2)
    assert history_ids(page)[-1] == int(legend_id)
    wait_until_ready(page)

    # Other: the server draws one of its rare tokens and the page says which, and its rank.
    click_segment(page, "other")
    expect(page.locator(HISTORY)).to_have_count(3)
    expect(page.get_by_test_id("spin-result")).to_contain_text(re.compile(r"drew the rare token .+ number [\d,]+ of [\d,]+"))
    history = api_history(daphne_server, sid)
    assert [h["method"] for h in history] == ["picked", "picked", "other"]
    assert history[2]["category"] == "other"
    expect(page.locator(HISTORY).last).to_have_attribute("data-category", "other")


def test_undo_takes_back_the_last_token(page, daphne_server):
    sid = start_lesson(page)
    for _ in range(2):
        click_segment(page, segments(page)[0]["id"])
        wait_until_ready(page)
    expect(page.locator(HISTORY)).to_have_count(2)
    kept = history_ids(page)[0]

    page.get_by_test_id("undo").click()
    expect(page.locator(HISTORY)).to_have_count(1)
    wait_until_ready(page)
    assert history_ids(page) == [kept]
    assert [h["token_id"] for h in api_history(daphne_server, sid)] == [kept]
    expect(page.get_by_test_id("spin-result")).to_contain_text("Undone")

    page.get_by_test_id("undo").click()
    expect(page.locator(HISTORY)).to_have_count(0)
    wait_until_ready(page)
    # Only the prompt is left: nothing more to undo.
    expect(page.get_by_test_id("undo")).to_have_attribute("aria-disabled", "true")
    expect(page.get_by_test_id("prompt-text")).to_have_text(PROMPT)


def test_raising_the_threshold_folds_segments_into_other(page, daphne_server):
    sid = start_lesson(page)
    before = len(segments(page))
    other_before = page.locator(f'{SEGMENT}[data-token-id="other"]').get_attribute("data-probability")

    page.get_by_test_id("threshold").fill("0.1")
    expect(page.locator("#threshold-value")).to_have_text("10.0%")
    api = api_distribution(daphne_server, sid, threshold=0.1, temperature=1.0, top_p=1.0)
    expected = len(api["above_threshold_tokens"]) + 1
    assert expected < before
    expect(page.locator(SEGMENT)).to_have_count(expected)
    drawn = segments(page)
    assert all(s["probability"] >= 0.1 for s in drawn if s["id"] != "other")
    assert float(other_before) < next(s["probability"] for s in drawn if s["id"] == "other")
    expect(page.get_by_test_id("other-info")).to_contain_text("each below 10.0%")

    # Temperature changes the figures, and the page says they are no longer raw.
    page.get_by_test_id("temperature").fill("2")
    expect(page.get_by_test_id("prob-mode")).to_have_attribute("data-mode", "adjusted")
    expect(page.get_by_test_id("prob-mode")).to_contain_text("after temperature 2.00")
    hot = api_distribution(daphne_server, sid, threshold=0.1, temperature=2.0, top_p=1.0)
    expect(page.locator(SEGMENT)).to_have_count(len(hot["above_threshold_tokens"]) + 1)


def test_the_whole_lesson_works_with_the_keyboard_alone(page, daphne_server):
    page.goto("/")
    tab_until(page, "el.dataset.testid === 'prompt-input'")
    page.keyboard.type(PROMPT)
    page.keyboard.press("Tab")
    assert focused_testid(page) == "model-picker"
    page.keyboard.press("Tab")
    assert focused_testid(page) == "prompt-submit"
    page.keyboard.press("Enter")
    wait_until_ready(page)

    # Tab reaches the wheel's segments (past the "why are models unavailable" note); Enter adds one.
    tab_until(page, "el.dataset.testid === 'wheel-segment'", limit=3)
    chosen = page.evaluate("() => document.activeElement.dataset.tokenId")
    page.keyboard.press("Enter")
    expect(page.locator(HISTORY)).to_have_count(1)
    wait_until_ready(page)
    assert history_ids(page) == [int(chosen)]
    assert focused_testid(page) == "wheel-segment"  # still in the wheel, ready for the next choice

    # Spin with Enter, undo with Space.
    tab_until(page, "el.dataset.testid === 'spin'")
    page.keyboard.press("Enter")
    expect(page.locator(HISTORY)).to_have_count(2, timeout=20_000)
    wait_until_ready(page)
    page.keyboard.press("Tab")
    assert focused_testid(page) == "undo"
    page.keyboard.press(" ")
    expect(page.locator(HISTORY)).to_have_count(1)
    wait_until_ready(page)

    # The legend is reachable too; Space on an entry adds it.
    tab_until(page, "el.dataset.testid === 'legend-item'")
    legend_id = page.evaluate("() => document.activeElement.dataset.tokenId")
    page.keyboard.press(" ")
    expect(page.locator(HISTORY)).to_have_count(2)
    sid = session_id(page)
    history = api_history(daphne_server, sid)
    assert [h["token_id"] for h in history] == [int(chosen), int(legend_id)]


def test_a_model_that_is_still_loading_is_shown_as_loading(page):
    """Only one model exists here and the server has loaded it, so the list the
    page receives is rewritten to say "loading" until the test lets it through;
    everything else (the page, the API, the session) is real."""
    loading = {"on": True}

    def models(route):
        response = route.fetch()
        body = response.json()
        if loading["on"]:
            for model in body["models"]:
                if model["id"] == "smollm2-135m":
                    model["status"] = "loading"
        route.fulfill(response=response, json=body)

    page.route("**/api/models", models)
    page.goto("/")
    status = page.get_by_test_id("model-status")
    expect(status).to_contain_text("Loading SmolLM2 (135M)…")
    expect(status).to_have_attribute("data-status", "loading")
    expect(page.locator('option[value="smollm2-135m"]')).to_have_text("SmolLM2 (135M) (loading…)")

    loading["on"] = False
    page.get_by_test_id("prompt-input").fill(PROMPT)
    page.get_by_test_id("prompt-submit").click()
    wait_until_ready(page)
    expect(status).to_contain_text("ready")
    expect(page.locator('option[value="smollm2-135m"]')).to_have_text("SmolLM2 (135M)")


def test_an_over_long_prompt_shows_the_apis_error_next_to_the_prompt(page):
    page.goto("/")
    page.get_by_test_id("prompt-input").fill("a" * 2001)
    expect(page.locator("#prompt-count")).to_have_text("2,001 / 2,000 characters")
    page.get_by_test_id("prompt-submit").click()
    error = page.locator('[data-testid="error"][data-for="prompt"]')
    expect(error).to_be_visible()
    expect(error).to_have_text("The prompt is 2001 characters long; the limit is 2000.")
    # Nothing was drawn, and the page still works: a shorter prompt starts the lesson.
    expect(page.locator(SEGMENT)).to_have_count(0)
    page.get_by_test_id("prompt-input").fill(PROMPT)
    page.get_by_test_id("prompt-submit").click()
    wait_until_ready(page)
    expect(error).to_be_hidden()
    assert len(segments(page)) > 2


def test_compare_statistics_fork_export_and_reload(page, daphne_server):
    sid = start_lesson(page)
    click_segment(page, segments(page)[0]["id"])
    wait_until_ready(page)
    click_segment(page, segments(page)[1]["id"])
    wait_until_ready(page)

    stats = daphne_server.get_json(f"/api/sessions/{sid}/statistics")[1]
    expect(page.locator('[data-stat="generation_count"]')).to_have_text("2")
    expect(page.locator('[data-stat="perplexity"]')).to_have_text(f"{stats['perplexity']:.2f}")
    expect(page.locator('[data-stat="average_probability"]')).to_have_text(percent(stats["average_probability"]))

    # Greedy and sampled continuations, side by side.
    page.get_by_test_id("compare-n").fill("5")
    page.get_by_test_id("compare").click()
    expect(page.get_by_test_id("compare-greedy").locator(".gen-token")).to_have_count(5)
    expect(page.get_by_test_id("compare-sampled").locator(".gen-token")).to_have_count(5)
    # An out-of-range request gets the API's words next to the compare form.
    page.get_by_test_id("compare-n").fill("500")
    page.get_by_test_id("compare").click()
    expect(page.locator('[data-testid="error"][data-for="compare"]')).to_have_text("n must be at most 50.")

    # Export: the download holds the two tokens on screen.
    with page.expect_download() as info:
        page.get_by_test_id("export-json").click()
    exported = json.loads(Path(info.value.path()).read_text())
    assert [h["token_id"] for h in exported["token_history"]] == history_ids(page)
    with page.expect_download() as info:
        page.get_by_test_id("export-csv").click()
    rows = Path(info.value.path()).read_text().strip().splitlines()
    assert rows[0].startswith("position,token_id") and len(rows) == 3

    # Fork: a new session with the same text, opened from the link.
    page.get_by_test_id("fork").click()
    link = page.get_by_test_id("fork-link")
    expect(link).to_be_visible()
    fork_id = parse_qs(urlparse(link.get_attribute("href")).query)["session"][0]
    assert fork_id != sid
    fork_page = page.context.new_page()
    fork_page.goto(link.get_attribute("href"))
    wait_until_ready(fork_page)
    assert history_ids(fork_page) == history_ids(page)
    fork_page.close()

    # A reload continues the same lesson.
    page.reload()
    wait_until_ready(page)
    expect(page.locator(HISTORY)).to_have_count(2)
    expect(page.get_by_test_id("prompt-input")).to_have_value(PROMPT)


# Where the larger segments are on screen (half-way round their arc, a quarter
# of the radius out: clear of the hub and of the labels, which start further
# out) and the colour each is filled with, as the page draws them.
SEGMENT_SAMPLES = r"""r => {
    const svg = document.querySelector('[data-testid="wheel"]');
    return [...svg.querySelectorAll('[data-testid="wheel-segment"]:not([data-token-id="other"])')]
        .filter(seg => seg.dataset.endAngle - seg.dataset.startAngle >= 16)
        .slice(0, 5)
        .map(seg => {
            const mid = (Number(seg.dataset.startAngle) + Number(seg.dataset.endAngle)) / 2 + Number(svg.dataset.rotation);
            const pt = svg.createSVGPoint();
            pt.x = 200 + r * Math.sin(mid * Math.PI / 180);
            pt.y = 200 - r * Math.cos(mid * Math.PI / 180);
            const p = pt.matrixTransform(svg.getScreenCTM());
            const rgb = getComputedStyle(seg).fill.match(/\d+/g).map(Number);
            return {id: seg.dataset.tokenId, x: Math.round(p.x), y: Math.round(p.y), rgb};
        });
}"""

# The picture, decoded by the browser: its size and the colour at each point.
READ_PICTURE = """async ([src, points]) => {
    const img = new Image();
    img.src = src;
    await img.decode();
    const canvas = document.createElement('canvas');
    canvas.width = img.width;
    canvas.height = img.height;
    const g = canvas.getContext('2d');
    g.drawImage(img, 0, 0);
    return {width: img.width, height: img.height,
            colours: points.map(([x, y]) => Array.from(g.getImageData(x, y, 1, 1).data).slice(0, 3))};
}"""


def test_a_screenshot_mid_lesson(page, daphne_server):
    """Takes the README's picture (test-artifacts/wheel-page.png; with
    UPDATE_DOCS_SCREENSHOT=1 also docs/wheel-page.png) and checks the page
    the picture shows: wheel, text, settings all on screen; and the picture
    itself: the whole page, with the wheel's segments in their colours where
    the page draws them (not a blank, cut or stale image)."""
    page.set_viewport_size({"width": 1360, "height": 1000})
    start_lesson(page, "Once upon a time, a little robot")
    for pick in (0, 1, 0):
        click_segment(page, segments(page)[pick]["id"])
        wait_until_ready(page)
    page.get_by_test_id("threshold").fill("0.02")
    expect(page.locator("#threshold-value")).to_have_text("2.0%")
    wait_until_ready(page)
    # The spin is random; a wheel one token fills leaves too little to sample
    # the picture at, so take such a spin back and spin again.
    for _ in range(8):
        page.get_by_test_id("spin").click()
        expect(page.locator(HISTORY)).to_have_count(4, timeout=20_000)
        wait_until_ready(page)
        if len(page.evaluate(SEGMENT_SAMPLES, R * 0.25)) >= 2:
            break
        page.get_by_test_id("undo").click()
        expect(page.locator(HISTORY)).to_have_count(3)
        wait_until_ready(page)
    page.get_by_test_id("compare-n").fill("8")
    page.get_by_test_id("compare").click()
    expect(page.get_by_test_id("compare-result")).to_be_visible()
    # The whole page in one window (a full-page capture would stitch the sticky header in).
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": 1360, "height": height})
    page.evaluate("window.scrollTo(0, 0)")
    page.mouse.move(0, 0)
    for locator in ("wheel", "legend", "text-so-far", "compare-greedy", "statistics"):
        expect(page.get_by_test_id(locator)).to_be_in_viewport()

    out = REPO / "test-artifacts"
    out.mkdir(exist_ok=True)
    shot = out / "wheel-page.png"
    samples = page.evaluate(SEGMENT_SAMPLES, R * 0.25)
    assert len(samples) >= 2, samples
    page.screenshot(path=str(shot))

    viewer = page.context.new_page()  # about:blank decodes the PNG on a canvas
    picture = viewer.evaluate(
        READ_PICTURE,
        [f"data:image/png;base64,{base64.b64encode(shot.read_bytes()).decode()}", [[s["x"], s["y"]] for s in samples]],
    )
    viewer.close()
    assert (picture["width"], picture["height"]) == (1360, height)
    for sample, colour in zip(samples, picture["colours"]):
        assert all(abs(a - b) <= 16 for a, b in zip(colour, sample["rgb"])), (sample, colour)
    # Segments side by side differ: the picture shows a wheel, not a flat disc.
    assert len({tuple(c) for c in picture["colours"]}) >= 2, picture["colours"]
    if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1":
        shutil.copyfile(shot, REPO / "docs" / "wheel-page.png")
