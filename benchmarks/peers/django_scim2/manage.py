"""Django's command line for the django-scim2 peer (run with the peer's own virtual environment)."""

import os
import sys

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "scimpeer.settings")
    from django.core.management import execute_from_command_line

    execute_from_command_line(sys.argv)
