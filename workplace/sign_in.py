"""Portal sign-in: employees know their email address, not their username.

The backend accepts either, case-insensitively. An email shared by two accounts signs
neither in (which one was meant can't be told); the username still works for both."""

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend


class EmailOrUsernameBackend(ModelBackend):
    def authenticate(self, request, username=None, password=None, **kwargs):
        if username is None:
            username = kwargs.get(get_user_model().USERNAME_FIELD)
        if not username or password is None:
            return None
        model = get_user_model()
        login = username.strip()
        field = "email__iexact" if "@" in login else f"{model.USERNAME_FIELD}__iexact"
        users = list(model._default_manager.filter(**{field: login})[:2])
        if len(users) != 1:
            model().set_password(password)  # as ModelBackend: the same work whether or not the account exists
            return None
        user = users[0]
        if user.check_password(password) and self.user_can_authenticate(user):
            return user
        return None

    def get_user(self, user_id):
        """The signed-in user of each request, with their profile (time zone, mailbox) in the same
        query: most portal pages read it, and a query of its own on each was a good part of
        their fixed cost (issue 14's page-speed target)."""
        model = get_user_model()
        user = model._default_manager.select_related("profile").filter(pk=user_id).first()
        return user if user is not None and self.user_can_authenticate(user) else None
