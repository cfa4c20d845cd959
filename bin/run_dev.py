#!/usr/bin/env python
"""`make run`: the product on its embedded default, end to end.

1. start the Graph/Entra emulator over TLS (its CA lands in var/emulator/ca.pem);
2. migrate the SQLite database and seed the demo tenant (idempotent);
3. start a Celery worker with beat (filesystem broker, or Redis when REDIS_URL is set);
4. serve the portal at http://127.0.0.1:8000 until Ctrl-C, then stop everything.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
VAR = ROOT / "var"


def main() -> int:
    env = dict(os.environ)
    env.setdefault("DJANGO_SETTINGS_MODULE", "settings.dev")
    env.setdefault("GRAPH_EMULATOR_STATE_DIR", str(VAR / "emulator"))
    env.setdefault("GRAPH_CA_BUNDLE", str(VAR / "emulator" / "ca.pem"))
    emulator_port = env.get("GRAPH_EMULATOR_PORT", "8443")
    env.setdefault("GRAPH_EMULATOR_URL", f"https://127.0.0.1:{emulator_port}")
    # STATIC_ROOT: runserver serves the apps' static files itself; WhiteNoise only warns when it is missing.
    (VAR / "static").mkdir(parents=True, exist_ok=True)
    children: list[subprocess.Popen] = []

    def spawn(*args: str) -> subprocess.Popen:
        child = subprocess.Popen(args, cwd=ROOT, env=env)
        children.append(child)
        return child

    def stop(*_):
        for child in reversed(children):
            if child.poll() is None:
                child.terminate()
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        # The dev webhook is http://127.0.0.1:8000, which Graph would refuse: allow http on loopback only.
        spawn(PY, "-m", "graph_emulator", "--port", emulator_port, "--seed", "demo", "--http-notifications", "loopback",
              "--state-dir", env["GRAPH_EMULATOR_STATE_DIR"], "--snapshot", str(VAR / "emulator" / "snapshot.json"))
        ca = Path(env["GRAPH_CA_BUNDLE"])
        for _ in range(100):
            if ca.exists():
                break
            time.sleep(0.1)
        subprocess.run([PY, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True)
        subprocess.run([PY, "manage.py", "seed_demo"], cwd=ROOT, env=env, check=True)
        spawn(PY, "-m", "celery", "-A", "workplace", "worker", "-B", "--loglevel", "INFO",
              "--concurrency", "2")  # beat's schedule: the database (django-celery-beat)
        print("\n  Portal: http://127.0.0.1:8000   admin: /admin/ (admin / demo-password)\n", flush=True)
        server = spawn(PY, "manage.py", "runserver", "127.0.0.1:8000", "--noreload")
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
