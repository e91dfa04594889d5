"""The lessons of issue 11, as people use them: real daphne, real model, Chromium.

1. Predict, then reveal: a student guesses before the wheel shows, the wheel
   is revealed with the guess marked, and the score counts it; an instructor
   runs a predict-then-reveal round and the class's guesses arrive live.
2. The class tree: three students take different paths in a lesson and the
   projector's tree shows three branches as wide as the students on them.
3. Same seed, same story: two students with the lesson's class seed spin the
   same tokens.
"""

from __future__ import annotations

import re
import os
from pathlib import Path

import pytest
from playwright.sync_api import expect

from classrooms.models import Classroom, InstructorRole, Lesson, Membership

from .axe_scan import axe_violations, describe
from .site_tour import PASSWORD, signed_in_page, wheel_ready

pytestmark = pytest.mark.browser

PROMPT = "The cat sat on the"
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture
def browser_context_args():
    return {"reduced_motion": "reduce"}


def a_class(django_user_model, students=("sam",), **lesson):
    teacher = django_user_model.objects.create_user("rivera", "rivera@example.com", PASSWORD)
    InstructorRole.objects.create(user=teacher)
    classroom = Classroom.objects.create(name="Period 3", created_by=teacher)
    Membership.objects.create(classroom=classroom, user=teacher, role=Membership.INSTRUCTOR)
    users = []
    for name in students:
        user = django_user_model.objects.create_user(name, f"{name}@example.com", PASSWORD)
        Membership.objects.create(classroom=classroom, user=user, role=Membership.STUDENT)
        users.append(user)
    made = Lesson.objects.create(classroom=classroom, title="The cat sat", prompt=PROMPT, **lesson)
    return teacher, classroom, made, users


def open_lesson_wheel(page, classroom, lesson):
    """The student's way in: the class page's "Start" on the lesson."""
    page.goto(f"/classes/{classroom.pk}/")
    page.locator(f'[data-testid="lesson-start-wheel"]').first.click()
    wheel_ready(page)


def assert_accessible(page, state):
    violations = axe_violations(page)
    assert not violations, f"axe-core on {state}:\n{describe(violations)}"


def shot(locator, name):
    """A picture of one part of the page: into test-artifacts/, and with
    UPDATE_DOCS_SCREENSHOT=1 into docs/ for the README (a test run does not
    rewrite tracked files)."""
    folder = DOCS if os.environ.get("UPDATE_DOCS_SCREENSHOT") == "1" else DOCS.parent / "test-artifacts"
    folder.mkdir(exist_ok=True)
    locator.page.evaluate("document.querySelector('.site-header').style.position = 'static'")  # not over the part
    locator.screenshot(path=str(folder / name))


# --------------------------------------------------------------------------- predict, then reveal


def start_predicting(page):
    """An anonymous visitor turns "Predict first" on and starts the prompt."""
    page.goto("/")
    expect(page.locator("#wheel-app")).to_have_attribute("data-booted", "true")
    page.get_by_test_id("predict-toggle").check()
    page.get_by_test_id("prompt-input").fill(PROMPT)
    page.get_by_test_id("prompt-submit").click()
    expect(page.get_by_test_id("wheel")).to_have_attribute("data-state", "ready", timeout=30_000)
    expect(page.get_by_test_id("predict-input")).to_be_visible()


def test_a_student_predicts_then_the_wheel_reveals_the_guess_and_the_score_counts_it(page):
    # The wheel is drawn but hidden until a guess is committed.
    start_predicting(page)
    expect(page.get_by_test_id("wheel")).to_be_hidden()
    expect(page.get_by_test_id("spin")).to_be_hidden()
    expect(page.get_by_test_id("predict-option")).not_to_have_count(0)
    assert_accessible(page, "the wheel hidden, waiting for a guess")

    # A typed guess: " mat" is one token of the model's vocabulary.
    page.get_by_test_id("predict-input").fill(" mat")
    page.get_by_test_id("predict-submit").click()
    marker = page.get_by_test_id("guess-marker")
    expect(marker).to_have_count(1)
    expect(page.get_by_test_id("wheel")).to_be_visible()
    rank = int(marker.get_attribute("data-rank"))
    token_id = marker.get_attribute("data-token-id")
    assert rank >= 1
    # The marker sits in the guess's own segment, or in Other when it has none.
    segment = page.locator(f'[data-testid="wheel-segment"][data-token-id="{token_id}"]')
    marked = segment if segment.count() else page.locator('[data-testid="wheel-segment"][data-token-id="other"]')
    expect(marked).to_have_class("segment guessed" if segment.count() else "segment segment-other guessed")
    result = page.get_by_test_id("predict-result")
    expect(result).to_contain_text("␠mat")
    expect(result).to_contain_text(f"number {rank} token")
    score = page.get_by_test_id("predict-score")
    expect(score).to_have_attribute("data-guesses", "1")
    expect(score).to_have_attribute("data-top1", "1" if rank == 1 else "0")
    assert_accessible(page, "the wheel revealed with the guess marked")
    shot(page.locator(".wheel-card"), "predict-then-reveal.png")

    # The next step hides the wheel again; a guess picked from the list counts too.
    page.get_by_test_id("spin").click()
    expect(page.get_by_test_id("history-token")).to_have_count(1)
    expect(page.get_by_test_id("predict-input")).to_be_visible()
    expect(page.get_by_test_id("predict-input")).to_be_focused()
    option = page.get_by_test_id("predict-option").first
    picked = option.get_attribute("data-token-id")
    option.click()
    expect(page.get_by_test_id("guess-marker")).to_have_attribute("data-token-id", picked)
    expect(score).to_have_attribute("data-guesses", "2")

    # The score and the guesses are the session's: a reload shows them again.
    page.reload()
    expect(page.get_by_test_id("guess-marker")).to_have_attribute("data-token-id", picked, timeout=30_000)
    expect(score).to_have_attribute("data-guesses", "2")


def test_an_empty_guess_is_refused_and_a_guess_of_several_tokens_counts_its_first(page):
    start_predicting(page)
    page.get_by_test_id("predict-submit").click()
    expect(page.locator('[data-testid="error"][data-for="predict"]')).to_contain_text("Type your guess")
    expect(page.get_by_test_id("wheel")).to_be_hidden()
    expect(page.get_by_test_id("guess-marker")).to_have_count(0)

    # " sofa cushion" is several tokens: the first counts, and the page says so.
    page.get_by_test_id("predict-input").fill(" sofa cushion")
    page.get_by_test_id("predict-submit").click()
    expect(page.get_by_test_id("predict-result")).to_contain_text("first token")
    expect(page.get_by_test_id("guess-marker")).to_have_count(1)
    expect(page.locator('[data-testid="error"][data-for="predict"]')).to_be_empty()
    expect(page.get_by_test_id("predict-score")).to_have_attribute("data-guesses", "1")


def test_an_instructor_runs_a_predict_then_reveal_round_and_sees_the_class_guesses_arrive(
    new_context, daphne_server, django_user_model
):
    teacher, classroom, lesson, (sam, ada) = a_class(django_user_model, students=("sam", "ada"), predict_first=True)
    projector = signed_in_page(new_context, daphne_server, teacher)
    projector.goto(f"/classes/{classroom.pk}/live/?lesson={lesson.pk}")
    expect(projector.get_by_test_id("live-connection")).to_have_attribute("data-state", "open")
    # The lesson asks to predict first: the model's side waits for the teacher.
    expect(projector.get_by_test_id("model-predictions")).to_be_hidden()
    expect(projector.get_by_test_id("model-veiled")).to_be_visible()
    expect(projector.get_by_test_id("live-class-chart")).to_be_hidden()
    expect(projector.get_by_test_id("live-guess-count")).to_have_text("0")

    picked = {}
    for user in (sam, ada):
        student = signed_in_page(new_context, daphne_server, user)
        student.goto(f"/classes/{classroom.pk}/")
        student.get_by_test_id("lesson-start-wheel").click()
        # The lesson turns predict-then-reveal on: the wheel waits for the guess.
        expect(student.get_by_test_id("predict-input")).to_be_visible(timeout=30_000)
        expect(student.get_by_test_id("predict-toggle")).to_be_checked()
        expect(student.get_by_test_id("predict-toggle")).to_be_disabled()
        expect(student.get_by_test_id("wheel")).to_be_hidden()
        option = student.get_by_test_id("predict-option").first
        picked[user.username] = option.get_attribute("data-token-id")
        option.click()
        expect(student.get_by_test_id("guess-marker")).to_have_attribute("data-token-id", picked[user.username])
        expect(student.get_by_test_id("wheel")).to_be_visible()
        if user.username == "sam":  # sam spins too: the guess stays with the token in the run
            student.get_by_test_id("spin").click()
            expect(student.get_by_test_id("history-token")).to_have_count(1)
            sam_session = student.url.split("session=")[1].split("&")[0]

    # Both guesses arrived on the projector, live.
    expect(projector.get_by_test_id("live-guess-count")).to_have_text("2")
    rows = projector.get_by_test_id("class-guess")
    counts = dict(rows.evaluate_all("els => els.map(e => [e.dataset.tokenId, Number(e.dataset.count)])"))
    expected = {}
    for token in picked.values():
        expected[token] = expected.get(token, 0) + 1
    assert counts == expected, (counts, picked)
    expect(projector.get_by_test_id("guess-summary")).to_contain_text("2 students guessed")

    # The teacher reveals the model: its top tokens beside the class's, and who beat it.
    projector.get_by_test_id("reveal-model").click()
    expect(projector.get_by_test_id("reveal-model")).to_have_attribute("aria-pressed", "true")
    expect(projector.get_by_test_id("model-prediction").first).to_be_visible()
    expect(projector.get_by_test_id("live-class-chart")).to_be_visible()
    expect(projector.get_by_test_id("guess-summary")).to_contain_text("guessed the model's top token")
    assert_accessible(projector, "the live page with the class's guesses revealed")
    shot(projector.get_by_test_id("class-predictions"), "class-predictions.png")

    # sam's run, replayed for the teacher, shows the guess made before the token.
    projector.goto(f"/runs/wheel/{sam_session}/")
    guess = projector.get_by_test_id("replay-guess")
    expect(guess).to_contain_text("Guessed first")
    expect(guess).to_contain_text("the model's number")


# --------------------------------------------------------------------------- the class tree


def pick(page, index):
    """Choose the legend's entry `index` (0: the model's top token) and wait for the next wheel."""
    before = page.get_by_test_id("history-token").count()
    item = page.locator('[data-testid="legend-item"]:not(.legend-other)').nth(index)
    token = item.get_attribute("data-token-id")
    item.click()
    expect(page.get_by_test_id("history-token")).to_have_count(before + 1)
    wheel_ready(page)
    return token


def test_three_students_take_different_paths_and_the_class_tree_shows_three_branches_as_wide_as_their_students(
    new_context, daphne_server, django_user_model
):
    teacher, classroom, lesson, students = a_class(django_user_model, students=("sam", "ada", "kim"))
    projector = signed_in_page(new_context, daphne_server, teacher)
    projector.goto(f"/classes/{classroom.pk}/live/?lesson={lesson.pk}")
    expect(projector.get_by_test_id("live-connection")).to_have_attribute("data-state", "open")
    tree = projector.get_by_test_id("class-tree")
    expect(projector.get_by_test_id("tree-status")).to_contain_text("No student")

    # sam: top, top · ada: top, second · kim: second. Three leaves; the first step splits 2 / 1.
    plans = {"sam": [0, 0], "ada": [0, 1], "kim": [1]}
    paths = {}
    for user in students:
        page = signed_in_page(new_context, daphne_server, user)
        open_lesson_wheel(page, classroom, lesson)
        paths[user.username] = [pick(page, i) for i in plans[user.username]]
        page.context.close()
    assert paths["sam"][0] == paths["ada"][0] != paths["kim"][0]
    assert paths["sam"][1] != paths["ada"][1]

    # The projector's tree grew live (no reload).
    root = tree.locator('[data-testid="tree-node"][data-depth="0"]')
    expect(root).to_have_attribute("data-count", "3")
    first = tree.locator('[data-testid="tree-node"][data-depth="1"]')
    expect(first).to_have_count(2)
    expect(tree.locator(f'[data-testid="tree-node"][data-depth="1"][data-token-id="{paths["sam"][0]}"]')).to_have_attribute("data-count", "2")
    expect(tree.locator(f'[data-testid="tree-node"][data-depth="1"][data-token-id="{paths["kim"][0]}"]')).to_have_attribute("data-count", "1")
    second = tree.locator('[data-testid="tree-node"][data-depth="2"]')
    expect(second).to_have_count(2)
    assert sorted(second.evaluate_all("els => els.map(e => e.dataset.tokenId)")) == sorted([paths["sam"][1], paths["ada"][1]])
    # Three branches reach the leaves, each as wide as its students: 2 : 1 at the first split.
    edges = dict(
        tree.locator('[data-testid="tree-edge"]').evaluate_all(
            "els => els.filter(e => e.getAttribute('d')).map(e => [e.dataset.tokenId + '@' + e.dataset.count, Number(e.getAttribute('stroke-width'))])"
        )
    )
    wide, thin = edges[f'{paths["sam"][0]}@2'], edges[f'{paths["kim"][0]}@1']
    assert wide == pytest.approx(2 * thin), edges
    # The top token at the first step is greedy (solid), the second one is not (dashed).
    expect(tree.locator(f'[data-testid="tree-edge"][data-token-id="{paths["sam"][0]}"]')).to_have_attribute("data-greedy", "true")
    expect(tree.locator(f'[data-testid="tree-edge"][data-token-id="{paths["kim"][0]}"]')).to_have_attribute("data-greedy", "false")
    assert_accessible(projector, "the live page with the class tree")
    shot(projector.locator(".tree-card"), "class-tree.png")

    # Re-root on the shared first token, and back to the whole tree.
    tree.locator(f'[data-testid="tree-node"][data-depth="1"][data-token-id="{paths["sam"][0]}"]').click()
    expect(projector.get_by_test_id("tree-detail")).to_contain_text("2 students took")
    projector.get_by_test_id("tree-reroot").click()
    expect(tree.locator('[data-testid="tree-node"][data-depth="1"]')).to_have_count(1)  # the new root
    expect(tree.locator('[data-testid="tree-node"][data-depth="2"]')).to_have_count(2)
    projector.get_by_test_id("tree-root-crumb").first.click()
    expect(tree.locator('[data-testid="tree-node"][data-depth="1"]')).to_have_count(2)

    # Exports: the tree's JSON and a standalone SVG picture.
    with projector.expect_download() as download:
        projector.get_by_test_id("tree-export-svg").click()
    svg = Path(download.value.path()).read_text()
    assert svg.startswith("<?xml") and "<svg" in svg and 'data-count="3"' in svg
    with projector.expect_download() as download:
        projector.get_by_test_id("tree-export-json").click()
    import json

    exported = json.loads(Path(download.value.path()).read_text())
    assert exported["students"] == 3 and exported["node"]["count"] == 3

    # The dashboard shows the same tree, read-only.
    projector.goto(f"/classes/{classroom.pk}/dashboard/")
    dashboard_tree = projector.locator(f'[data-testid="class-tree"][data-lesson-id="{lesson.pk}"]')
    expect(dashboard_tree.locator('[data-testid="tree-node"][data-depth="0"]')).to_have_attribute("data-count", "3")
    expect(dashboard_tree.locator('[data-testid="tree-node"][data-depth="2"]')).to_have_count(2)
    assert_accessible(projector, "the dashboard with the class tree")

    # Open the wheel at a leaf: a new session of the teacher's at that text.
    leaf = dashboard_tree.locator(f'[data-testid="tree-node"][data-depth="2"][data-token-id="{paths["ada"][1]}"]')
    leaf.focus()
    projector.keyboard.press("Enter")
    with projector.context.expect_page() as opened:
        projector.get_by_test_id("tree-open").click()
    wheel = opened.value
    wheel_ready(wheel)
    expect(wheel.get_by_test_id("text-so-far")).to_contain_text(PROMPT)
    assert "session=" in wheel.url


# --------------------------------------------------------------------------- same seed, same story


def spin_tokens(page, n):
    for i in range(n):
        page.get_by_test_id("spin").click()
        expect(page.get_by_test_id("history-token")).to_have_count(i + 1, timeout=30_000)
        wheel_ready(page)
    return page.get_by_test_id("history-token").evaluate_all("els => els.map(e => Number(e.dataset.tokenId))")


def test_two_students_with_the_class_seed_spin_the_same_tokens(new_context, daphne_server, django_user_model):
    teacher, classroom, lesson, students = a_class(django_user_model, students=("sam", "ada"), seed=7)
    stories = []
    for user in students:
        page = signed_in_page(new_context, daphne_server, user)
        open_lesson_wheel(page, classroom, lesson)
        expect(page.get_by_test_id("seed")).to_have_value("7")  # the class's seed, prefilled
        stories.append(spin_tokens(page, 4))
        if user.username == "sam":
            assert_accessible(page, "the wheel with the class seed")
            shot(page.locator(".wheel-layout"), "same-seed.png")
            page.reload()
            expect(page.get_by_test_id("seed")).to_have_value("7")  # the session's seed, restored
    assert stories[0] == stories[1], stories
    assert len(stories[0]) == 4
    # The projector says the class spins with a seed.
    projector = signed_in_page(new_context, daphne_server, teacher)
    projector.goto(f"/classes/{classroom.pk}/live/?lesson={lesson.pk}")
    expect(projector.get_by_test_id("live-class-seed")).to_contain_text("Class seed 7")


def test_a_visitor_sets_a_seed_and_the_same_seed_tells_the_same_story(new_context):
    stories = []
    for seed in ("42", "42"):
        page = new_context(reduced_motion="reduce").new_page()
        page.goto("/")
        expect(page.locator("#wheel-app")).to_have_attribute("data-booted", "true")
        page.get_by_test_id("seed").fill(seed)
        page.get_by_test_id("seed").press("Enter")
        expect(page.get_by_test_id("seed-status")).to_contain_text("press Start")
        page.get_by_test_id("prompt-input").fill("Once upon a time")
        page.get_by_test_id("prompt-submit").click()
        wheel_ready(page)
        stories.append(spin_tokens(page, 3))
        page.reload()
        expect(page.get_by_test_id("seed")).to_have_value(seed, timeout=30_000)
        # Changing the seed of the running session is saved on the server.
        page.get_by_test_id("seed").fill("43")
        page.get_by_test_id("seed").press("Enter")
        expect(page.get_by_test_id("seed-status")).to_have_attribute("data-seed", "43")
        page.context.close()
    assert stories[0] == stories[1], stories



def test_the_playground_drawer_starts_a_lesson_with_its_class_seed(new_context, daphne_server, django_user_model):
    teacher, classroom, lesson, (sam,) = a_class(django_user_model, seed=7, max_tokens=3)
    outputs = []
    for _ in range(2):
        page = signed_in_page(new_context, daphne_server, sam)
        page.goto(f"/classes/{classroom.pk}/")
        page.get_by_test_id("lesson-start-playground").click()
        expect(page.get_by_test_id("playground-input")).to_have_value(PROMPT)
        expect(page.get_by_test_id("playground-seed")).to_have_value("7")  # the class's seed, sent with start
        page.get_by_test_id("playground-play").click()
        generated = page.get_by_test_id("playground-output").first.locator(".pg-gen")
        expect(generated).to_have_count(3, timeout=90_000)  # the lesson's max_tokens
        expect(page.get_by_test_id("playground-drawer")).not_to_have_attribute("data-state", re.compile("playing|starting"))
        expect(generated).to_have_count(3)
        outputs.append(generated.all_inner_texts())
        page.context.close()
    assert outputs[0] == outputs[1], outputs


def test_a_class_tree_of_30_students_and_20_tokens_stays_legible(page):
    """The tree.json the server would send for a real class's size, drawn by
    the page's own module: boxes never overlap, text is at least 11 px, rare
    branches collapse into "… N more" and the depth cap marks what is below."""
    import random

    from classrooms import tree

    rng = random.Random(11)
    paths = []
    for student in range(30):
        steps, token = [], 0
        for depth in range(20):
            # Most of the class agrees early on, then the paths spread out.
            token = token * 7 + (0 if rng.random() < 0.8 - depth * 0.08 else rng.randrange(1, 9))
            steps.append(tree.Step(token % 49152, f" w{token % 997}", rng.random(), token % 7 == 0))
        paths.append((student, steps))
    node = tree.build(paths, depth=8, keep=4)
    data = {"lesson": 1, "prompt": PROMPT, "root_path": [], "students": node["count"], "node": node}

    page.goto("/")
    boxes = page.evaluate(
        """async (data) => {
            const { drawTree } = await import("/static/lessons/tree-svg.js");
            const host = document.createElement("div");
            document.body.append(host);
            drawTree(host, data, { rootDepth: 0, rootLabel: "the prompt", selectedKey: null, onSelect() {}, onMore() {} });
            const rect = (g) => { const b = g.querySelector("rect").getBBox(); return [b.x, b.y, b.width, b.height]; };
            return {
                nodes: [...host.querySelectorAll('[data-testid="tree-node"], [data-testid="tree-more"]')].map(rect),
                more: host.querySelectorAll('[data-testid="tree-more"]').length,
                truncated: [...host.querySelectorAll('[data-testid="tree-node"]')].filter(g => g.textContent.includes("⋯")).length,
                fonts: [...host.querySelectorAll("text, tspan")].map(t => Number(t.getAttribute("font-size") || 99)),
                rootCount: host.querySelector('[data-testid="tree-node"][data-depth="0"]').dataset.count,
                overflowing: [...host.querySelectorAll('[data-testid="tree-node"]')].filter(g => {
                    const box = g.querySelector("rect").getBBox(), text = g.querySelector("text").getBBox();
                    return text.x + text.width > box.x + box.width;
                }).map(g => g.textContent),
            };
        }""",
        data,
    )
    assert boxes["rootCount"] == "30"
    assert boxes["more"] >= 1 and boxes["truncated"] >= 1
    assert min(boxes["fonts"]) >= 11
    assert not boxes["overflowing"], boxes["overflowing"]
    rects = boxes["nodes"]
    for i, (x, y, w, h) in enumerate(rects):
        for x2, y2, w2, h2 in rects[i + 1 :]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, "two boxes of the tree overlap"
