"""What operators see of the running product: the correlation id that follows one request
from the API through its tasks to each Graph call (``correlation``), JSON log lines that
carry it (``logs``), and the Prometheus metrics every process adds to in Redis and
``/metrics`` reads (``metrics``, ``exposition``).

The lowest layer: plain Python, Django's settings and Redis; it imports none of the apps
(they register what only they know: the mailbox classes, the database gauges).
"""
