"""The correlation id across Celery: a task queued while an id is bound carries it in a
message header; the worker binds it for the task's run (a task queued by beat or from
nothing gets its own). Connected by ``workplace.celery``."""

from __future__ import annotations

from celery import signals

from . import correlation

_tokens: dict[str, object] = {}


def _on_publish(headers=None, **kwargs) -> None:
    if headers is not None and not headers.get(correlation.TASK_HEADER):
        headers[correlation.TASK_HEADER] = correlation.current() or correlation.new_id()


def _on_prerun(task_id=None, task=None, **kwargs) -> None:
    value = getattr(task.request, correlation.TASK_HEADER, None) if task is not None else None
    if task is not None and task.request.is_eager:
        value = value or correlation.current()  # inline: the caller's id
    _tokens[task_id] = correlation.bind(correlation.sane(value))


def _on_postrun(task_id=None, **kwargs) -> None:
    token = _tokens.pop(task_id, None)
    if token is not None:
        try:
            correlation.unbind(token)
        except ValueError:  # bound in another context (a pool thread): nothing to restore
            pass


def connect() -> None:
    signals.before_task_publish.connect(_on_publish, weak=False, dispatch_uid="observability.publish")
    signals.task_prerun.connect(_on_prerun, weak=False, dispatch_uid="observability.prerun")
    signals.task_postrun.connect(_on_postrun, weak=False, dispatch_uid="observability.postrun")
