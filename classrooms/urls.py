from django.urls import include, path

from . import accounts_views, dashboard, live_views, runs, usage, views

classroom_patterns = [
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/instructor/", views.redeem_invite, name="redeem-invite"),
    path("accounts/data.json", accounts_views.account_data, name="account-data"),
    path("accounts/delete/", accounts_views.account_delete, name="account-delete"),
    path("classes/", views.class_list, name="list"),
    path("classes/new/", views.class_create, name="create"),
    path("classes/join/", views.class_join, name="join"),
    path("classes/act/", views.act, name="act"),
    path("classes/<int:pk>/", views.class_detail, name="detail"),
    path("classes/<int:pk>/settings/", views.class_settings, name="settings"),
    path("classes/<int:pk>/regenerate-code/", views.regenerate_code, name="regenerate-code"),
    path("classes/<int:pk>/archive/", views.archive, name="archive"),
    path("classes/<int:pk>/leave/", views.leave, name="leave"),
    path("classes/<int:pk>/members/<int:membership_pk>/remove/", views.remove_member, name="remove-member"),
    path("classes/<int:pk>/lessons/new/", views.lesson_edit, name="lesson-new"),
    path("classes/<int:pk>/lessons/<int:lesson_pk>/edit/", views.lesson_edit, name="lesson-edit"),
    path("classes/<int:pk>/lessons/<int:lesson_pk>/delete/", views.lesson_delete, name="lesson-delete"),
    path("classes/<int:pk>/lessons/<int:lesson_pk>/start/", views.lesson_start, name="lesson-start"),
    path("classes/<int:pk>/dashboard/", dashboard.dashboard, name="dashboard"),
    path("classes/<int:pk>/live/", live_views.live_page, name="live"),
    path("classes/<int:pk>/live/state/", live_views.live_state, name="live-state"),
    path("classes/<int:pk>/live/reset/", live_views.live_reset, name="live-reset"),
    path("classes/<int:pk>/live/next/", live_views.live_next, name="live-next"),
    path("classes/<int:pk>/live/push/", live_views.live_push, name="live-push"),
    path("classes/<int:pk>/live/end/", live_views.live_end, name="live-end"),
    path("classes/<int:pk>/live/rounds/<int:round_pk>/open/", live_views.live_round_open, name="live-round-open"),
    path("classes/<int:pk>/lessons/<int:lesson_pk>/tree.json", live_views.tree_json, name="lesson-tree"),
    path("classes/<int:pk>/lessons/<int:lesson_pk>/tree/open", live_views.tree_open, name="lesson-tree-open"),
    path("runs/", runs.runs_list, name="runs"),
    path("runs/<str:kind>/<uuid:pk>/", runs.run_detail, name="run-detail"),
    path("runs/<str:kind>/<uuid:pk>/rename/", runs.run_rename, name="run-rename"),
    path("runs/<str:kind>/<uuid:pk>/delete/", runs.run_delete, name="run-delete"),
    path("runs/<str:kind>/<uuid:pk>/fork/", runs.run_fork, name="run-fork"),
    path("runs/<str:kind>/<uuid:pk>/export/", runs.run_export, name="run-export"),
    path("usage/", usage.usage_page, name="usage"),
    path("usage/export.csv", usage.usage_csv, name="usage-csv"),
]

urlpatterns = [
    # Django's own auth views (login, logout, password change and reset) with
    # our templates; un-namespaced, as those views reverse their own names.
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include((classroom_patterns, "classrooms"))),
]
