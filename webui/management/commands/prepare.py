"""`manage.py prepare`: migrate the database, make sure a login exists, say how to use it.

One command, so `./run` starts Python once for both. Creates the superuser `admin`
if it is missing. FLOTILLA_ADMIN_PASSWORD (settings.FLOTILLA_ADMIN_PASSWORD) sets its
password (every run) and must pass AUTH_PASSWORD_VALIDATORS; otherwise a new admin gets a
random password, kept in var/admin-password (readable by this user only) and printed on every run.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

ADMIN_USERNAME = "admin"


class Command(BaseCommand):
    help = "Migrate the database, create the admin login if missing, and print how to log in."

    def handle(self, *args: Any, **options: Any) -> None:
        wanted: str | None = settings.FLOTILLA_ADMIN_PASSWORD
        if wanted:
            check_admin_password(wanted)
        call_command("migrate", interactive=False, verbosity=0)
        password_file = settings.BASE_DIR / "var" / "admin-password"
        admin = User.objects.filter(username=ADMIN_USERNAME).first()
        if admin is None:
            password = wanted or secrets.token_urlsafe(12)
            User.objects.create_superuser(ADMIN_USERNAME, email="", password=password)
            if not wanted:
                password_file.parent.mkdir(parents=True, exist_ok=True)
                password_file.write_text(password + "\n", encoding="utf-8")
                password_file.chmod(0o600)
        elif wanted:
            admin.set_password(wanted)
            admin.save(update_fields=["password"])
        if wanted:
            self.stdout.write(f"==> log in as '{ADMIN_USERNAME}' with FLOTILLA_ADMIN_PASSWORD")
        elif password_file.exists():
            password = password_file.read_text(encoding="utf-8").strip()
            self.stdout.write(
                f"==> log in as '{ADMIN_USERNAME}', password '{password}' (kept in {password_file}; "
                "set FLOTILLA_ADMIN_PASSWORD to choose one)"
            )
        else:
            self.stdout.write(f"==> log in as '{ADMIN_USERNAME}' with the password you gave it")


def check_admin_password(password: str) -> None:
    """Refuse a FLOTILLA_ADMIN_PASSWORD that AUTH_PASSWORD_VALIDATORS refuse, saying why."""
    try:
        validate_password(password, User(username=ADMIN_USERNAME))
    except ValidationError as exc:
        raise CommandError(
            "FLOTILLA_ADMIN_PASSWORD is refused by the password validators: " + " ".join(exc.messages)
        ) from None
