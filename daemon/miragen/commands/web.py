"""``miragen web``: the studio page (systemd unit ``miragen-web.service``); ``miragen web
token`` prints the token that clients on the network need."""

from __future__ import annotations

import argparse
import logging

from .. import config as configmod
from ..errors import ConfigError
from ..web.auth import ensure_token, split_listen, token_path

log = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "web",
        help="serve the studio page: listen, keep, send to the Mirage, teach MIDI triggers",
        description="Serve the studio page and its JSON API (docs/web.md) on web.listen "
        "(default 127.0.0.1:8808). Listening on anything but loopback asks every client for "
        "the token that `miragen web token` prints.",
    )
    p.add_argument(
        "what",
        nargs="?",
        choices=("token",),
        help="token: print the token (made, readable by this user only, when there is none)",
    )
    p.add_argument(
        "--config",
        metavar="FILE",
        help="configuration file (default: $MIRAGEN_CONFIG, /etc/miragen/miragen.toml, or the "
        "embedded default)",
    )
    p.add_argument("--state", metavar="DIR", help="state folder (overrides paths.state)")
    p.add_argument("--listen", metavar="ADDR:PORT", help="overrides web.listen")
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    cfg = configmod.load(args.config)  # a ConfigError is printed by miragen.cli
    if args.state:
        cfg["paths"]["state"] = args.state
    if args.listen:
        reason = configmod.SCHEMA["web"]["listen"].check(args.listen)
        if reason:
            raise ConfigError([f"--listen: {reason}"], "command line")
        cfg["web"]["listen"] = args.listen
    if args.what == "token":
        token, made = ensure_token(token_path(cfg))
        print(token)
        if made:
            log.info("made a new web token in %s (mode 600)", token_path(cfg))
        return 0
    return _serve(cfg, args)


def _serve(cfg: dict, args: argparse.Namespace) -> int:
    import uvicorn  # only this command serves: `miragen --help` stays light

    from ..web.server import make_app

    if args.verbose == 0 and not args.quiet:
        logging.getLogger().setLevel(cfg["logging"]["level"])
    host, port = split_listen(cfg["web"]["listen"])
    app, token = make_app(cfg)
    where = f"http://{'[' + host + ']' if ':' in host else host}:{port}/"
    if token is None:
        log.info("studio page on %s (loopback: no token asked)", where)
    else:
        log.info("studio page on %s; clients log in with the token (`miragen web token`)", where)
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
    return 0
