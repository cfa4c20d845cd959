"""The README's REST API quick start runs as written (issue 13): its shell blocks are taken
from README.md and run with bash against a live server on the seeded demo tenant. Only the
server's address is replaced (the test server's port is chosen at random)."""

import os
import re
import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from reservations.models import Reservation, State
from workplace.models import ApiToken

ROOT = Path(__file__).resolve().parents[2]
README_API = "http://127.0.0.1:8000"


def quickstart_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text[text.index("## REST API quick start"):]
    section = section[:section.index("| endpoint |")]
    return re.findall(r"```sh\n(.*?)```", section, flags=re.S)


def test_the_readme_quick_start_has_the_token_and_the_booking_walkthrough():
    tokens, walkthrough = quickstart_blocks()
    assert "create_api_token alice" in tokens and "revoke_api_token" in tokens
    assert "date -d 'tomorrow 09:00'" in walkthrough and "/reservations/42/" not in walkthrough
    assert README_API in walkthrough


@pytest.mark.django_db(transaction=True)
def test_the_readme_quick_start_runs_as_written_against_a_live_server(live_server, emulator):
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    db = connection.settings_dict
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "settings.test",
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "REDIS_URL": settings.REDIS_URL,
    }
    script = "\n".join(block.replace(README_API, live_server.url) for block in quickstart_blocks())
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr

    assert set(ApiToken.objects.filter(user__username="alice").values_list("name", flat=True)) == {"ServiceNow", "quickstart"}
    booking = Reservation.objects.get(subject="Design review (v2)")
    assert booking.state in {State.CONFIRMED, State.AWAITING_CONFIRMATION}
    assert booking.room.equipment.filter(slug="projector").exists()
    standups = Reservation.objects.filter(subject="Stand-up", requested_by__username="alice")
    assert standups.count() == 8
    assert set(standups.values_list("state", flat=True)) == {State.CANCELLED}
    assert '"count"' in done.stdout and '"cancelled"' in done.stdout
