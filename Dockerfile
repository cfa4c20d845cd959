# The product's image: web (gunicorn), Celery worker and beat, and the emulator
# all run from it (see docker-compose.yml). Configuration comes from the environment.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    DJANGO_SETTINGS_MODULE=settings.prod \
    VAR_DIR=/app/var

WORKDIR /app

# Dependencies first (pinned in pyproject.toml), so code changes don't reinstall them.
COPY pyproject.toml ./
RUN pip install --upgrade pip && pip install .

COPY . .
# Static files are collected into the image (hashed, compressed); WhiteNoise serves them from
# gunicorn. settings.prod insists on its environment: build-time placeholders, used by nothing else.
RUN SECRET_KEY=collectstatic DATABASE_URL=postgres://build@localhost/build REDIS_URL=redis://localhost:6379/0 \
    TOKEN_ENCRYPTION_KEY=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA= \
    python manage.py collectstatic --noinput
RUN useradd --system --home /app --uid 1000 workplace \
    && mkdir -p /app/var && chown -R workplace /app/var

USER workplace
EXPOSE 8000
CMD ["gunicorn", "workplace.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", "--worker-class", "gthread", "--threads", "4", "--access-logfile", "-"]
