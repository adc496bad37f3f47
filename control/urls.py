"""The admin's Users page (control/users.py). realtime/urls.py mounts it at admin/control/users/,
before the admin's own catch-all URLs."""

from __future__ import annotations

from django.contrib import admin
from django.urls import path

from control.users import users_view

app_name = "control"
urlpatterns = [path("", admin.site.admin_view(users_view), name="users")]
