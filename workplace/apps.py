from django.apps import AppConfig


class WorkplaceConfig(AppConfig):
    name = "workplace"
    verbose_name = "Space directory"
