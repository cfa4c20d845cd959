"""The embedded default (`make run`: SQLite, no PostgreSQL) serves the portal's main pages.

Everything else in the suite runs on PostgreSQL; hand-written SQL (the busy intervals of the
finder and both grids) once answered 500 on SQLite. This migrates a fresh SQLite database in a
subprocess with the dev settings, seeds the demo tenant and gets each main page signed in."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import django
    django.setup()
    from django.core.management import call_command
    from django.test import Client
    from django.contrib.auth import get_user_model
    call_command("migrate", verbosity=0)
    call_command("seed_demo", verbosity=0)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(get_user_model().objects.get(username="alice"))
    for url in ("/", "/calendar/", "/calendar/week/", "/my/"):
        response = client.get(url, follow=True)
        print(url, response.status_code, response.content.count(b"<tr data-room="))
""")


def test_main_pages_answer_on_the_embedded_sqlite_default(tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env.update({"DJANGO_SETTINGS_MODULE": "settings.dev", "DATABASE_URL": f"sqlite:///{tmp_path / 'dev.sqlite3'}",
                "PYTHONPATH": str(ROOT)})
    done = subprocess.run([sys.executable, "-c", SCRIPT], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    answers = {line.split()[0]: line.split()[1:] for line in done.stdout.splitlines() if line.startswith("/")}
    statuses = {url: shown[0] for url, shown in answers.items()}
    assert statuses == {"/": "200", "/calendar/": "200", "/calendar/week/": "200", "/my/": "200"}, done.stdout + done.stderr[-3000:]
    # The grids' page of rooms is hand-written SQL too: the demo's rooms are drawn, not an empty grid.
    assert int(answers["/calendar/"][1]) > 0 and int(answers["/calendar/week/"][1]) > 0, done.stdout
