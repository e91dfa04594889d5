"""Every page and state a person reaches, for the checks that must hold on all
of them (tests/browser/test_accessibility.py runs axe-core at each stop,
tests/browser/test_content_security_policy.py watches for CSP violations).

``tour(new_context, daphne_server, django_user_model)`` is a generator: it brings a page to
one state, yields ``(name, page)``, and goes on to the next when the caller
has checked it; at the end it fails if any page had an uncaught script error.
It visits, as people do:

* anonymous: the wheel before a prompt and with an error shown, sign-in, sign-up;
* an instructor who is also staff, signed in: the wheel drawn, the wheel after
  a spin, the playground drawer while it plays, Classes, a class, its
  dashboard, the live class wheel, My runs (and its class filter), a run's
  replay, Usage, the admin.
"""

from __future__ import annotations

from playwright.sync_api import expect

PASSWORD = "a-long-test-password-42"
PROMPT = "The cat sat on the"


def signed_in_page(new_context, daphne_server, user):
    """A page whose context carries ``user``'s session cookie (the sign-in form
    itself is one of the tour's stops, anonymously)."""
    from django.test import Client

    client = Client()
    client.force_login(user)
    context = new_context(reduced_motion="reduce")
    context.add_cookies([{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": daphne_server.url}])
    return context.new_page()


def wheel_ready(page):
    expect(page.get_by_test_id("wheel")).to_have_attribute("data-state", "ready", timeout=30_000)
    expect(page.locator("#wheel-app")).to_have_attribute("data-state", "ready", timeout=30_000)
    expect(page.locator("#wheel-loading")).to_be_hidden()


def a_class_with_a_lesson(django_user_model):
    """A staff instructor, their class with one student and one lesson."""
    from classrooms.models import Classroom, InstructorRole, Lesson, Membership

    teacher = django_user_model.objects.create_user("rivera", "rivera@example.com", PASSWORD, is_staff=True)
    InstructorRole.objects.create(user=teacher)
    student = django_user_model.objects.create_user("sam", "sam@example.com", PASSWORD)
    classroom = Classroom.objects.create(name="Period 3 — language models", created_by=teacher)
    Membership.objects.create(classroom=classroom, user=teacher, role=Membership.INSTRUCTOR)
    Membership.objects.create(classroom=classroom, user=student, role=Membership.STUDENT)
    lesson = Lesson.objects.create(classroom=classroom, title="The cat sat", prompt=PROMPT)
    return teacher, classroom, lesson


def play_to_the_end(page, status, attempts=5):
    """Play until the status line says ``status`` (the run ended), pressing
    Play again when the drawer's 5 s watchdog paused a slow run. Returns how
    many times the run was paused that way."""
    pauses = 0
    for _ in range(attempts):
        page.wait_for_function(
            """status => document.getElementById('pg-status').textContent === status
                || (document.getElementById('pg-error').textContent
                    && !['starting', 'playing'].includes(document.getElementById('playground-drawer').dataset.state))""",
            arg=status,
            timeout=120_000,
        )
        if page.get_by_test_id("playground-status").inner_text() == status:
            return pauses
        expect(page.get_by_test_id("playground-error")).to_contain_text("timed out")
        pauses += 1
        page.get_by_test_id("playground-play").click()
    raise AssertionError(f"the run did not end after {attempts} tries")


def play_until_tokens_arrive(page, attempts=5):
    """Press Play until the drawer shows generated tokens. On a busy machine
    (the model on 2 shared cores) a first token can take over the drawer's
    5 s watchdog, which pauses the run with a message: Play again continues."""
    play = page.get_by_test_id("playground-play")
    for attempt in range(attempts):
        # The first press waits for Play to be offered (the model list comes over
        # the socket); a later one not while a late answer has it playing again.
        if attempt == 0 or play.is_enabled():
            play.click()
        page.wait_for_function(
            """() => document.querySelectorAll('#pg-output .pg-gen').length > 1
                || (document.getElementById('pg-error').textContent
                    && !['starting', 'playing'].includes(document.getElementById('playground-drawer').dataset.state))""",
            timeout=60_000,
        )
        if page.locator("#pg-output .pg-gen").count() > 1:
            expect(page.get_by_test_id("playground-error")).to_be_empty()
            return
        expect(page.get_by_test_id("playground-error")).to_contain_text("timed out")
    raise AssertionError(f"no tokens after {attempts} tries: {page.get_by_test_id('playground-error').inner_text()}")


def tour(new_context, daphne_server, django_user_model):
    # Every page of the tour works without an uncaught script error.
    errors = []

    def watched(**options):
        context = new_context(**options)
        context.on("page", lambda p: p.on("pageerror", lambda exc: errors.append(f"{p.url}: {exc}")))
        return context

    # ---- anonymous
    page = watched(reduced_motion="reduce").new_page()
    page.goto("/")
    expect(page.locator("#wheel-app")).to_have_attribute("data-booted", "true")
    yield "wheel, before a prompt", page
    page.get_by_test_id("prompt-input").fill("a" * 2001)
    page.get_by_test_id("prompt-submit").click()
    expect(page.locator('[data-testid="error"][data-for="prompt"]')).to_be_visible()
    yield "wheel, an error shown", page
    page.goto("/accounts/login/")
    expect(page.get_by_test_id("login-form")).to_be_visible()
    yield "sign-in", page
    page.goto("/accounts/signup/")
    expect(page.get_by_test_id("signup-form")).to_be_visible()
    yield "sign-up", page
    page.context.close()

    # ---- a staff instructor
    teacher, classroom, lesson = a_class_with_a_lesson(django_user_model)
    page = signed_in_page(watched, daphne_server, teacher)
    page.goto("/")
    expect(page.get_by_test_id("sign-out")).to_be_visible()
    page.get_by_test_id("prompt-input").fill(PROMPT)
    page.get_by_test_id("prompt-submit").click()
    wheel_ready(page)
    yield "wheel, drawn", page
    page.get_by_test_id("spin").click()
    expect(page.get_by_test_id("history-token")).to_have_count(1)
    wheel_ready(page)
    yield "wheel, after a spin", page

    page.get_by_test_id("playground-open").click()
    expect(page.get_by_test_id("playground-drawer")).to_be_visible()
    page.get_by_test_id("playground-input").fill("Once upon a time")
    play_until_tokens_arrive(page)
    yield "playground drawer, playing", page
    page.get_by_test_id("playground-pause").click()
    page.keyboard.press("Escape")

    page.goto("/classes/")
    expect(page.locator("h1")).to_be_visible()
    yield "classes", page
    page.goto(f"/classes/{classroom.pk}/")
    expect(page.get_by_test_id("lesson-row")).to_have_count(1)
    yield "a class", page
    page.goto(f"/classes/{classroom.pk}/dashboard/")
    expect(page.locator("h1")).to_be_visible()
    yield "dashboard", page
    page.goto(f"/classes/{classroom.pk}/live/?lesson={lesson.pk}")
    expect(page.get_by_test_id("live-connection")).to_have_attribute("data-state", "open")
    expect(page.get_by_test_id("live-class-chart").locator("rect").first).to_be_visible()
    yield "live class wheel", page
    page.goto("/runs/")
    expect(page.get_by_test_id("run-row").first).to_be_visible()
    # The class filter submits itself when changed (a script, not an inline handler).
    page.locator("#run-class-filter").select_option(str(classroom.pk))
    page.wait_for_url(f"**/runs/?class={classroom.pk}")
    expect(page.get_by_test_id("run-row").first).to_be_visible()
    yield "my runs", page
    page.get_by_test_id("run-link").first.click()
    expect(page.get_by_test_id("replay-chosen")).to_be_visible()
    yield "a run's replay", page
    page.goto("/usage/")
    expect(page.locator("h1")).to_be_visible()
    expect(page.locator("[data-chart] svg").first).to_be_visible()
    yield "usage", page
    page.goto("/admin/")
    expect(page.locator("#site-name")).to_be_visible()
    yield "admin", page
    assert not errors, errors
