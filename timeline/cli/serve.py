"""`timeline serve`: the local browser view of the store's projections (read-only)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .errors import DONE

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8000


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from ..app import Timeline
    from ..web.app import create_app

    with Timeline.open(args.store, create=False) as tl:
        tl.as_of().close()  # refuses a store without projections before the server starts
        if args.host not in ("127.0.0.1", "localhost", "::1"):
            print(f"timeline serve: warning: listening on {args.host}: other computers can read these patients' "
                  "data", file=sys.stderr)
        print(f"timeline serve: http://{args.host}:{args.port}/ (read-only; Ctrl-C stops)", file=sys.stderr)
        uvicorn.run(create_app(tl), host=args.host, port=args.port, log_level="warning", access_log=False)
    return DONE


def register(sub: Any, store_arg) -> None:
    p = sub.add_parser("serve", help="a read-only local web view: the cohort and each patient's course",
                       description="Serve the cohort page and a page per patient on this computer (read-only: "
                       "the store and the projection file are never written). Nothing is loaded from the "
                       "internet.")
    store_arg(p)
    p.add_argument("--host", default=DEFAULT_HOST, help=f"address to listen on (default {DEFAULT_HOST}: this "
                   "computer only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.set_defaults(func=cmd_serve)
