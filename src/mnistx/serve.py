"""Draw a digit and see what your models think: `python -m mnistx.serve run=<run dir>`.

    python -m mnistx.serve run=outputs/2026-11-23/14-02-11
    python -m mnistx.serve run=outputs/multirun/2026-11-23/15-00-00      # every finished job
    python -m mnistx.serve run=outputs/.../mlp run=outputs/.../cnn port=8000

A local web page (http://127.0.0.1:7860): draw on the pad with the mouse or a finger, or drop
an image file; each model's prediction, its top-3 probabilities and the 28x28 input it saw,
side by side. The page and its JSON endpoint (POST an image to /api/predict) work offline and
answer only this machine unless `host=` says otherwise. Needs the app extra:
pip install 'mnistx[app]'.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from mnistx.errors import UserError

KEYS = ("run", "port", "host")
DEFAULT_PORT = 7860
EXAMPLE = "python -m mnistx.serve run=outputs/2026-11-23/14-02-11"


def parse_settings(settings: Sequence[str]) -> dict[str, Any]:
    """`run=` (once or more), `port=`, `host=`; anything else is one clear message."""
    runs: list[str] = []
    parsed: dict[str, Any] = {"port": DEFAULT_PORT, "host": "127.0.0.1"}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or key not in KEYS or not value:
            raise UserError(
                f"Cannot read {item!r}: expected run=<run or sweep folder> (once or more), "
                f"port=<number> (default {DEFAULT_PORT}) or host=<address> (default 127.0.0.1), "
                f"e.g. {EXAMPLE}"
            )
        if key == "run":
            runs.append(value)
        elif key == "port":
            if not (value.isascii() and value.isdigit()) or int(value) > 65535:
                raise UserError(
                    f"port={value} is not a port number: give 1024-65535 (default "
                    f"{DEFAULT_PORT}), or port=0 for any free one."
                )
            parsed["port"] = int(value)
        else:
            parsed["host"] = value
    if not runs:
        raise UserError(
            "Say which models to serve: run=<run folder> (once or more) or run=<sweep folder> "
            f"(all its finished jobs), e.g. {EXAMPLE}"
        )
    parsed["runs"] = runs
    return parsed


def _check_extra() -> None:
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise UserError(
            "The app needs the app extra (Starlette and uvicorn): pip install 'mnistx[app]' "
            "(or, in a clone of mnistx, make dev)."
        ) from None


def serve(runs: Sequence[str], port: int, host: str) -> None:
    """Bind first (a port in use is said at once), load the models, then serve until Ctrl-C."""
    _check_extra()
    from mnistx.app.server import bind, is_loopback, make_app, run

    sock = bind(host, port)
    try:
        from mnistx.app.models import load_models

        models, skipped = load_models(runs)
        address, bound = sock.getsockname()[:2]
        shown = f"[{address}]" if ":" in address else address
        url = f"http://{'127.0.0.1' if address in ('0.0.0.0', '::') else shown}:{bound}"
        print(f"Serving {len(models)} model{'s' * (len(models) != 1)} at {url}  (Ctrl-C stops)")
        width = max(len(m.label) for m in models)
        for m in models:
            acc = f"test/acc {m.test_acc:.2%}" if m.test_acc is not None else "not tested"
            print(f"  {m.label:<{width}}  {m.model:<4}  {acc:<16}  {m.run}")
        for line in skipped:
            print(f"  left out: {line}")
        print(f"JSON: curl --data-binary @digit.png {url}/api/predict")
        if not is_loopback(address):
            print(
                f"Listening on {address}: anyone who can reach this machine on port {bound} "
                "can use the page (it has no password)."
            )
        sys.stdout.flush()
        app = make_app(models)
    except BaseException:
        sock.close()
        raise
    run(app, sock)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mnistx.serve",
        description="A local web page: draw a digit, see each model's prediction.",
        epilog=f"Example: {EXAMPLE}",
    )
    parser.add_argument(
        "settings",
        nargs="*",
        help="run=<run or sweep folder> (repeatable), port=<number> (default 7860), "
        "host=<address> (default 127.0.0.1; anything else lets other machines in)",
    )
    args = parser.parse_args(argv)
    try:
        serve(**parse_settings(args.settings))
    except UserError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # Ctrl-C while the models load; uvicorn handles it after
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
