from django.core.management.base import BaseCommand

from wheel.services import purge_expired


class Command(BaseCommand):
    help = "Delete anonymous wheel sessions idle for longer than WHEEL['ANONYMOUS_TTL_SECONDS'] (default 1 h)."

    def handle(self, **options):
        deleted = purge_expired()
        self.stdout.write(f"Purged {deleted} expired rows.")
