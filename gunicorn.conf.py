"""gunicorn's settings for this product (read from the working directory: the image's /app).

* Access lines go through workplace.access_log.GunicornLogger: OAuth codes and calendar-feed
  tokens are redacted.
* Database connections are kept between requests here, and only here: gunicorn's workers and
  threads are a fixed pool (workers x threads connections at most), unlike runserver's
  thread per request. settings.env reads DATABASE_CONN_MAX_AGE (default 0: close after
  each request); connections kept are health-checked before reuse (CONN_HEALTH_CHECKS).
* Each worker freezes its loaded application out of the garbage collector (``gc.freeze()``
  once the app is loaded): Python's full collections then skip Django's and the product's
  long-lived objects, and no longer stall a request for ~80 ms now and then (issue 14;
  bench/portal.py does the same after its warm-up).
"""

import gc
import os

logger_class = "workplace.access_log.GunicornLogger"
# Idle kept-alive connections stay open 75 s (gunicorn's default: 2 s). A client that reuses a
# connection the server is closing gets "Server disconnected" and its request fails: Graph's
# change notifications then count as failed and are retried (bench/webhook_burst.py saw it
# under bursts). Longer than the usual client and load balancer idle timeouts (60 s), as a
# backend behind one should be.
keepalive = 75
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "60")


def post_worker_init(worker) -> None:
    """The worker has loaded the application: what exists now lives as long as the worker."""
    gc.freeze()
