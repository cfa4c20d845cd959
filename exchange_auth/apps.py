from django.apps import AppConfig


class ExchangeAuthConfig(AppConfig):
    name = "exchange_auth"
    verbose_name = "Exchange credentials and sync mode"
