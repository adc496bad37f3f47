"""nginx/templates rendered by nginx/render.sh (the same substitution the official image does in the
multi-instance compose file), checked by `nginx -t`, then run for real on loopback in front of the
real Centrifugo binary and of a stub callback replica."""

from __future__ import annotations

import json
import re
import sys
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import jwt
import pytest
from websockets.sync.client import connect

from tests.deploy.conftest import SECRETS, Centrifugo, clean_env, run
from tests.support.procs import ROOT, Process, free_port, http_status, wait_for, which

RENDER = str(ROOT / "nginx" / "render.sh")


def nginx_bin() -> str:
    return which("nginx", "/usr/sbin/nginx")


def render(out: Path, **variables: str) -> Path:
    result = run([RENDER, str(out)], env=clean_env(**variables))
    assert result.returncode == 0, result.stderr
    return out / "nginx.conf"


def nginx_t(conf: Path) -> tuple[int, str]:
    result = run([nginx_bin(), "-t", "-e", "stderr", "-p", str(conf.parent), "-c", str(conf)], env=clean_env())
    return result.returncode, result.stderr


class StubCallback(ThreadingHTTPServer):
    """Answers every GET with 200 and a JSON echo of the path and Host it received."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                stub.paths.append(self.path)
                body = json.dumps({"path": self.path, "host": self.headers["Host"]}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.port = self.server_address[1]


class Nginx:
    def __init__(self, out: Path, centrifugo_port: int, callback_port: int) -> None:
        self.port, self.admin_port = free_port(), free_port()
        conf = render(
            out,
            NGINX_LISTEN=f"127.0.0.1:{self.port}",
            # Plus a node where nothing listens: nginx moves on to the live one when a connect is refused.
            CENTRIFUGO_UPSTREAMS=f"server 127.0.0.1:{centrifugo_port}; server 127.0.0.1:{free_port()};",
            NGINX_ADMIN_LISTEN=f"127.0.0.1:{self.admin_port}",
            CALLBACK_UPSTREAMS=f"server 127.0.0.1:{callback_port};",
        )
        argv = [nginx_bin(), "-e", "stderr", "-p", str(out), "-c", str(conf)]
        self.process = Process(argv, env=clean_env(), log=out / "nginx.log")
        try:
            wait_for(lambda: http_status(f"http://127.0.0.1:{self.port}/nope") == 404, timeout=10, what="nginx")
        except TimeoutError as exc:
            self.process.stop()
            raise RuntimeError(f"{exc}\n--- nginx log ---\n{self.process.tail()}") from None


@pytest.fixture(scope="module")
def stub_callback() -> Iterator[StubCallback]:
    server = StubCallback()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def nginx(
    tmp_path_factory: pytest.TempPathFactory, centrifugo: Centrifugo, stub_callback: StubCallback
) -> Iterator[Nginx]:
    proxy = Nginx(tmp_path_factory.mktemp("nginx"), centrifugo.port, stub_callback.port)
    yield proxy
    proxy.process.stop(timeout=10)


# --- the rendered configuration ----------------------------------------------------------------


def test_rendered_config_passes_nginx_t(tmp_path: Path) -> None:
    conf = render(
        tmp_path / "out",
        NGINX_LISTEN="127.0.0.1:18000",
        CENTRIFUGO_UPSTREAMS="server 127.0.0.1:18100; server 127.0.0.1:18101;",
        NGINX_ADMIN_LISTEN="127.0.0.1:18001",
        CALLBACK_UPSTREAMS="server 127.0.0.1:18200;",
    )
    code, stderr = nginx_t(conf)
    assert (code, "[warn]" in stderr, "[emerg]" in stderr) == (0, False, False), stderr
    assert f"configuration file {conf} test is successful" in stderr
    default = (conf.parent / "conf.d" / "default.conf").read_text()
    assert "listen 127.0.0.1:18000;" in default
    assert "server 127.0.0.1:18100; server 127.0.0.1:18101;" in default
    # nginx's own variables pass through untouched; no placeholder is left behind.
    assert "map $http_upgrade $connection_upgrade" in default
    assert "${" not in default + (conf.parent / "conf.d" / "admin.conf").read_text()


def test_nginx_t_rejects_a_broken_render(tmp_path: Path) -> None:
    """The control for the test above: `nginx -t` does read the rendered files."""
    conf = render(tmp_path / "out", NGINX_LISTEN="127.0.0.1:18000", CENTRIFUGO_UPSTREAMS="server;")
    code, stderr = nginx_t(conf)
    assert code == 1
    assert 'invalid number of arguments in "server"' in stderr


def test_admin_server_is_rendered_only_when_asked_for(tmp_path: Path) -> None:
    conf = render(tmp_path / "out", NGINX_LISTEN="127.0.0.1:18000", CENTRIFUGO_UPSTREAMS="server 127.0.0.1:1;")
    assert sorted(path.name for path in (conf.parent / "conf.d").iterdir()) == ["default.conf"]


def test_python_fallback_renders_what_envsubst_renders(tmp_path: Path) -> None:
    """Where gettext-base (envsubst) is missing, render.sh substitutes with Python: same output."""
    variables = {
        "NGINX_LISTEN": "127.0.0.1:18000",
        "CENTRIFUGO_UPSTREAMS": "server 127.0.0.1:18100;",
        "NGINX_ADMIN_LISTEN": "127.0.0.1:18001",
        "CALLBACK_UPSTREAMS": "server 127.0.0.1:18200;",
    }
    tools = tmp_path / "no-envsubst"
    tools.mkdir()
    for tool in ("bash", "dirname", "mkdir", "cat", "id", "rm"):
        (tools / tool).symlink_to(which(tool))
    (tools / "python3").symlink_to(sys.executable)
    result = run([RENDER, str(tmp_path / "python")], env={**variables, "PATH": str(tools)})
    assert result.returncode == 0, result.stderr
    render(tmp_path / "envsubst", **variables)
    for name in ("default.conf", "admin.conf"):
        rendered = (tmp_path / "python" / "conf.d" / name).read_text()
        assert rendered == (tmp_path / "envsubst" / "conf.d" / name).read_text()
        assert "${" not in rendered


@pytest.mark.parametrize("missing", ["NGINX_LISTEN", "CENTRIFUGO_UPSTREAMS"])
def test_render_refuses_a_missing_variable(tmp_path: Path, missing: str) -> None:
    variables = {"NGINX_LISTEN": "8000", "CENTRIFUGO_UPSTREAMS": "server 127.0.0.1:1;"}
    del variables[missing]
    result = run([RENDER, str(tmp_path / "out")], env=clean_env(**variables))
    assert result.returncode != 0
    assert f"{missing}: must be set" in result.stderr


def test_websocket_read_timeout_outlasts_centrifugo_pings() -> None:
    template = (ROOT / "nginx" / "templates" / "default.conf.template").read_text()
    connection = template.split("location /connection/ {")[1].split("}")[0]
    seconds = {name: int(value) for name, value in re.findall(r"(proxy_(?:read|send)_timeout) (\d+)s;", connection)}
    assert seconds.keys() == {"proxy_read_timeout", "proxy_send_timeout"}
    assert min(seconds.values()) >= 2 * 25  # Centrifugo's ping interval is 25 s
    assert "proxy_buffering off;" in connection


# --- nginx running in front of Centrifugo ------------------------------------------------------


def test_health_passes_through_to_centrifugo(nginx: Nginx) -> None:
    assert http_status(f"http://127.0.0.1:{nginx.port}/health", timeout=5) == 200


def test_websocket_upgrade_gets_101_and_frames_flow_both_ways(nginx: Nginx) -> None:
    token = jwt.encode({"sub": "alice"}, SECRETS["CENTRIFUGO_TOKEN_HMAC_SECRET_KEY"], algorithm="HS256")
    url = f"ws://127.0.0.1:{nginx.port}/connection/websocket"
    with connect(url, open_timeout=5, close_timeout=2) as ws:
        assert ws.response.status_code == 101
        # A JWT connect is answered by Centrifugo itself (no callback involved).
        ws.send(json.dumps({"id": 1, "connect": {"token": token, "name": "deploy-test"}}))
        reply = json.loads(ws.recv(timeout=5))
    assert reply["id"] == 1
    assert reply["connect"]["client"]
    assert reply["connect"]["ping"] == 25


def test_server_api_and_metrics_stay_internal(nginx: Nginx, centrifugo: Centrifugo) -> None:
    for path in ("/api/info", "/metrics"):
        assert http_status(f"http://127.0.0.1:{nginx.port}{path}") == 404
    # The control: Centrifugo itself does serve them.
    assert http_status(f"http://127.0.0.1:{centrifugo.port}/metrics") == 200


def test_admin_server_proxies_the_admin_static_and_health_only(nginx: Nginx, stub_callback: StubCallback) -> None:
    base = f"http://127.0.0.1:{nginx.admin_port}"
    with urllib.request.urlopen(f"{base}/admin/login/", timeout=5) as response:
        echoed = json.loads(response.read())
    # The Host keeps its port: Django builds redirects and checks CSRF origins from it.
    assert echoed == {"path": "/admin/login/", "host": f"127.0.0.1:{nginx.admin_port}"}
    assert http_status(f"{base}/health") == 200
    with urllib.request.urlopen(f"{base}/static/admin/css/base.css", timeout=5) as response:
        assert json.loads(response.read())["path"] == "/static/admin/css/base.css"
    before = list(stub_callback.paths)
    assert http_status(f"{base}/centrifugo/connect") == 404
    assert stub_callback.paths == before, "the proxy endpoints must not be reachable through the admin server"
