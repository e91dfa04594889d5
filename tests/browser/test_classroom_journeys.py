"""The two classroom journeys, as people do them: real daphne, real model, Chromium.

1. An instructor creates a class and a lesson with threshold 5%.
2. A student signs up, joins with the code, spins the lesson's wheel (every
   segment ≥ 5%), saves the run; the instructor sees the spin arrive on the
   live class wheel, pushes the next step to the student's screen, and finds
   the run on the dashboard.
"""

import re

import pytest
from playwright.sync_api import expect

from classrooms import access
from classrooms.models import Classroom, InstructorRole, Lesson

pytestmark = pytest.mark.browser

PASSWORD = "a-long-test-password-42"


@pytest.fixture
def browser_context_args():
    return {"reduced_motion": "reduce"}


def sign_in(page, username, password=PASSWORD):
    page.goto("/accounts/login/")
    form = page.get_by_test_id("login-form")
    form.get_by_label("Username").fill(username)
    form.get_by_label("Password").fill(password)
    page.get_by_test_id("login-submit").click()
    expect(page.get_by_test_id("sign-out")).to_be_visible()


def create_class_and_lesson(page):
    page.goto("/classes/")
    page.get_by_test_id("class-name").fill("Period 3 — language models")
    page.get_by_test_id("class-create").click()
    code = page.get_by_test_id("join-code").inner_text().strip()
    assert re.fullmatch(r"[ACDEFGHJKMNPQRTUVWXY34679]{6}", code), code
    # The header now acts in the new class.
    expect(page.get_by_test_id("class-picker").locator("option:checked")).to_contain_text("Period 3")

    page.get_by_test_id("lesson-new").click()
    form = page.get_by_test_id("lesson-form")
    form.get_by_label("Title", exact=True).fill("The cat sat")
    form.get_by_label("Prompt", exact=True).fill("The cat sat on the")
    form.get_by_label("Threshold (%)").fill("5")
    form.get_by_label("Students may change the threshold").select_option("false")
    page.get_by_test_id("lesson-save").click()
    expect(page.get_by_test_id("lesson-row")).to_have_count(1)
    expect(page.get_by_test_id("lesson-row")).to_contain_text("5.0%")
    return code


def wait_until_ready(page):
    expect(page.get_by_test_id("wheel")).to_have_attribute("data-state", "ready", timeout=30_000)
    expect(page.locator("#wheel-app")).to_have_attribute("data-state", "ready", timeout=30_000)


def test_an_instructor_creates_a_class_and_a_lesson_with_a_5_percent_threshold(page, django_user_model):
    teacher = django_user_model.objects.create_user("rivera", "rivera@example.com", PASSWORD)
    InstructorRole.objects.create(user=teacher)  # granted by an admin
    sign_in(page, "rivera")
    create_class_and_lesson(page)
    lesson = Lesson.objects.get(title="The cat sat")
    assert lesson.threshold == pytest.approx(0.05) and lesson.students_may_change_threshold is False
    assert access.role_in(teacher, Classroom.objects.get()) == "instructor"


def test_a_student_joins_spins_the_lesson_saves_and_the_instructor_sees_it_live_and_on_the_dashboard(
    new_context, django_user_model
):
    teacher_user = django_user_model.objects.create_user("rivera", "rivera@example.com", PASSWORD)
    InstructorRole.objects.create(user=teacher_user)
    teacher = new_context(reduced_motion="reduce").new_page()
    sign_in(teacher, "rivera")
    code = create_class_and_lesson(teacher)

    # The instructor opens the lesson's first step on the projector.
    teacher.get_by_test_id("lesson-live").click()
    expect(teacher.get_by_test_id("live-context")).to_contain_text("The cat sat on the")
    expect(teacher.get_by_test_id("live-connection")).to_have_attribute("data-state", "open")
    chart = teacher.get_by_test_id("live-class-chart")
    expect(chart.locator("rect[data-series=model]").first).to_be_visible()
    expect(teacher.get_by_test_id("live-spin-count")).to_have_text("0")

    # A student signs up and joins with the code, typed in lower case.
    student = new_context(reduced_motion="reduce").new_page()
    student.goto("/")
    student.get_by_test_id("sign-up").click()
    form = student.get_by_test_id("signup-form")
    form.get_by_label("Username").fill("sam")
    form.get_by_label("Email").fill("sam@example.com")
    form.get_by_label("Password", exact=True).fill(PASSWORD)
    form.get_by_label("Password confirmation").fill(PASSWORD)
    student.get_by_test_id("signup-submit").click()
    student.get_by_test_id("join-code-input").fill(code.lower())
    student.get_by_test_id("join-submit").click()
    expect(student.get_by_test_id("class-picker").locator("option:checked")).to_contain_text("Period 3")

    # ...and spins the lesson's wheel: every segment is at least 5%.
    student.get_by_test_id("lesson-start-wheel").click()
    wait_until_ready(student)
    segments = student.locator('[data-testid="wheel-segment"]:not([data-token-id="other"])')
    assert segments.count() >= 1
    probabilities = segments.evaluate_all("els => els.map(e => Number(e.dataset.probability))")
    assert all(p >= 0.05 for p in probabilities), probabilities
    threshold = student.get_by_test_id("threshold")
    assert threshold.get_attribute("min") == threshold.get_attribute("max")  # the class fixed it
    student.get_by_test_id("spin").click()
    expect(student.get_by_test_id("history-token")).to_have_count(1)
    landed = student.get_by_test_id("history-token").first.get_attribute("data-token-id")

    # The spin arrives on the projector.
    expect(teacher.get_by_test_id("live-spin-count")).to_have_text("1")
    expect(teacher.get_by_test_id("live-student-count")).to_have_text("1")
    expect(chart).to_have_attribute("data-spins", "1")
    class_bars = chart.locator("rect[data-series=class]")
    values = class_bars.evaluate_all("els => els.map(e => [e.dataset.tokenId, Number(e.dataset.value)])")
    assert [v for _, v in values if v > 0] == [1.0], values
    assert landed in {t for t, v in values if v > 0} or "other" in {t for t, v in values if v > 0}

    # The student saves the run with a title.
    student.get_by_test_id("save-run").click()
    student.get_by_test_id("save-run-title").fill("My cat wheel")
    student.get_by_test_id("save-run-submit").click()
    expect(student.get_by_test_id("save-run-status")).to_contain_text("Saved")

    # The instructor moves the class on and pushes the step: the student's screen follows.
    first_url = student.url
    chosen = teacher.get_by_test_id("live-next-token").locator("option:checked").inner_text()
    teacher.get_by_test_id("live-next").click()
    expect(teacher.get_by_test_id("live-step")).to_have_text("2")
    student.wait_for_url(lambda url: url != first_url and "session=" in url, timeout=15_000)
    wait_until_ready(student)
    token_text = chosen.split(" · ")[0].replace("␠", " ")
    expect(student.get_by_test_id("text-so-far")).to_contain_text(("The cat sat on the" + token_text).strip())

    # The dashboard lists the saved run; its replay shows the spin, read-only.
    classroom = Classroom.objects.get()
    teacher.goto(f"/classes/{classroom.pk}/dashboard/")
    row = teacher.locator('[data-testid="dashboard-student"][data-username="sam"]')
    expect(row).to_contain_text("My cat wheel")
    row.get_by_role("link", name="My cat wheel").click()
    expect(teacher.get_by_test_id("read-only")).to_be_visible()
    expect(teacher.get_by_test_id("replay-chosen")).to_contain_text("spun")
    expect(teacher.get_by_test_id("replay-offered").locator("[data-chosen=true]")).to_have_count(1)
    teacher.goto(f"/classes/{classroom.pk}/dashboard/")
    expect(teacher.get_by_test_id("lesson-step").first).to_contain_text("×1")


def test_a_student_opens_a_lesson_in_the_playground_and_its_settings_apply(page, django_user_model):
    from classrooms.models import Membership

    teacher = django_user_model.objects.create_user("rivera", password=PASSWORD)
    student = django_user_model.objects.create_user("sam", password=PASSWORD)
    classroom = Classroom.objects.create(name="Period 3", created_by=teacher)
    Membership.objects.create(classroom=classroom, user=teacher, role=Membership.INSTRUCTOR)
    Membership.objects.create(classroom=classroom, user=student, role=Membership.STUDENT)
    Lesson.objects.create(
        classroom=classroom,
        title="Short story",
        prompt="Once upon a time",
        max_tokens=5,
        temperature_min=0.5,
        temperature_max=1.2,
    )

    sign_in(page, "sam")
    page.goto(f"/classes/{classroom.pk}/")
    page.get_by_test_id("lesson-start-playground").click()
    expect(page.get_by_test_id("playground-drawer")).to_be_visible()
    expect(page.get_by_test_id("playground-input")).to_have_value("Once upon a time")
    # The temperature slider offers the lesson's range (0.5-1.2), not the class's (up to 2).
    temperature = page.get_by_test_id("playground-temperature")
    expect(temperature).to_have_attribute("max", "1.2")
    expect(temperature).to_have_attribute("min", "0.5")
    page.get_by_test_id("playground-play").click()
    # The lesson allows 5 tokens per run: the stream stops there, whatever the drawer asked for.
    expect(page.get_by_test_id("playground-status")).to_contain_text("max length (5 tokens)", timeout=30_000)
