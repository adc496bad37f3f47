from __future__ import annotations

from django.urls import path

from callbacks import views

urlpatterns = [
    path("connect", views.ConnectView.as_view()),
    path("refresh", views.RefreshView.as_view()),
    path("subscribe", views.SubscribeView.as_view()),
    path("sub_refresh", views.SubRefreshView.as_view()),
    path("publish", views.PublishView.as_view()),
    path("rpc", views.RpcView.as_view()),
]
