"""Compare the runs of one or more sweeps: `python -m mnistx.compare DIR [DIR ...]`.

    python -m mnistx.compare outputs/multirun/2026-11-23/14-02-11 [more sweeps] [--out DIR]

Prints the table and writes comparison.md, comparison.csv and the plots into the (first)
sweep folder; a report of several sweeps (or of one run) goes to a new folder of its own
under outputs/comparisons/, and --out names a new folder outside every run and sweep
(mnistx.sweeps.comparison builds them; mnistx.runs.guard decides where they may go).
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
    parser.add_argument(
        "--overwrite", action="store_true", help="let --out replace an earlier report there"
    )
    args = parser.parse_args(argv)
    from mnistx.sweeps.comparison import compare

    return exit_status(lambda: compare(args.dirs, args.out, args.tag, args.overwrite))


if __name__ == "__main__":
    from mnistx.fast_exit import exiting_fast

    with exiting_fast():
        sys.exit(main())
