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
RUN useradd --system --home /app --uid 1000 workplace \
    && mkdir -p /app/var && chown -R workplace /app/var

USER workplace
EXPOSE 8000
CMD ["gunicorn", "workplace.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "2", "--worker-class", "gthread", "--threads", "4", "--access-logfile", "-"]
