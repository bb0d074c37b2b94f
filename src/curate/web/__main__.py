"""``python -m curate.web PROJECT [--host 127.0.0.1] [--port 8000] [--allowed-host NAME ...] [--max-failed-signins N]``:
serve the labelling app."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from curate.errors import CurateError


def main(argv: list[str] | None = None) -> int:
    """Parse the arguments and serve until interrupted; returns the exit status (2 on a user error)."""
    parser = argparse.ArgumentParser(prog="python -m curate.web", description="Serve the experts' labelling app.")
    parser.add_argument("project", type=Path, help="the project folder")
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    parser.add_argument("--allowed-host", action="append", default=[],
                        help="a host name answered besides 127.0.0.1 and localhost (repeatable)")
    parser.add_argument("--max-failed-signins", type=int, default=10,
                        help="wrong tokens per client address per minute before 429 (0: no limit; default 10)")
    args = parser.parse_args(argv)
    from curate.web.app import serve

    try:
        serve(args.project, host=args.host, port=args.port, allowed_hosts=args.allowed_host,
              max_failed_signins=args.max_failed_signins)
    except CurateError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
