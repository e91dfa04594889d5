"""Delete what is older than the retention period (PRIVACY["RETENTION_DAYS"],
the environment's RETENTION_DAYS): run it daily, beside purge_sessions."""

from django.conf import settings
from django.core.management.base import BaseCommand

from classrooms import privacy


class Command(BaseCommand):
    help = (
        "Delete anonymous sessions and runs, usage rows, and what deleted accounts left behind, "
        "once older than RETENTION_DAYS."
    )

    def handle(self, *args, **options):
        purged = privacy.purge()
        days = settings.PRIVACY["RETENTION_DAYS"]
        detail = ", ".join(f"{name.replace('_', ' ')}: {n}" for name, n in purged.items())
        self.stdout.write(f"Purged what is older than {days} days. {detail}")
