"""Compare the runs of one or more sweeps: `python -m mnistx.compare DIR [DIR ...]`.

    python -m mnistx.compare outputs/multirun/2026-11-23/14-02-11 [more sweeps] [--out DIR]

Prints the table and writes comparison.md, comparison.csv and the plots into the (first)
sweep folder (mnistx.sweeps.comparison builds them).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from mnistx.errors import exit_status


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mnistx.compare",
        description="Compare the runs of one or more sweep folders: table, CSV, plots.",
    )
    parser.add_argument("dirs", nargs="+", help="sweep folders (outputs/multirun/DATE/TIME)")
    parser.add_argument("--out", help="where to write the report (default: the first folder)")
    parser.add_argument("--tag", help="only the runs tagged so (tags=[...] when they ran)")
    args = parser.parse_args(argv)
    from mnistx.sweeps.comparison import compare

    return exit_status(lambda: compare(args.dirs, args.out, args.tag))


if __name__ == "__main__":
    from mnistx.fast_exit import exiting_fast

    with exiting_fast():
        sys.exit(main())
