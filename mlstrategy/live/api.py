"""The control API and the dashboard: a Starlette app served by uvicorn beside the trading loop.

Reads (JSON under ``/api``, the page at ``/``) come from the files the bot writes
(``snapshot``), through a read-only journal connection per request on uvicorn's threads, so
however often they are asked the loop never waits for them. Control actions (``POST
/api/control/<action>``) go to the running bot's ``Controls``, which apply them at the next bar.

Security:

- control needs ``Authorization: Bearer <token>``, the token from ``MLSTRATEGY_API_TOKEN``;
  with no token set control is off (403), a missing token is 401, a wrong one 403 (compared in
  constant time);
- the server listens on 127.0.0.1 unless told otherwise, and refuses to listen anywhere else
  without a token; there, reads need the token too;
- no response and no log line holds a key, secret or token: responses are built from the
  journal, registry and cycle reports, none of which hold one, and errors are answered with
  their class and a fixed text, never a traceback.
"""
from __future__ import annotations

import contextlib
import hmac
import ipaddress
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from mlstrategy.errors import ConfigError
from mlstrategy.live import snapshot
from mlstrategy.live.api_settings import TOKEN_ENV, ApiSettings
from mlstrategy.live.controls import ACTIONS, Controls
from mlstrategy.live.journal import Journal

log = logging.getLogger(__name__)
ASSETS = Path(__file__).parent / "dashboard"


@dataclass(frozen=True)
class Source:
    """What the app shows: a journal, a models directory, a cycles directory, and for a
    running bot its controls and its own thresholds (when it overrides the model's)."""

    journal: Path
    models_dir: Path | None = None
    cycles_dir: Path | None = None
    controls: Controls | None = None
    thresholds: tuple[float | None, float | None] = (None, None)


def is_loopback(host: str) -> bool:
    """Whether ``host`` resolves to a loopback address only."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def check_bind(settings: ApiSettings) -> None:
    """Refuse to listen beyond loopback without a token."""
    if not is_loopback(settings.host) and not settings.token:
        raise ConfigError(f"the API would listen on {settings.host}, beyond this machine, with "
                          f"no token: set {TOKEN_ENV} (a long random string) or listen on "
                          "127.0.0.1 (--api-host)")


def make_app(source: Source, token: str | None, *, protect_reads: bool = False) -> Starlette:
    """The Starlette app of ``source`` (``protect_reads``: reads need the token too)."""

    def guarded(need_token: bool, handler: Callable[[Request], object]) -> Callable:
        def endpoint(request: Request) -> Response:
            refusal = _refusal(request, token) if need_token else None
            if refusal is not None:
                return refusal
            try:
                return JSONResponse(handler(request))
            except ConfigError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return endpoint

    def reading(handler: Callable[[Journal, Request], object]) -> Callable:
        def read(request: Request) -> object:
            if not source.journal.is_file():
                raise ConfigError(f"no journal at {source.journal} yet")
            journal = Journal.read(source.journal)
            try:
                market = request.query_params.get("market")
                names = list(journal.markets()) or [""]
                if market is not None and market not in names:
                    raise ConfigError(f"no market {market!r}; markets: {names}")
                return handler(journal.for_market(names[0] if market is None else market),
                               request)
            finally:
                journal.close()
        return guarded(protect_reads, read)

    def limit(request: Request) -> int:
        try:
            return max(1, min(int(request.query_params.get("limit", 50)), 1000))
        except ValueError:
            raise ConfigError("limit must be a whole number") from None

    controls = source.controls
    curves: dict[str, tuple[object, dict]] = {}  # market -> (its last bar, its equity curve)

    def equity(journal: Journal, request: Request) -> dict:
        """The market's equity curve, computed once per new bar (it reads every bar)."""
        last = journal.last_bar()
        cached = curves.get(journal.market)
        if cached is None or cached[0] != last:
            cached = curves[journal.market] = (last, snapshot.equity_curve(journal))
        return cached[1]

    def control_info(request: Request) -> dict:
        return {"enabled": controls is not None and token is not None,
                "read_only": controls is None, "actions": list(ACTIONS),
                "markets": [] if controls is None else controls.markets}

    async def control(request: Request) -> Response:
        if controls is None:
            return JSONResponse({"error": "a read-only dashboard: no bot to control"},
                                status_code=403)
        refusal = _refusal(request, token)
        if refusal is not None:
            return refusal
        try:
            body = await request.json() if await request.body() else {}
            market = body.get("market") if isinstance(body, dict) else None
            done = controls.act(request.path_params["action"], market,
                                f"api {request.client.host if request.client else '?'}")
        except ConfigError as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        except ValueError:
            return JSONResponse({"error": "the body must be JSON: {\"market\": NAME}"},
                                status_code=400)
        log.warning("operator: %s %s (%s)", done["action"], done["markets"],
                    request.client.host if request.client else "?")
        return JSONResponse(done)

    def page(request: Request) -> Response:
        return FileResponse(ASSETS / "index.html")

    routes = [
        Route("/", page),
        Mount("/assets", StaticFiles(directory=ASSETS), name="assets"),
        Route("/api/status", reading(lambda j, r: snapshot.bot_status(
            j, None if controls is None else controls.state()))),
        Route("/api/orders", reading(lambda j, r: snapshot.orders(j, limit(r)))),
        Route("/api/decisions", reading(lambda j, r: snapshot.decisions(
            j, source.models_dir, limit(r), source.thresholds))),
        Route("/api/equity", reading(equity)),
        Route("/api/models", guarded(protect_reads,
                                     lambda r: snapshot.registry(source.models_dir))),
        Route("/api/cycle", guarded(protect_reads,
                                    lambda r: {"cycle": snapshot.latest_cycle(source.cycles_dir)})),
        Route("/api/control", guarded(False, control_info)),
        Route("/api/control/{action}", control, methods=["POST"]),
    ]
    return Starlette(routes=routes, exception_handlers={Exception: _failed})


def _refusal(request: Request, token: str | None) -> Response | None:
    """401 without a bearer token, 403 with a wrong one or when none is set; None: go on."""
    if token is None:
        return JSONResponse({"error": f"control is off: the bot was started without "
                                      f"{TOKEN_ENV}"}, status_code=403)
    given = request.headers.get("authorization", "")
    if not given.lower().startswith("bearer "):
        return JSONResponse({"error": "send Authorization: Bearer <token>"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    if not hmac.compare_digest(given[7:].strip().encode(), token.encode()):
        return JSONResponse({"error": "wrong token"}, status_code=403)
    return None


async def _failed(request: Request, exc: Exception) -> Response:
    """An unexpected error: logged here, answered without details."""
    log.error("API %s failed: %s", request.url.path, type(exc).__name__)
    return JSONResponse({"error": f"internal error ({type(exc).__name__})"}, status_code=500)


class ApiServer:
    """uvicorn serving ``app`` on its own thread (``start``/``stop``, or ``with``)."""

    def __init__(self, app: Starlette, settings: ApiSettings) -> None:
        import uvicorn

        check_bind(settings)
        family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        self._socket = socket.socket(family, socket.SOCK_STREAM)
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._socket.bind((settings.host, settings.port))
        except OSError as exc:
            self._socket.close()
            raise ConfigError(f"the API cannot listen on {settings.host}:{settings.port} "
                              f"({exc.strerror}); pick another --api-port") from None
        self.host = settings.host
        self.port = self._socket.getsockname()[1]
        self._server = uvicorn.Server(uvicorn.Config(app, log_level="warning",
                                                     access_log=False, lifespan="off"))
        self._thread = threading.Thread(target=self._server.run,
                                        kwargs={"sockets": [self._socket]},
                                        name="api", daemon=True)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + 10.0
        while not self._server.started and self._thread.is_alive() and \
                time.monotonic() < deadline:
            time.sleep(0.01)
        if not self._server.started:
            raise ConfigError(f"the API did not start on {self.url}")
        log.info("API and dashboard on %s", self.url)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(5.0)
        self._socket.close()


@contextlib.contextmanager
def serving(source: Source, settings: ApiSettings | None) -> Iterator[ApiServer | None]:
    """The API of ``source`` while the block runs (nothing when ``settings`` is None)."""
    if settings is None:
        yield None
        return
    app = make_app(source, settings.token, protect_reads=not is_loopback(settings.host))
    server = ApiServer(app, settings).start()
    try:
        yield server
    finally:
        server.stop()
