"""c2s serve MODEL [--host 127.0.0.1] [--port 8000] [--token TOKEN] [--timeout S]"""

from __future__ import annotations

import errno
import os
import socket
import sys

from c2s._errors import C2SError
from c2s.cli import _flags as flags

TOKEN_ENV = "C2S_TOKEN"


def register(sub) -> None:
    from c2s.serve import create_app

    flags.add_command(
        sub,
        "serve",
        verb=create_app,
        run=run,
        help="serve a model over HTTP: a web page at /, a JSON API under /v1 (docs at /docs)",
        description="Load the model once and serve the c2s verbs as a JSON API and a web page "
        "(upload cells, see their predicted types and a UMAP, download the annotations, "
        "generate cells). Binds to localhost unless --host says otherwise. Needs the serve "
        "extra: pip install 'c2s[serve]'.",
    )


def run(args) -> int:
    from c2s.serve import create_app

    try:
        import uvicorn
    except ImportError as e:
        raise ImportError("c2s serve needs uvicorn: pip install 'c2s[serve]'") from e
    check_address(args.host, args.port)  # before the model loads: minutes, on a big one
    token = args.token or os.environ.get(TOKEN_ENV) or None
    app = create_app(args.model, **flags.verb_kwargs(args, token=token))
    host = f"[{args.host}]" if ":" in args.host else args.host
    url = f"http://{host}:{args.port}"
    print(
        f"c2s serve: open {url}/ for the page; the API is under /v1, documented at {url}/docs"
        f"{' (requests need the token)' if token else ''}",
        file=sys.stderr,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def check_address(host: str, port: int) -> None:
    """Refuse a port out of range, a host that does not resolve, or an address this machine
    cannot listen on (in use, not its own, privileged), by binding to it once."""
    if not 0 <= port <= 65535:
        raise C2SError(f"--port must be from 0 (any free port) to 65535, not {port}.")
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError) as e:
        raise C2SError(
            f"Cannot resolve --host {host!r}: {e}. Give an address of this machine "
            "(127.0.0.1, 0.0.0.0 for every interface) or its name."
        ) from None
    family, kind, proto, _, address = infos[0]
    where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    with socket.socket(family, kind, proto) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            s.bind(address)
        except OSError as e:
            why = {
                errno.EADDRINUSE: "the port is in use (another server?); choose another --port",
                errno.EACCES: "permission denied (ports below 1024 need privileges); choose "
                "another --port",
                errno.EADDRNOTAVAIL: "the address is not one of this machine's; check --host",
            }.get(e.errno, e.strerror or str(e))
            raise C2SError(f"Cannot listen on {where}: {why}.") from None
