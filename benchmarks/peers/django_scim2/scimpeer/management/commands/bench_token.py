"""``manage.py bench_token KEY``: create the benchmark's technical user and its bearer token."""

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from scimpeer.models import ApiToken, User


class Command(BaseCommand):
    help = "Create the technical user of the benchmark and its bearer token KEY."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key")

    def handle(self, *args: Any, **options: Any) -> None:
        user, _ = User.objects.get_or_create(username="benchmark-client")
        ApiToken.objects.update_or_create(key=options["key"], defaults={"user": user})
        from django.db import connection

        with connection.cursor() as cursor:
            journal = cursor.execute("PRAGMA journal_mode").fetchone()[0]
            synchronous = cursor.execute("PRAGMA synchronous").fetchone()[0]
        self.stdout.write(f"journal_mode={journal} synchronous={synchronous}")
