"""The studio page's API (``miragen web``): every endpoint with Starlette's test client, the
access rules (token, CSRF, Host), path traversal in every parameter, uploads, and the live
event stream through a real uvicorn server."""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from pathlib import Path

import httpx2
import pytest
import uvicorn
from miragen import config as configmod
from miragen.fsutil import atomic_write_text
from miragen.service.corpus_index import CorpusIndex
from miragen.service.db import Database
from miragen.service.state import StateDir
from miragen.web import actions
from miragen.web.auth import ensure_token, read_token
from miragen.web.server import create_app
from starlette.testclient import TestClient

TOKEN = "a-test-token-long-enough-000"
LOOP = "http://127.0.0.1:8808"


def _state(tmp_path: Path) -> StateDir:
    sd = StateDir(tmp_path / "state")
    sd.create()
    # a corpus class with one sound, and a finished request with two candidates
    (sd.corpus / "bass").mkdir()
    (sd.corpus / "bass" / "abc123.pcm").write_bytes(bytes(range(1, 256)) + b"\x80")
    db = Database(sd.db)  # the schema, as the daemon makes it
    with db.transaction() as conn:
        CorpusIndex(db).add("abc123" * 8, "bass", "corpus/bass/abc123.pcm", "abc.pcm", conn)
    db.close()
    out = sd.out / "req-1"
    out.mkdir()
    for i in (1, 2):
        (out / f"bass-00{i}.pcm").write_bytes(bytes([128 + i]) * 256)
        (out / f"bass-00{i}.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    rec = {
        "name": "req-1",
        "state": "done",
        "class": "bass",
        "candidates": ["out/req-1/bass-001.pcm", "out/req-1/bass-002.pcm"],
        "files": [
            "out/req-1/bass-001.pcm",
            "out/req-1/bass-001.png",
            "out/req-1/bass-002.pcm",
            "out/req-1/bass-002.png",
        ],
        "gate": "2 kept of 8",
    }
    atomic_write_text(sd.record_path("req-1"), json.dumps(rec))
    atomic_write_text(sd.records / "req-1.request.json", json.dumps({"name": "req-1"}))  # a copy
    (sd.root / "secret.txt").write_text("not for the page")
    return sd


def _cfg(sd: StateDir, listen: str = "127.0.0.1:8808", **web) -> dict:
    cfg = configmod.defaults()
    cfg["paths"]["state"] = str(sd.root)
    cfg["web"]["listen"] = listen
    cfg["web"].update(web)
    return cfg


@pytest.fixture
def sd(tmp_path):
    return _state(tmp_path)


@pytest.fixture
def client(sd):
    with TestClient(create_app(_cfg(sd)), base_url=LOOP) as c:
        c.csrf = c.get("/api/session").json()["csrf"]
        yield c


def _post(c, url, body=None, **kw):
    return c.post(url, json=body, headers={"x-csrf-token": c.csrf}, **kw)


# ---------------------------------------------------------------------------- access
def test_loopback_reads_without_a_token(client):
    st = client.get("/api/status")
    assert st.status_code == 200
    body = st.json()
    assert body["daemon"]["running"] is False and "bass" in body["classes"]
    page = client.get("/")
    assert page.status_code == 200 and "Miragen" in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert client.get("/static/app.js").status_code == 200


def test_loopback_refuses_other_host_names(client):
    r = client.get("/api/status", headers={"host": "evil.example:8808"})
    assert r.status_code == 421


def test_post_without_csrf_is_refused(client, sd):
    r = client.post("/api/requests", json={"class": "bass"})
    assert r.status_code == 403 and "CSRF" in r.json()["error"]
    r = client.post("/api/requests", json={"class": "bass"}, headers={"x-csrf-token": "wrong"})
    assert r.status_code == 403
    r = client.post(
        "/api/requests",
        json={"class": "bass"},
        headers={"x-csrf-token": client.csrf, "origin": "http://evil.example"},
    )
    assert r.status_code == 403 and "another site" in r.json()["error"]
    assert list(sd.requests.iterdir()) == []  # nothing written by a refused request


def test_network_listener_needs_the_token(sd):
    app = create_app(_cfg(sd, "0.0.0.0:8808"), TOKEN)
    with TestClient(app, base_url="http://192.168.1.20:8808") as c:
        assert c.get("/api/status").status_code == 401
        page = c.get("/", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login"
        assert c.get("/login").status_code == 200
        s = c.get("/api/session").json()
        assert s["token_needed"] and not s["authed"]
        wrong = c.post("/api/login", json={"token": "nope"}, headers={"x-csrf-token": s["csrf"]})
        assert wrong.status_code == 401
        no_csrf = c.post("/api/login", json={"token": TOKEN})
        assert no_csrf.status_code == 403
        ok = c.post("/api/login", json={"token": TOKEN}, headers={"x-csrf-token": s["csrf"]})
        assert ok.status_code == 200
        csrf = ok.json()["csrf"]
        assert c.get("/api/status").status_code == 200
        r = c.post("/api/requests", json={"class": "bass"})
        assert r.status_code == 403  # logged in, still no CSRF token: refused
        r = c.post("/api/requests", json={"class": "bass"}, headers={"x-csrf-token": csrf})
        assert r.status_code == 202
    with TestClient(app, base_url="http://192.168.1.20:8808") as c2:  # scripts: bearer token
        h = {"authorization": f"Bearer {TOKEN}"}
        assert c2.get("/api/status", headers=h).status_code == 200
        assert c2.post("/api/learn", headers=h).status_code == 200
        assert c2.get("/api/status", headers={"authorization": "Bearer x"}).status_code == 401


def test_login_is_rate_limited(sd):
    app = create_app(_cfg(sd, "0.0.0.0:8808"), TOKEN)
    with TestClient(app, base_url="http://10.0.0.2:8808") as c:
        csrf = c.get("/api/session").json()["csrf"]
        codes = [
            c.post("/api/login", json={"token": "x"}, headers={"x-csrf-token": csrf}).status_code
            for _ in range(12)
        ]
        assert codes[:10] == [401] * 10 and codes[-1] == 429


def test_token_file_is_private(tmp_path):
    p = tmp_path / "web-token"
    token, made = ensure_token(p)
    assert made and len(token) >= 30 and (os.stat(p).st_mode & 0o777) == 0o600
    assert ensure_token(p) == (token, False)
    os.chmod(p, 0o644)
    with pytest.raises(Exception, match="readable by other users"):
        read_token(p)


# ---------------------------------------------------------------------------- reading
def test_sounds_and_candidates(client):
    classes = client.get("/api/classes").json()["classes"]
    assert [c["class"] for c in classes] == ["bass"]
    sounds = client.get("/api/classes/bass/sounds").json()["sounds"]
    assert sounds == [{"name": "abc123.pcm", "bytes": 256}]
    r = client.get("/api/sounds/bass/abc123.pcm")
    assert r.status_code == 200 and len(r.content) == 256
    reqs = client.get("/api/candidates").json()["requests"]
    assert [c["id"] for c in reqs[0]["candidates"]] == ["req-1/bass-001.pcm", "req-1/bass-002.pcm"]
    assert reqs[0]["candidates"][0]["png"] == "bass-001.png"
    f = client.get("/api/requests/req-1/files/bass-002.pcm")
    assert f.status_code == 200 and f.content == bytes([130]) * 256
    assert client.get("/api/requests/req-1").json()["state"] == "done"
    assert [r["name"] for r in client.get("/api/requests").json()["requests"]] == ["req-1"]
    assert client.get("/api/training").json() == {"training": {}}


TRAVERSALS = [
    "%2E%2E%2Fsecret.txt",
    "..%2F..%2Fsecret.txt",
    "%2E%2E",
    ".hidden",
    "a%00b",
    "%2Fetc%2Fpasswd",
]


@pytest.mark.parametrize("bad", TRAVERSALS)
def test_path_traversal_in_every_parameter(client, sd, bad):
    gets = [
        f"/api/classes/{bad}/sounds",
        f"/api/sounds/{bad}/abc123.pcm",
        f"/api/sounds/bass/{bad}",
        f"/api/requests/{bad}",
        f"/api/requests/{bad}/files/bass-001.pcm",
        f"/api/requests/req-1/files/{bad}",
    ]
    for url in gets:
        r = client.get(url)
        assert r.status_code in (404, 400), (url, r.status_code)
        assert b"not for the page" not in r.content
    raw = bad.replace("%2F", "/").replace("%2E", ".").replace("%00", "\0")
    posts = [
        ("/api/candidates/choice", {"candidate": "../req-1/bass-001.pcm", "choice": "keep"}),
        ("/api/candidates/choice", {"candidate": f"{raw}/x.pcm", "choice": "keep"}),
        ("/api/candidates/choice", {"candidate": f"req-1/{raw}", "choice": "keep"}),
        ("/api/deliver", {"candidate": f"req-1/{raw}"}),
        ("/api/deliver", {"candidate": f"{raw}/bass-001.pcm"}),
        ("/api/requests", {"name": raw, "class": "bass"}),
        ("/api/requests", {"class": raw}),
    ]
    for url, body in posts:
        r = _post(client, url, body)
        if r.status_code == 202:  # a name is made safe, never used as a path
            name = r.json()["name"]
            assert "/" not in name and not name.startswith(".")
            assert (sd.requests / f"{name}.json").is_file()
        else:
            assert r.status_code in (400, 404), (url, body, r.status_code)
    assert (
        not (sd.root / "web" / "choices.json").exists()
        or ".." not in (sd.root / "web" / "choices.json").read_text()
    )


def test_links_out_of_the_state_folder_are_not_served(client, sd, tmp_path):
    outside = tmp_path / "outside.pcm"
    outside.write_bytes(b"\x80" * 256)
    (sd.corpus / "bass" / "link.pcm").symlink_to(outside)
    assert client.get("/api/sounds/bass/link.pcm").status_code == 404
    assert client.get("/api/sounds/bass/../secret.txt").status_code == 404
    listed = [s["name"] for s in client.get("/api/classes/bass/sounds").json()["sounds"]]
    assert "link.pcm" not in listed


def test_only_files_a_record_lists_are_served(client, sd):
    (sd.out / "req-1" / "other.pcm").write_bytes(b"\x80" * 256)
    assert client.get("/api/requests/req-1/files/other.pcm").status_code == 404


# ---------------------------------------------------------------------------- changing
def test_request_becomes_a_request_file(client, sd):
    r = _post(client, "/api/requests", {"class": "bass", "count": 3, "name": "mine"})
    assert r.status_code == 202 and r.json()["name"] == "mine"
    body = json.loads((sd.requests / "mine.json").read_text())
    assert body["class"] == "bass" and body["count"] == 3
    bad = _post(client, "/api/requests", {"class": "bass", "count": 999, "colour": "red"})
    assert bad.status_code == 400
    assert "count" in bad.json()["error"] and "colour: unknown key" in bad.json()["error"]
    assert not _post(client, "/api/requests", [1, 2]).is_success
    big = _post(client, "/api/requests", {"name": "x" * 70000})
    assert big.status_code == 400


def test_deliver_asks_the_daemon_for_that_candidate(client, sd):
    r = _post(client, "/api/deliver", {"candidate": "req-1/bass-002.pcm", "wavesample": 3})
    assert r.status_code == 202
    body = json.loads((sd.requests / f"{r.json()['name']}.json").read_text())
    assert body["candidate"] == "req-1/bass-002.pcm" and body["wavesample"] == 3
    assert _post(client, "/api/deliver", {"candidate": "req-1/nope.pcm"}).status_code == 404
    bad = _post(client, "/api/deliver", {"candidate": "req-1/bass-001.pcm", "half": "middle"})
    assert bad.status_code == 400


def test_keep_and_discard(client, sd):
    r = _post(
        client, "/api/candidates/choice", {"candidate": "req-1/bass-001.pcm", "choice": "keep"}
    )
    assert r.json()["choices"] == {"req-1/bass-001.pcm": "keep"}
    reqs = client.get("/api/candidates").json()["requests"]
    assert reqs[0]["candidates"][0]["choice"] == "keep"
    r = _post(client, "/api/candidates/choice", {"candidate": "req-1/bass-001.pcm", "choice": ""})
    assert r.json()["choices"] == {}
    bad = _post(client, "/api/candidates/choice", {"candidate": "req-1/b.pcm", "choice": "burn"})
    assert bad.status_code == 400


def test_learn_and_triggers(client, sd):
    learn = _post(client, "/api/learn").json()
    on_disk = json.loads((sd.root / "live" / "learn.json").read_text())
    assert on_disk["id"] == learn["id"] and on_disk["until"] > time.time()
    assert client.get("/api/learn").json() == {"learned": None}
    t = {"message": "note_on", "channel": 10, "note": 36, "class": "bass", "count": 2}
    r = _post(client, "/api/triggers", t)
    assert r.status_code == 200 and r.json()["learned"][0]["note"] == 36
    stored = json.loads((sd.root / "triggers.json").read_text())["triggers"]
    assert stored[0]["channel"] == 10 and stored[0]["half"] == "lower"  # defaults filled
    bad = _post(client, "/api/triggers", {"message": "note_on", "note": 300})
    assert bad.status_code == 400 and "note" in bad.json()["error"]
    assert _post(client, "/api/triggers/delete", {"index": 5}).status_code == 400
    assert _post(client, "/api/triggers/delete", {"index": 0}).json()["learned"] == []
    kit = {"message": "note_on", "note": 38, "kit": True, "keyboard": "drum"}
    assert _post(client, "/api/triggers", kit).json()["learned"][0]["keyboard"] == "drum"
    bad = _post(client, "/api/triggers", {"message": "note_on", "note": 39, "octaves": 2})
    assert bad.status_code == 400 and "only with keyboard" in bad.json()["error"]


# ---------------------------------------------------------------------------- uploads
def _upload(client, files, cls="kick"):
    return client.post(
        "/api/upload", data={"class": cls}, files=files, headers={"x-csrf-token": client.csrf}
    )


def test_upload_lands_in_the_drop_folder(client, sd):
    r = _upload(client, [("files", ("my kick.pcm", b"\x80\x90\x70" * 100, "audio/x-raw"))])
    assert r.status_code == 202 and r.json()["saved"] == ["my_kick.pcm"]
    assert (sd.inbox / "kick" / "my_kick.pcm").read_bytes() == b"\x80\x90\x70" * 100
    assert [p.name for p in (sd.inbox / "kick").iterdir()] == ["my_kick.pcm"]  # no .part left
    r = _upload(client, [("files", ("../../evil.wav", b"RIFF", "audio/wav"))], cls="../x")
    assert r.status_code == 202
    assert r.json()["saved"] == ["evil.wav"] and (sd.inbox / "___x" / "evil.wav").is_file()
    r = _upload(client, [("files", ("loose.wav", b"RIFF", "audio/wav"))], cls="")
    assert (sd.inbox / "loose.wav").is_file()  # no class: the unsorted pool


def test_upload_refuses_wrong_type_size_and_count(sd):
    cfg = _cfg(sd, max_upload_files=2)
    cfg["daemon"]["max_file_mb"] = 1
    with TestClient(create_app(cfg), base_url=LOOP) as c:
        c.csrf = c.get("/api/session").json()["csrf"]
        r = _upload(c, [("files", ("notes.txt", b"hello", "text/plain"))])
        assert r.status_code == 415 and "notes.txt" in r.json()["error"]
        r = _upload(c, [("files", ("big.wav", b"\0" * (2 * 2**20), "audio/wav"))])
        assert r.status_code == 413 and "big.wav" in r.json()["error"]
        many = [("files", (f"s{i}.pcm", b"\x80" * 10, "audio/x-raw")) for i in range(3)]
        r = _upload(c, many)
        assert r.status_code == 400
        r = c.post(
            "/api/upload",
            content=b"x" * 100,
            headers={"x-csrf-token": c.csrf, "content-type": "multipart/form-data; boundary=z"},
        )
        assert r.status_code == 400
        assert not (sd.inbox / "kick").exists()


def test_upload_needs_csrf(client, sd):
    r = client.post("/api/upload", files=[("files", ("a.pcm", b"\x80", "audio/x-raw"))])
    assert r.status_code == 403 and not any(sd.inbox.iterdir())


def test_actions_refuse_non_sound_names(sd):
    with pytest.raises(actions.ActionError):
        actions.save_upload(sd, "x", "payload.sh", open(os.devnull, "rb"), 10)


# ---------------------------------------------------------------------------- live events
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """The app under a real uvicorn server on a thread (the event stream needs one)."""

    def __init__(self, cfg: dict):
        self.server = uvicorn.Server(
            uvicorn.Config(create_app(cfg), host="127.0.0.1", port=_port(cfg), log_level="error")
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        assert self.server.started
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(5)


def _port(cfg: dict) -> int:
    return int(cfg["web"]["listen"].rpartition(":")[2])


def _events(lines, wanted: str, deadline: float):
    """(event, data) pairs from the lines of an open SSE response until ``wanted`` arrives."""
    kind = None
    for line in lines:
        if line.startswith("event:"):
            kind = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and kind:
            yield kind, json.loads(line.split(":", 1)[1])
            if kind == wanted or time.monotonic() > deadline:
                return


def test_event_stream_carries_delivery_progress(sd):
    cfg = _cfg(sd, f"127.0.0.1:{_free_port()}")
    base = f"http://127.0.0.1:{_port(cfg)}"
    with Served(cfg), httpx2.Client(base_url=base, timeout=10) as c:
        with c.stream("GET", "/api/events") as resp:
            assert resp.headers["content-type"].startswith("text/event-stream")
            lines = resp.iter_lines()
            assert [k for k, _ in _events(lines, "hello", time.monotonic() + 5)][-1] == "hello"
            progress = {"request": "r1", "phase": "sending", "done": 512, "total": 4104}
            atomic_write_text(sd.root / "live" / "delivery.json", json.dumps(progress))
            got = list(_events(lines, "delivery", time.monotonic() + 5))
            assert got[-1] == ("delivery", progress)
            atomic_write_text(sd.record_path("req-2"), json.dumps({"name": "req-2"}))
            kinds = [k for k, _ in _events(lines, "requests", time.monotonic() + 5)]
            assert kinds[-1] == "requests"


def test_logout_ends_the_session(sd):
    app = create_app(_cfg(sd, "0.0.0.0:8808"), TOKEN)
    with TestClient(app, base_url="http://192.168.1.20:8808") as c:
        s = c.get("/api/session").json()
        csrf = c.post("/api/login", json={"token": TOKEN}, headers={"x-csrf-token": s["csrf"]})
        csrf = csrf.json()["csrf"]
        assert c.get("/api/status").status_code == 200
        assert c.post("/api/logout", headers={"x-csrf-token": csrf}).status_code == 200
        assert c.get("/api/status").status_code == 401


def test_web_token_command(cli, tmp_path):
    state = tmp_path / "st"
    r = cli("web", "token", "--state", str(state))
    assert r.returncode == 0, r.stderr
    token = r.stdout.decode().strip()
    assert len(token) >= 30 and (os.stat(state / "web-token").st_mode & 0o777) == 0o600
    again = cli("web", "token", "--state", str(state))
    assert again.stdout.decode().strip() == token  # made once, printed again
    bad = cli("web", "--listen", "nowhere", "--state", str(state))
    assert bad.returncode != 0 and b"--listen" in bad.stderr
