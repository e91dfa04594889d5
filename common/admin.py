"""Admin building blocks the apps' admins share."""

from django.contrib import admin


def text_start(field: str, description: str, length: int = 60):
    """A list column: the first ``length`` characters of the text ``field``."""

    @admin.display(description=description)
    def column(self, obj):
        return getattr(obj, field)[:length]

    return column


class RecordInline(admin.TabularInline):
    """Rows shown under their parent for the record: every field read-only,
    none deleted here."""

    extra = 0
    can_delete = False

    def get_readonly_fields(self, request, obj=None):
        return self.fields


def null_filter(name: str, field: str, choices: dict):
    """A list filter called ``name`` (its title and URL parameter) on whether
    ``field`` is empty: ``choices`` maps each URL value to (label, is empty)."""

    class NullFilter(admin.SimpleListFilter):
        title = parameter_name = name

        def lookups(self, request, model_admin):
            return [(value, label) for value, (label, _) in choices.items()]

        def queryset(self, request, queryset):
            if self.value() in choices:
                return queryset.filter(**{f"{field}__isnull": choices[self.value()][1]})
            return queryset

    return NullFilter
