"""REDIS_URL: one string names a single Redis, a Sentinel-monitored master or a Redis Cluster.

The forms are Centrifugo's own (v6.9.1, `internal/redisshard/shard.go`, `optionsFromAddress`), so
the one URL configures both the gateway and Centrifugo's Redis engine:

    redis://[user:password@]host:port[/db]          one Redis (also rediss:// for TLS,
    unix://[user:password@]/path/to/redis.sock?db=N  and a unix socket)
    redis+sentinel://[user:password@]host:port[/db]?sentinel_master_name=NAME[&addr=host2:port2...]
        the master Sentinel names NAME; host:port and every `addr` are sentinels;
        `sentinel_user` / `sentinel_password` authenticate to the sentinels, user:password to Redis;
        rediss+sentinel:// is TLS to both (or `sentinel_tls_enabled=true` for the sentinels only)
    redis+cluster://[user:password@]host:port[?addr=host2:port2...]
        seed nodes of a Redis Cluster (database 0 only: Cluster has no others);
        rediss+cluster:// or `tls_enabled=true` for TLS

Pure parsing, no Django and no I/O: the settings validate REDIS_URL through `parse` at start-up
(a bad URL stops the process with a message naming the mistake), and every Redis client of the
gateway — the event loop's (realtime.redis_async), redis-py's (realtime.redis), the Django cache —
builds from the same `RedisLocation`.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import parse_qs, quote, unquote, urlsplit

Kind = Literal["single", "sentinel", "cluster"]

_SCHEMES: dict[str, tuple[Kind, bool]] = {
    "redis": ("single", False),
    "rediss": ("single", True),
    "unix": ("single", False),
    "redis+sentinel": ("sentinel", False),
    "rediss+sentinel": ("sentinel", True),
    "redis+cluster": ("cluster", False),
    "rediss+cluster": ("cluster", True),
}
# Query parameters Centrifugo's parser knows (the gateway reads those it needs, accepts the rest
# so the same URL works for both); anything else in a sentinel or cluster URL is a typo.
_CENTRIFUGO_ONLY = {"connect_timeout", "io_timeout", "force_resp2", "replica_client_enabled"}
_KNOWN = {
    "single": {"db", "tls_enabled"},
    "sentinel": {
        "sentinel_master_name",
        "addr",
        "sentinel_user",
        "sentinel_password",
        "sentinel_tls_enabled",
        "tls_enabled",
    },
    "cluster": {"addr", "tls_enabled"},
}
DEFAULT_PORTS: dict[Kind, int] = {"single": 6379, "sentinel": 26379, "cluster": 6379}
FORMS = (
    "redis://[user:password@]host:port[/db], rediss://..., unix:///path?db=N, "
    "redis+sentinel://[user:password@]host:port[/db]?sentinel_master_name=NAME[&addr=host:port...], "
    "redis+cluster://[user:password@]host:port[?addr=host:port...] (rediss+ for TLS)"
)


class RedisUrlError(ValueError):
    """REDIS_URL cannot be used; the message says what is wrong (never the password)."""


@dataclass(frozen=True)
class RedisLocation:
    kind: Kind
    scheme: str
    # single: the server; sentinel: the sentinels; cluster: the seed nodes (any of them will do).
    addresses: tuple[tuple[str, int], ...]
    unix_path: str = ""
    db: int = 0
    username: str = ""
    password: str = field(default="", repr=False)
    tls: bool = False
    master_name: str = ""
    sentinel_username: str = ""
    sentinel_password: str = field(default="", repr=False)
    sentinel_tls: bool = False
    url: str = field(default="", repr=False)  # as given (it may hold passwords: never log it)

    @property
    def where(self) -> str:
        """Where it points, for logs and errors: no credentials."""
        if self.unix_path:
            return self.unix_path
        hosts = ",".join(f"{host}:{port}" for host, port in self.addresses)
        if self.kind == "sentinel":
            return f"master {self.master_name!r} via sentinels {hosts}"
        if self.kind == "cluster":
            return f"cluster seeds {hosts}"
        return hosts

    def redacted(self) -> str:
        """The URL with every password replaced by ***."""
        return redact(self.url)

    def centrifugo_address(self) -> str:
        """The same location in a form Centrifugo v6.9.1 accepts: it has no rediss+cluster scheme,
        TLS for a cluster is `tls_enabled=true` there."""
        if self.scheme != "rediss+cluster":
            return self.url
        rest = self.url[len("rediss+cluster://") :]
        joiner = "&" if "?" in rest else "?"
        return f"redis+cluster://{rest}{joiner}tls_enabled=true"


def redact(url: str) -> str:
    """`url` with the password of its user part and any `sentinel_password` hidden."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, hosts = netloc.rsplit("@", 1)
        user, colon, _ = userinfo.partition(":")
        netloc = f"{user}:***@{hosts}" if colon else f"***@{hosts}"  # redis://secret@host: a password
    query = "&".join(
        f"{name}=***" if name == "sentinel_password" else f"{name}={value}"
        for name, value in (
            pair.split("=", 1) if "=" in pair else (pair, "") for pair in parts.query.split("&") if pair
        )
    )
    rebuilt = f"{parts.scheme}://{netloc}{parts.path}"
    return f"{rebuilt}?{query}" if query else rebuilt


def _host_port(text: str, *, default_port: int, what: str) -> tuple[str, int]:
    host, sep, port_text = text.rpartition(":")
    if not sep:
        host, port_text = text, ""
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if not host:
        raise RedisUrlError(f"REDIS_URL: {what} {text!r} has no host")
    if not port_text:
        return host, default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise RedisUrlError(f"REDIS_URL: {what} {text!r} has no valid port (1-65535)")
    return host, int(port_text)


def _flag(query: dict[str, list[str]], name: str) -> bool:
    value = query.get(name, ["false"])[-1].lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off", ""):
        return False
    raise RedisUrlError(f"REDIS_URL: {name} must be true or false, not {value!r}")


def parse(url: str) -> RedisLocation:
    """Read REDIS_URL; RedisUrlError names what is wrong (and never shows a password)."""
    if not url:
        raise RedisUrlError(f"REDIS_URL is empty; use one of: {FORMS}")
    scheme, sep, _ = url.partition("://")
    if not sep or scheme.lower() not in _SCHEMES:
        raise RedisUrlError(f"REDIS_URL must be one of: {FORMS}; got scheme {scheme.lower() if sep else '(none)'!r}")
    scheme = scheme.lower()
    kind, tls = _SCHEMES[scheme]
    try:
        parts = urlsplit(url)
        query = parse_qs(parts.query, keep_blank_values=True)
    except ValueError as exc:
        raise RedisUrlError(f"REDIS_URL is not a valid URL ({exc}): {redact(url)}") from None
    if kind != "single" or scheme == "unix":
        unknown = sorted(set(query) - _KNOWN[kind] - _CENTRIFUGO_ONLY)
        if unknown:
            known = ", ".join(sorted(_KNOWN[kind] | _CENTRIFUGO_ONLY))
            raise RedisUrlError(f"REDIS_URL: unknown parameter {', '.join(unknown)} for {scheme}:// (known: {known})")
    username = unquote(parts.username) if parts.username else ""
    password = unquote(parts.password) if parts.password is not None else ""
    if parts.password is None and parts.username and "@" in parts.netloc and ":" not in parts.netloc.rsplit("@", 1)[0]:
        # redis-py reads redis://secret@host as a password without a user name.
        username, password = "", unquote(parts.username)
    tls = tls or _flag(query, "tls_enabled")

    if scheme == "unix":
        if not parts.path:
            raise RedisUrlError("REDIS_URL: unix:// needs a socket path, e.g. unix:///run/redis.sock?db=0")
        db_text = query.get("db", ["0"])[-1]
        return RedisLocation(
            kind="single", scheme=scheme, addresses=(), unix_path=unquote(parts.path), db=_db(db_text),
            username=username, password=password, url=url,
        )  # fmt: skip

    hosts = parts.netloc.rsplit("@", 1)[-1]
    if not hosts:
        raise RedisUrlError(f"REDIS_URL has no host: {redact(url)}")
    if "," in hosts:
        raise RedisUrlError(
            "REDIS_URL: name one host before the path and the others as `addr` parameters, "
            "e.g. redis+cluster://host1:7000?addr=host2:7001&addr=host3:7002 (Centrifugo's form)"
        )
    seeds = [hosts, *query.get("addr", [])]
    addresses = tuple(_host_port(item, default_port=DEFAULT_PORTS[kind], what="address") for item in seeds)
    path = parts.path.strip("/")
    db = _db(query.get("db", [path or "0"])[-1])
    if kind == "single":
        if len(addresses) > 1:
            raise RedisUrlError(
                "REDIS_URL names several hosts: use redis+sentinel://... for Sentinel or redis+cluster://... for a Cluster"
            )
        return RedisLocation(
            kind="single", scheme=scheme, addresses=addresses, db=db, username=username, password=password,
            tls=tls, url=url,
        )  # fmt: skip
    if kind == "cluster":
        if db:
            raise RedisUrlError(f"REDIS_URL: Redis Cluster has database 0 only, not {db}")
        return RedisLocation(
            kind="cluster", scheme=scheme, addresses=addresses, username=username, password=password, tls=tls, url=url
        )
    master = query.get("sentinel_master_name", [""])[-1]
    if not master:
        raise RedisUrlError(
            "REDIS_URL: a sentinel URL needs the master's name: "
            "redis+sentinel://host:26379?sentinel_master_name=mymaster[&addr=host2:26379]"
        )
    return RedisLocation(
        kind="sentinel", scheme=scheme, addresses=addresses, db=db, username=username, password=password, tls=tls,
        master_name=master, sentinel_username=query.get("sentinel_user", [""])[-1],
        sentinel_password=query.get("sentinel_password", [""])[-1],
        sentinel_tls=tls or _flag(query, "sentinel_tls_enabled"), url=url,
    )  # fmt: skip


def _db(text: str) -> int:
    if not text.isdigit():
        raise RedisUrlError(f"REDIS_URL: the database must be a number, not {text!r}")
    return int(text)


def build(
    kind: Kind, addresses: list[tuple[str, int]], *, master_name: str = "", db: int = 0, password: str = ""
) -> str:
    """A REDIS_URL for a topology (devcluster and the tests start them)."""
    auth = f":{quote(password, safe='')}@" if password else ""
    first, rest = addresses[0], addresses[1:]
    extra = [f"addr={host}:{port}" for host, port in rest]
    if kind == "single":
        return f"redis://{auth}{first[0]}:{first[1]}/{db}"
    if kind == "sentinel":
        extra.insert(0, f"sentinel_master_name={master_name}")
        return f"redis+sentinel://{auth}{first[0]}:{first[1]}/{db}?" + "&".join(extra)
    return f"redis+cluster://{auth}{first[0]}:{first[1]}" + ("?" + "&".join(extra) if extra else "")


def main(argv: list[str]) -> int:
    """`python -m realtime.redis_url URL [NAME]`, for the shell scripts that start the gateway: the
    URL with its passwords hidden (for their logs), or NAME's mistake on stderr and exit status 2
    before anything starts (instead of a traceback from each process that reads the settings)."""
    url, name = argv[0] if argv else "", argv[1] if len(argv) > 1 else "REDIS_URL"
    try:
        location = parse(url)
    except RedisUrlError as exc:
        message = str(exc)
        sys.stderr.write(f"error: {name}{message.removeprefix('REDIS_URL')}\n")
        return 2
    sys.stdout.write(f"{location.redacted()}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
