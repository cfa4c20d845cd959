"""A real Celery worker subprocess on Redis, for the end-to-end tests (outbound, inbound, browser)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]


class Worker:
    def __init__(self, env: dict, log_path: Path, *, queues: str | None = None, pool: str = "prefork", concurrency: int = 4):
        self.env = env
        self.log_path = log_path
        self.queues = queues  # "-Q answers,outbound": only those (default: all five)
        self.pool = pool  # "threads": the product's outbound worker (docker-compose.yml)
        self.concurrency = concurrency
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        since = self.log_path.stat().st_size if self.log_path.exists() else 0  # a restart appends to the log
        log = open(self.log_path, "ab")  # noqa: SIM115 - closed once the child holds it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "workplace", "worker", "--loglevel=INFO", f"--concurrency={self.concurrency}",
             f"--pool={self.pool}", "--without-heartbeat", "--without-gossip", "--without-mingle", "-n", f"sync-test-{os.getpid()}@%h",
             *(["-Q", self.queues] if self.queues else [])],
            cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        log.close()  # the child has its own descriptor
        try:
            self._wait_ready(since)
        except BaseException:
            self.kill()  # no fixture teardown follows a failed start
            raise

    def _wait_ready(self, since: int, timeout: float = 60) -> None:
        def ready() -> bool:
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited: {self.log_path.read_text()[-3000:]}")
            return b"ready." in self.log_path.read_bytes()[since:]

        try:
            wait_for(ready, timeout=timeout, message="the worker's 'ready.'")
        except AssertionError:
            raise RuntimeError(f"worker not ready: {self.log_path.read_text()[-3000:]}") from None

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool children), like a lost machine."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # also pool children whose parent already exited
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        """End of the test: kill the whole process group at once. A warm shutdown only adds
        billiard's pool join (about 1.5 s) and would let a hung task outlive the test; the next
        test starts from a flushed Redis db and pytest-django flushes the tables after this."""
        self.kill()
        self.proc = None
