"""gunicorn's settings for this product (read from the working directory: the image's /app).

* Access lines go through workplace.access_log.GunicornLogger: OAuth codes and calendar-feed
  tokens are redacted.
* Database connections are kept between requests here, and only here: gunicorn's workers and
  threads are a fixed pool (workers x threads connections at most), unlike runserver's
  thread per request. settings.env reads DATABASE_CONN_MAX_AGE (default 0: close after
  each request); connections kept are health-checked before reuse (CONN_HEALTH_CHECKS).
"""

import os

logger_class = "workplace.access_log.GunicornLogger"
os.environ.setdefault("DATABASE_CONN_MAX_AGE", "60")
