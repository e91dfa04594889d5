"""Admin for every model of the classrooms app, plus instructor grants on users."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db.models import Count, Q

from common.admin import RecordInline, null_filter, text_start

from .models import (
    Classroom,
    DailyUsage,
    InstructorInvite,
    InstructorRole,
    Lesson,
    LiveRound,
    LiveSpin,
    Membership,
)

User = get_user_model()


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    raw_id_fields = ("user",)
    fields = ("user", "role", "joined_at")


class LessonInline(admin.TabularInline):
    model = Lesson
    extra = 0
    fields = ("order", "title", "prompt", "model_name", "threshold")
    show_change_link = True


ArchivedFilter = null_filter("status", "archived_at", {"active": ("Active", True), "archived": ("Archived", False)})


@admin.register(Classroom)
class ClassroomAdmin(admin.ModelAdmin):
    list_display = (
        "name",
        "join_code",
        "created_by",
        "n_students",
        "n_lessons",
        "threshold",
        "students_may_change_threshold",
        "daily_token_quota",
        "created_at",
        "archived_at",
    )
    list_filter = (ArchivedFilter, "students_may_change_threshold", "top_p_enabled", "created_at")
    search_fields = ("name", "join_code", "description", "created_by__username")
    raw_id_fields = ("created_by",)
    inlines = [MembershipInline, LessonInline]
    actions = ["regenerate_codes", "archive", "unarchive"]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .annotate(
                _students=Count("memberships", filter=Q(memberships__role=Membership.STUDENT), distinct=True),
                _lessons=Count("lessons", distinct=True),
            )
        )

    @admin.display(description="students", ordering="_students")
    def n_students(self, obj):
        return obj._students

    @admin.display(description="lessons", ordering="_lessons")
    def n_lessons(self, obj):
        return obj._lessons

    @admin.action(description="Give the selected classes new join codes")
    def regenerate_codes(self, request, queryset):
        for classroom in queryset:
            classroom.regenerate_join_code()
        self.message_user(request, f"{queryset.count()} join code(s) regenerated.")

    @admin.action(description="Archive the selected classes")
    def archive(self, request, queryset):
        from django.utils import timezone

        n = queryset.filter(archived_at__isnull=True).update(archived_at=timezone.now())
        self.message_user(request, f"{n} class(es) archived.")

    @admin.action(description="Unarchive the selected classes")
    def unarchive(self, request, queryset):
        n = queryset.update(archived_at=None)
        self.message_user(request, f"{n} class(es) active again.")


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "classroom", "role", "joined_at")
    list_filter = ("role", "classroom", "joined_at")
    search_fields = ("user__username", "user__email", "classroom__name", "classroom__join_code")
    raw_id_fields = ("user", "classroom")


@admin.register(Lesson)
class LessonAdmin(admin.ModelAdmin):
    list_display = ("title", "classroom", "order", "short_prompt", "model_name", "threshold", "created_at")
    list_filter = ("classroom", "model_name", "created_at")
    search_fields = ("title", "prompt", "classroom__name")
    raw_id_fields = ("classroom",)
    short_prompt = text_start("prompt", "prompt")


@admin.register(InstructorInvite)
class InstructorInviteAdmin(admin.ModelAdmin):
    list_display = ("code", "note", "uses", "max_uses", "active", "expires_at", "created_by", "created_at")
    list_filter = ("active", "created_at")
    search_fields = ("code", "note", "created_by__username")
    readonly_fields = ("uses",)
    fields = ("code", "note", "max_uses", "uses", "expires_at", "active")

    def save_model(self, request, obj, form, change):
        if not change and obj.created_by_id is None:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)


@admin.register(InstructorRole)
class InstructorRoleAdmin(admin.ModelAdmin):
    list_display = ("user", "granted_by", "invite", "granted_at")
    list_filter = ("granted_at",)
    search_fields = ("user__username", "user__email", "invite__code")
    raw_id_fields = ("user", "granted_by", "invite")

    def save_model(self, request, obj, form, change):
        if not change and obj.granted_by_id is None:
            obj.granted_by = request.user
        super().save_model(request, obj, form, change)


class LiveSpinInline(RecordInline):
    model = LiveSpin
    fields = ("user", "token_text", "token_id", "probability", "category", "created_at")


@admin.register(LiveRound)
class LiveRoundAdmin(admin.ModelAdmin):
    list_display = ("classroom", "lesson", "step", "context_text", "n_spins", "started_by", "started_at", "ended_at")
    list_filter = ("classroom", "started_at")
    search_fields = ("classroom__name", "lesson__title", "context_text")
    raw_id_fields = ("classroom", "lesson", "started_by")
    inlines = [LiveSpinInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(_spins=Count("spins"))

    @admin.display(description="spins", ordering="_spins")
    def n_spins(self, obj):
        return obj._spins


@admin.register(LiveSpin)
class LiveSpinAdmin(admin.ModelAdmin):
    list_display = ("round", "user", "token_text", "probability", "category", "created_at")
    list_filter = ("category", "created_at")
    search_fields = ("token_text", "user__username", "round__classroom__name")
    raw_id_fields = ("round", "user")


@admin.register(DailyUsage)
class DailyUsageAdmin(admin.ModelAdmin):
    list_display = (
        "date", "user", "classroom", "model_name", "tool", "tokens", "sessions", "other_picks", "undos", "quota_hits", "guesses"
    )
    list_filter = ("date", "tool", "model_name", "classroom")
    search_fields = ("user__username", "classroom__name", "model_name")
    raw_id_fields = ("user", "classroom")
    date_hierarchy = "date"


# ---- users: show and grant the instructor role


InstructorFilter = null_filter(
    "instructor", "instructor_role", {"yes": ("Instructors", False), "no": ("Not instructors", True)}
)


class InstructorRoleInline(admin.StackedInline):
    model = InstructorRole
    fk_name = "user"
    extra = 0
    max_num = 1
    raw_id_fields = ("granted_by", "invite")
    verbose_name = "instructor role"


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class TokenWheelUserAdmin(UserAdmin):
    list_display = ("username", "email", "is_instructor", "is_staff", "n_classes", "date_joined", "last_login")
    list_filter = (InstructorFilter, "is_staff", "is_superuser", "is_active", "date_joined")
    inlines = [InstructorRoleInline]
    actions = ["grant_instructor", "revoke_instructor"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("instructor_role").annotate(_classes=Count("memberships"))

    @admin.display(boolean=True, description="instructor")
    def is_instructor(self, obj):
        return hasattr(obj, "instructor_role")

    @admin.display(description="classes", ordering="_classes")
    def n_classes(self, obj):
        return obj._classes

    @admin.action(description="Grant the instructor role")
    def grant_instructor(self, request, queryset):
        n = 0
        for user in queryset:
            _, created = InstructorRole.objects.get_or_create(user=user, defaults={"granted_by": request.user})
            n += created
        self.message_user(request, f"{n} user(s) are now instructors.", messages.SUCCESS)

    @admin.action(description="Revoke the instructor role")
    def revoke_instructor(self, request, queryset):
        n, _ = InstructorRole.objects.filter(user__in=queryset).delete()
        self.message_user(request, f"{n} instructor role(s) revoked (their classes stay).", messages.SUCCESS)
