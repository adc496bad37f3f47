"""The message log in the admin: every stream with its partitions and lengths, and per stream its
newest messages, its consumer groups (with the worker SDK's view: owner, last acknowledged entry,
dead letters, live workers) and its newest dead letters; both show the stream's throughput and lag
plot of the last hour (streams.throughput, streams.plot). There is no model; these are plain views behind the admin's
login (`admin.site.admin_view`, staff only), mounted by streams/urls.py."""

from __future__ import annotations

import time

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.safestring import SafeString

from realtime.redis import REDIS_ERRORS, get_redis
from streams.catalog import UnknownStream, stream_specs
from streams.dead_letters import recent_dead_letters
from streams.display import message_time, preview
from streams.groups import live_workers
from streams.plot import plot_svg
from streams.stats import recent_messages, streams_info
from streams.throughput import samples_of, series_of

RECENT = 20

# The index links to these pages. The admin's own templates come first in the template search
# (django.contrib.admin precedes this app), so an app-level admin/index.html would never be used.
if admin.site.index_template is None:
    admin.site.index_template = "admin/streams/index.html"


def _render(request: HttpRequest, template: str, title: str, **context: object) -> HttpResponse:
    return TemplateResponse(request, template, {**admin.site.each_context(request), "title": title, **context})


def _plot(name: str) -> SafeString:
    now = time.time()
    return plot_svg(series_of(samples_of(name, now=now)), now=now, stream=name)


def stream_list_view(request: HttpRequest) -> HttpResponse:
    try:
        streams = streams_info(stream_specs())
        plots = [(stream, _plot(stream.name)) for stream in streams]
    except REDIS_ERRORS as exc:
        return _render(request, "admin/streams/stream_list.html", "Streams", error=exc, streams=[])
    return _render(request, "admin/streams/stream_list.html", "Streams", streams=streams, plots=plots)


def stream_detail_view(request: HttpRequest, name: str) -> HttpResponse:
    # Message contents include private channels (inboxes): superusers only, not every staff user.
    if not request.user.is_superuser:
        raise PermissionDenied("only superusers may read stored messages")
    try:
        [spec] = stream_specs([name])
    except UnknownStream:
        raise Http404(f"no stream {name!r}") from None
    title = f"Stream {name}"
    try:
        [stream] = streams_info([spec])
        recent = recent_messages(spec.keys, count=RECENT)
        dead = recent_dead_letters(spec.keys, count=RECENT)
        live = {group: ", ".join(live_workers(get_redis(), group)) for group in stream.group_names}
        plot = _plot(name)
    except REDIS_ERRORS as exc:
        return _render(request, "admin/streams/stream_detail.html", title, error=exc, name=name)
    rows = [{"message": m, "time": message_time(m), "data": preview(m)} for m in recent]
    dead_total = sum(p.dead_letters for p in stream.partitions)
    return _render(
        request, "admin/streams/stream_detail.html", title, name=name, stream=stream, recent=rows, dead=dead,
        dead_total=dead_total, live=live, plot=plot,
    )  # fmt: skip
