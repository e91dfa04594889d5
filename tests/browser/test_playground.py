"""The playground drawer, as a person uses it: real daphne (HTTP and
websockets), the real model, Debian's Chromium. Fixtures: tests/browser/conftest.py."""

import json
import re

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

PROMPT = "Once upon a time, in a quiet village,"
GEN = '[data-testid="playground-output"] .pg-gen'


def generated(page):
    """The generated tokens on screen: text, id, and whether a person chose them."""
    return page.locator(GEN).evaluate_all(
        "els => els.map(e => ({text: e.textContent, hand: e.classList.contains('pg-hand'), p: Number(e.dataset.probability)}))"
    )


def set_range(locator, value):
    locator.evaluate("(el, v) => { el.value = v; el.dispatchEvent(new Event('input', {bubbles: true})); }", str(value))


def open_drawer(page, path="/"):
    page.goto(path)
    if path != "/playground/":  # the playground's own page opens the drawer by itself
        page.get_by_test_id("playground-open").click()
    drawer = page.get_by_test_id("playground-drawer")
    expect(drawer).to_be_visible()
    expect(drawer).to_have_attribute("aria-hidden", "false")
    return drawer


def test_play_pause_and_pick_the_second_token_with_the_keyboard(page):
    drawer = open_drawer(page)
    # It slides in (300 ms); once there, it is 480 px wide against the right edge.
    page.wait_for_function(
        "() => Math.round(document.getElementById('playground-drawer').getBoundingClientRect().right) === window.innerWidth"
    )
    box = drawer.bounding_box()
    viewport = page.viewport_size
    assert round(box["width"]) == 480 and round(box["x"] + box["width"]) == viewport["width"]  # 480 px, on the right

    page.get_by_test_id("playground-input").fill(PROMPT)
    expect(page.get_by_test_id("playground-counter")).to_have_text(re.compile(r"^\d+ tokens \(\d+ in context\)$"))
    # "Always take the top token": the model's choice is then the first bar, so
    # the second bar is always a different token.
    page.locator("#pg-settings summary").click()
    page.get_by_test_id("playground-greedy").check()
    set_range(page.get_by_test_id("playground-speed"), 200)
    expect(page.get_by_test_id("playground-play")).to_be_enabled()
    page.get_by_test_id("playground-play").click()

    expect(page.locator(GEN).nth(3)).to_be_attached()  # it is playing: tokens arrive
    expect(page.get_by_test_id("playground-output")).to_have_attribute("data-playing", "true")
    page.get_by_test_id("playground-pause").click()
    expect(drawer).to_have_attribute("data-state", "paused")
    expect(page.get_by_test_id("playground-output")).to_have_attribute("data-playing", "false")
    page.wait_for_timeout(600)
    before = generated(page)
    assert generated(page) == before  # paused: nothing more arrives

    bars = page.get_by_test_id("prob-bar")
    expect(bars).to_have_count(10)
    last = before[-1]
    chosen = page.locator('[data-testid="prob-bar"][data-chosen="true"]')
    expect(chosen).to_have_count(1)
    assert "✓" in chosen.inner_text()
    assert chosen.get_attribute("data-token-id") == bars.nth(0).get_attribute("data-token-id")
    second_id = bars.nth(1).get_attribute("data-token-id")
    second_label = bars.nth(1).locator(".pg-token").inner_text()

    # Keyboard: up to the top, down to the second, Enter takes it instead of the last token.
    for _ in range(12):
        page.keyboard.press("ArrowUp")
    page.keyboard.press("ArrowDown")
    expect(bars.nth(1)).to_have_attribute("aria-selected", "true")
    page.keyboard.press("Enter")
    expect(page.locator(GEN).last).to_have_class(re.compile(r"\bpg-hand\b"))
    after_pick = generated(page)
    assert len(after_pick) == len(before)  # it replaced the last token
    assert [t["text"] for t in after_pick[:-1]] == [t["text"] for t in before[:-1]]
    assert after_pick[-1]["hand"] and after_pick[-1]["text"] != last["text"]
    # The bars now mark the picked token as the chosen one.
    expect(page.locator('[data-testid="prob-bar"][data-chosen="true"]')).to_have_attribute("data-token-id", second_id)
    assert page.locator('[data-testid="prob-bar"][data-chosen="true"] .pg-token').inner_text() == second_label

    # Space plays again: the text continues from the token picked by hand.
    page.keyboard.press("Space")
    expect(page.locator(GEN).nth(len(before) + 1)).to_be_attached()
    page.keyboard.press("Space")
    expect(drawer).to_have_attribute("data-state", "paused")
    final = generated(page)
    assert [t["text"] for t in final[: len(before)]] == [t["text"] for t in after_pick]
    assert not any(t["hand"] for t in final[len(before) :])
    text = page.get_by_test_id("playground-output").inner_text()
    assert text.startswith(PROMPT + "".join(t["text"] for t in after_pick))


def test_empty_states_escape_and_the_backdrop(page):
    drawer = open_drawer(page)
    expect(page.get_by_test_id("playground-status")).to_have_text("Type something to get started...")
    expect(page.get_by_test_id("playground-play")).to_be_disabled()
    expect(page.get_by_test_id("playground-step")).to_be_disabled()
    expect(page.get_by_test_id("playground-model-info")).to_contain_text("ready")
    page.keyboard.press("Escape")
    expect(drawer).to_have_attribute("aria-hidden", "true")
    expect(drawer).to_be_hidden()
    page.get_by_test_id("playground-open").click()
    expect(drawer).to_be_visible()
    page.get_by_test_id("playground-backdrop").click(position={"x": 20, "y": 300})
    expect(drawer).to_be_hidden()


def test_step_max_length_context_window_and_export(page):
    drawer = open_drawer(page, "/playground/")  # this page opens the drawer by itself
    page.get_by_test_id("playground-input").fill("one two three four five six seven eight nine ten")
    page.locator("#pg-settings summary").click()
    page.get_by_test_id("playground-context-window").fill("4")
    page.get_by_test_id("playground-max-tokens").fill("3")
    expect(page.get_by_test_id("playground-counter")).to_have_text(re.compile(r"^\d+ tokens \(last 4 in context\)$"))
    expect(page.locator("#pg-preview .pg-out-of-view")).not_to_be_empty()
    page.get_by_test_id("playground-step").click()
    expect(page.locator(GEN)).to_have_count(1)
    expect(drawer).to_have_attribute("data-state", "paused")
    # Everything but the last 4 tokens is dimmed: the model no longer sees it.
    dims = page.locator('[data-testid="playground-output"] .pg-tok').evaluate_all(
        "els => els.map(e => e.classList.contains('pg-dim'))"
    )
    assert dims[-4:] == [False] * 4 and all(dims[:-4])
    set_range(page.get_by_test_id("playground-speed"), 0)
    page.get_by_test_id("playground-play").click()
    expect(page.get_by_test_id("playground-status")).to_have_text("✓ Reached max length (3 tokens)")
    expect(page.locator(GEN)).to_have_count(3)

    with page.expect_download() as info:
        page.get_by_test_id("playground-export-json").click()
    data = json.loads(open(info.value.path()).read())
    assert data["input"].startswith("one two") and len(data["tokens"]) == 3
    assert data["settings"]["context_window"] == 4 and data["finished_reason"] == "max_tokens"
    with page.expect_download() as info:
        page.get_by_test_id("playground-export-text").click()
    assert open(info.value.path()).read().strip() == data["text"].strip()


@pytest.mark.django_db(transaction=True)  # committed rows: the server sees them
def test_a_signed_in_user_saves_loads_and_compares(page, daphne_server, django_user_model):
    from django.test import Client

    from playground.models import PlaygroundRun

    user = django_user_model.objects.create_user("ada", password="pw")
    client = Client()
    client.force_login(user)
    page.context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": daphne_server.url}])

    drawer = open_drawer(page)
    page.get_by_test_id("playground-input").fill("The best thing about school is")
    page.get_by_test_id("playground-step").click()
    page.get_by_test_id("playground-step").click()
    expect(page.locator(GEN)).to_have_count(2)
    page.get_by_test_id("playground-title").fill("School, two tokens")
    page.get_by_test_id("playground-save").click()
    expect(page.get_by_test_id("playground-status")).to_have_text("✓ Saved as “School, two tokens”.")
    run = PlaygroundRun.objects.get(owner=user)
    assert run.title == "School, two tokens" and len(run.tokens) == 2
    shown = generated(page)
    assert [t["text"] for t in shown] == [t["token"] for t in run.tokens]

    # A new input clears the output; loading the saved run brings it back.
    page.get_by_test_id("playground-input").fill("Something else")
    expect(page.locator(GEN)).to_have_count(0)
    runs = page.get_by_test_id("playground-runs")
    expect(runs.locator(f'option[value="{run.pk}"]')).to_be_attached()
    runs.select_option(str(run.pk))
    page.get_by_test_id("playground-load").click()
    expect(page.get_by_test_id("playground-input")).to_have_value("The best thing about school is")
    expect(page.locator(GEN)).to_have_count(2)
    assert generated(page) == shown
    expect(drawer).to_have_attribute("data-state", "paused")

    # Two models side by side (here the same model at two temperatures): both columns play.
    page.locator("#pg-compare-settings summary").click()
    page.get_by_test_id("playground-compare").check()
    set_range(page.get_by_test_id("playground-speed"), 0)
    page.get_by_test_id("playground-regenerate").click()
    expect(page.locator('[data-testid="playground-output-b"] .pg-gen').nth(2)).to_be_attached()
    expect(page.locator(GEN).nth(2)).to_be_attached()
    expect(page.get_by_test_id("playground-compare-bar").first).to_be_attached()
    page.get_by_test_id("playground-pause").click()
