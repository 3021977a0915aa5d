"""``miragen web``: the studio page and its JSON API (Starlette), served by uvicorn.

The page (``static/``: one HTML file, one script, one style sheet; no build step, no CDN) is
a client of the API under ``/api/``, which scripts may use too (docs/web.md). Reading goes
through :mod:`.views`, changing through :mod:`.actions`; access rules are :mod:`.auth`'s.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..errors import MiragenError
from ..service.state import StateDir
from ..service.status import collect
from . import actions, views
from .auth import (
    CSRF_HEADER,
    SESSION_COOKIE,
    Session,
    Sessions,
    ensure_token,
    is_loopback,
    split_listen,
    token_path,
)
from .events import Hub

log = logging.getLogger(__name__)

MAX_JSON_BYTES = 64 * 1024
OPEN_PATHS = ("/login", "/static/", "/api/session", "/api/login", "/favicon.ico")
LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")
SECURITY_HEADERS = [
    (
        b"content-security-policy",
        b"default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
        b"script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; "
        b"base-uri 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
]


class Studio:
    """What the handlers share: the configuration, the state folder, sessions, the hub."""

    def __init__(self, cfg: dict[str, Any], token: str | None):
        self.cfg = cfg
        self.state = StateDir(Path(cfg["paths"]["state"]))
        self.sessions = Sessions(token)
        self.hub = Hub(self.state, self.status)
        host, self.port = split_listen(cfg["web"]["listen"])
        self.hosts = {f"{n}:{self.port}" for n in LOOPBACK_NAMES} | {
            f"{host}:{self.port}",
            f"[{host}]:{self.port}",
        }
        self.max_file = int(cfg["daemon"]["max_file_mb"]) * 2**20
        self.max_files = int(cfg["web"]["max_upload_files"])

    def status(self) -> dict[str, Any]:
        """``miragen status --json``'s facts, with the live files beside them."""
        try:
            info = collect(self.cfg)
        except MiragenError as exc:  # no database yet: the daemon has never run here
            info = {"error": str(exc), "daemon": {"running": False}, "classes": {}}
        info["train"] = {"mode": self.cfg["train"]["mode"], "engine": self.cfg["train"]["engine"]}
        info["training"] = views.training(self.state)
        info["delivery_live"] = views.delivery(self.state)
        return info


# ---------------------------------------------------------------------------- access
class Guard:
    """ASGI middleware: security headers, the Host check, the token and CSRF rules."""

    def __init__(self, app: Any, studio: Studio):
        self.app = app
        self.studio = studio

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        req = Request(scope)
        refusal = self._refusal(req)

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + SECURITY_HEADERS
            await send(message)

        if refusal is not None:
            await refusal(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)

    def _refusal(self, req: Request) -> Response | None:
        st = self.studio
        path = req.url.path
        if st.sessions.open_access and req.headers.get("host", "") not in st.hosts:
            # a page on another site reaching 127.0.0.1 through its own name (DNS rebinding)
            return _error(421, "this page answers to its own address only")
        session = st.sessions.get(req.cookies.get(SESSION_COOKIE))
        bearer = st.sessions.bearer_ok(req.headers.get("authorization"))
        req.scope["studio.session"] = session
        open_path = path == "/login" or any(path.startswith(p) for p in OPEN_PATHS if p != "/login")
        authed = st.sessions.open_access or bearer or (session is not None and session.authed)
        if not (authed or open_path):
            if path.startswith("/api/"):
                return _error(401, "log in first: the token is printed by `miragen web token`")
            return RedirectResponse("/login", status_code=303)
        if req.method not in ("GET", "HEAD") and not bearer:
            origin = req.headers.get("origin")
            if origin and origin.split("://", 1)[-1] != req.headers.get("host", ""):
                return _error(403, "refused: the request comes from another site")
            if not st.sessions.csrf_ok(session, req.headers.get(CSRF_HEADER)):
                return _error(403, "refused: missing or wrong CSRF token (reload the page)")
        return None


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"ok": False, "error": message}, status_code=status)


def _studio(req: Request) -> Studio:
    return req.app.state.studio


def _session(req: Request) -> Session | None:
    return req.scope.get("studio.session")


def _set_cookie(resp: Response, session: Session, req: Request) -> None:
    resp.set_cookie(
        SESSION_COOKIE,
        session.sid,
        httponly=True,
        samesite="strict",
        secure=req.url.scheme == "https",
        path="/",
    )


async def _json_body(req: Request) -> Any:
    raw = await req.body()
    if len(raw) > MAX_JSON_BYTES:
        raise actions.ActionError(f"request body larger than {MAX_JSON_BYTES // 1024} KB")
    try:
        return json.loads(raw or b"{}")
    except ValueError as exc:
        raise actions.ActionError(f"not JSON ({exc})") from None


# ---------------------------------------------------------------------------- pages
def _static(name: str) -> Path:
    return Path(str(resources.files("miragen.web").joinpath("static", name)))


async def page_index(req: Request) -> Response:
    return FileResponse(_static("index.html"), headers={"cache-control": "no-store"})


async def page_login(req: Request) -> Response:
    if _studio(req).sessions.open_access:
        return RedirectResponse("/", status_code=303)
    return FileResponse(_static("login.html"), headers={"cache-control": "no-store"})


# ---------------------------------------------------------------------------- session
async def api_session(req: Request) -> Response:
    st, session = _studio(req), _session(req)
    made = session is None
    if session is None:
        session = st.sessions.new()
    resp = JSONResponse(
        {
            "csrf": session.csrf,
            "authed": session.authed,
            "token_needed": not st.sessions.open_access,
        }
    )
    if made:
        _set_cookie(resp, session, req)
    return resp


async def api_login(req: Request) -> Response:
    st = _studio(req)
    body = await _json_body(req)
    token = body.get("token", "") if isinstance(body, dict) else ""
    client = req.client.host if req.client else "?"
    fresh = st.sessions.new()
    reason = st.sessions.login(fresh, str(token), client)
    if reason:
        return _error(429 if reason.startswith("too many") else 401, reason)
    resp = JSONResponse({"ok": True, "csrf": fresh.csrf})
    _set_cookie(resp, fresh, req)  # a new session id at login (no fixation)
    return resp


async def api_logout(req: Request) -> Response:
    session = _session(req)
    if session is not None:
        session.authed = _studio(req).sessions.open_access
    return JSONResponse({"ok": True})


# ---------------------------------------------------------------------------- reading
async def api_status(req: Request) -> Response:
    return JSONResponse(await asyncio.to_thread(_studio(req).status))


async def api_events(req: Request) -> Response:
    hub = _studio(req).hub
    queue = hub.subscribe()

    async def stream():
        try:
            yield {"event": "hello", "data": json.dumps({"t": time.time()})}
            while True:
                kind, data = await queue.get()
                yield {"event": kind, "data": json.dumps(data, default=str)}
        finally:
            hub.unsubscribe(queue)

    return EventSourceResponse(stream(), ping=15, headers={"cache-control": "no-store"})


async def api_classes(req: Request) -> Response:
    st = _studio(req)
    status = await asyncio.to_thread(st.status)
    return JSONResponse({"classes": views.classes(st.state, status, st.cfg)})


async def api_class_sounds(req: Request) -> Response:
    st = _studio(req)
    cls = req.path_params["cls"]
    return JSONResponse({"class": cls, "sounds": views.class_sounds(st.state, cls)})


async def api_sound(req: Request) -> Response:
    p = req.path_params
    path = views.sound_file(_studio(req).state, p["cls"], p["name"])
    return _file(path)


async def api_candidates(req: Request) -> Response:
    st = _studio(req)
    return JSONResponse({"requests": views.candidates(st.state, st.cfg)})


async def api_request_file(req: Request) -> Response:
    p = req.path_params
    return _file(views.request_file(_studio(req).state, p["request"], p["name"]))


async def api_requests(req: Request) -> Response:
    if req.method == "POST":
        name = actions.submit_request(_studio(req).state, await _json_body(req))
        return JSONResponse({"ok": True, "name": name}, status_code=202)
    return JSONResponse({"requests": views.records(_studio(req).state)})


async def api_request(req: Request) -> Response:
    return JSONResponse(views.record(_studio(req).state, req.path_params["request"]))


async def api_training(req: Request) -> Response:
    return JSONResponse({"training": views.training(_studio(req).state)})


def _file(path: Path) -> Response:
    media = views.MEDIA.get(path.suffix.lower(), "application/octet-stream")
    return FileResponse(path, media_type=media, headers={"cache-control": "no-cache"})


# ---------------------------------------------------------------------------- changing
async def api_upload(req: Request) -> Response:
    st = _studio(req)
    length = req.headers.get("content-length")
    limit = st.max_files * st.max_file + 2**20
    if length is None or not length.isdigit():
        return _error(411, "an upload must say its length (Content-Length)")
    if int(length) > limit:
        return _error(413, f"upload larger than {limit // 2**20} MB in all")
    if int(length) + 2**28 > actions.free_bytes(st.state):
        return _error(507, "not enough free space in the state folder for this upload")
    form = await req.form(max_files=st.max_files, max_fields=8)
    try:
        cls = str(form.get("class", "") or "")
        files = [f for f in form.getlist("files") if hasattr(f, "filename")]
        if not files:
            return _error(400, "no file in the upload (field 'files')")
        problems = [
            p
            for f in files
            if (p := actions.upload_problem(f.filename or "", f.size, st.max_file)) is not None
        ]
        if problems:
            wrong_type = any("not a sound file" in p for p in problems)
            return _error(415 if wrong_type else 413, "; ".join(problems))
        saved = []
        for f in files:
            saved.append(
                await asyncio.to_thread(
                    actions.save_upload, st.state, cls, f.filename or "", f.file, st.max_file
                )
            )
    finally:
        await form.close()
    return JSONResponse({"ok": True, "class": cls, "saved": saved}, status_code=202)


async def api_choice(req: Request) -> Response:
    body = await _json_body(req)
    if not isinstance(body, dict):
        raise actions.ActionError("expected {candidate, choice}")
    chosen = actions.set_choice(
        _studio(req).state, str(body.get("candidate", "")), str(body.get("choice", ""))
    )
    return JSONResponse({"ok": True, "choices": chosen})


async def api_deliver(req: Request) -> Response:
    """Send a candidate (``request/file.pcm``) to the Mirage: a request file with
    ``candidate`` set, which the daemon delivers without generating."""
    body = await _json_body(req)
    if not isinstance(body, dict):
        raise actions.ActionError("expected {candidate, half, wavesample, route}")
    candidate = str(body.get("candidate", ""))
    request, _, file = candidate.partition("/")
    views.request_file(_studio(req).state, request, file)  # 404 unless listed
    fields = {k: body[k] for k in ("half", "wavesample", "route", "sound") if k in body}
    name = actions.submit_request(_studio(req).state, {"candidate": candidate, **fields})
    return JSONResponse({"ok": True, "name": name}, status_code=202)


async def api_triggers(req: Request) -> Response:
    st = _studio(req)
    if req.method == "POST":
        actions.add_trigger(st.state, await _json_body(req))
    return JSONResponse(views.triggers(st.state, st.cfg))


async def api_trigger_delete(req: Request) -> Response:
    st = _studio(req)
    body = await _json_body(req)
    actions.delete_trigger(st.state, body.get("index") if isinstance(body, dict) else None)
    return JSONResponse(views.triggers(st.state, st.cfg))


async def api_learn(req: Request) -> Response:
    st = _studio(req)
    if req.method == "POST":
        return JSONResponse(actions.start_learn(st.state))
    return JSONResponse({"learned": views.learned(st.state)})


# ---------------------------------------------------------------------------- the app
async def _not_found(req: Request, exc: Exception) -> Response:
    return _error(404, str(exc))


async def _refused(req: Request, exc: Exception) -> Response:
    return _error(400, str(exc))


def create_app(cfg: dict[str, Any], token: str | None = None) -> Starlette:
    """The application; ``token`` None on a loopback listener (no token asked)."""
    studio = Studio(cfg, token)

    @asynccontextmanager
    async def lifespan(app: Starlette):
        studio.hub.start()
        try:
            yield
        finally:
            await studio.hub.stop()

    routes = [
        Route("/", page_index),
        Route("/login", page_login),
        Route("/api/session", api_session),
        Route("/api/login", api_login, methods=["POST"]),
        Route("/api/logout", api_logout, methods=["POST"]),
        Route("/api/status", api_status),
        Route("/api/events", api_events),
        Route("/api/classes", api_classes),
        Route("/api/classes/{cls}/sounds", api_class_sounds),
        Route("/api/sounds/{cls}/{name}", api_sound),
        Route("/api/upload", api_upload, methods=["POST"]),
        Route("/api/candidates", api_candidates),
        Route("/api/candidates/choice", api_choice, methods=["POST"]),
        Route("/api/deliver", api_deliver, methods=["POST"]),
        Route("/api/requests", api_requests, methods=["GET", "POST"]),
        Route("/api/requests/{request}", api_request),
        Route("/api/requests/{request}/files/{name}", api_request_file),
        Route("/api/training", api_training),
        Route("/api/triggers", api_triggers, methods=["GET", "POST"]),
        Route("/api/triggers/delete", api_trigger_delete, methods=["POST"]),
        Route("/api/learn", api_learn, methods=["GET", "POST"]),
        Mount("/static", StaticFiles(directory=str(_static("")))),
    ]
    app = Starlette(
        routes=routes,
        lifespan=lifespan,
        exception_handlers={
            views.NotFound: _not_found,
            MiragenError: _refused,
        },
    )
    app.state.studio = studio
    return Guard(app, studio)  # type: ignore[return-value]


def make_app(cfg: dict[str, Any]) -> tuple[Any, str | None]:
    """The app for ``cfg`` and the token it asks for (None on loopback)."""
    host, _ = split_listen(cfg["web"]["listen"])
    token = None if is_loopback(host) else ensure_token(token_path(cfg))[0]
    return create_app(cfg, token), token
