"""The comparison report of one or more sweeps (`python -m mnistx.compare`, and every multirun).

One row per setting (runs that differ only in `seed` are pooled: mean ± std), sorted by
val/acc_best; printed with Rich and written as comparison.md / comparison.csv, with PNG
plots, into the (first) sweep folder. Failed and skipped jobs stay in the table with their
reason. Also run by Hydra at the end of every multirun (mnistx.sweeps.callback.SweepCallback).
"""

from __future__ import annotations

import csv
import io
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf
from rich.console import Console
from rich.table import Table

from mnistx.config.overrides import parse_overrides, short_value
from mnistx.errors import UserError
from mnistx.runs.layout import CONFIG, METRICS, OVERRIDES, SWEEP_CONFIG
from mnistx.runs.records import write_text
from mnistx.sweeps import cross_validation, importance
from mnistx.sweeps.report_place import check_tag, report_folder
from mnistx.sweeps.statistics import add_statistics, mean_std, one_per_sample, verdict

SEED = "seed"
# Keys whose jobs are samples of one setting, pooled in its row: seeds, and the folds of a
# cross-validation (cv.folds).
POOLED = (SEED, "cv.fold")
log = logging.getLogger("mnistx")


def _load_run(path: Path) -> dict[str, Any]:
    """One job's record; a metrics.json that cannot be read is skipped with a warning, and
    the job is listed as `unreadable` (with its command line from .hydra/)."""
    metrics_file = path / METRICS
    overrides_file = path / OVERRIDES
    run = None
    if metrics_file.exists():
        try:
            run = json.loads(metrics_file.read_text())
            if not isinstance(run, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            log.warning(
                "Skipping %s: it cannot be read (%s); the report lists the job as unreadable.",
                metrics_file,
                e,
            )
            run = {"status": "unreadable", "reason": f"metrics.json cannot be read ({e})"}
    if run is None:  # started, never finished (killed, out of memory, cluster time limit)
        run = {
            "status": "failed",
            "reason": "no metrics.json: the job did not finish (killed or interrupted?)",
        }
    if "overrides" not in run:
        run["overrides"] = (
            [str(o) for o in OmegaConf.load(overrides_file)] if overrides_file.exists() else []
        )
    run["dir"] = str(path)
    run["values"] = parse_overrides(run.get("overrides", []))
    return run


def _not_started(sweep_dir: Path, runs: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The jobs of the sweep's grid that have no folder: the sweep ended (Ctrl-C, a kill)
    before they started."""
    from mnistx.config.overrides import sweep_grid, swept_keys_of, swept_values

    try:
        from mnistx.runs.sweep_record import read_sweep_record

        config = read_sweep_record(sweep_dir)
        grid, keys = sweep_grid(config), swept_keys_of(config)
    except Exception as e:  # an unreadable multirun.yaml: report the jobs that are there
        log.warning("Cannot read the sweep's grid from %s (%s).", sweep_dir / SWEEP_CONFIG, e)
        return []
    seen = [run["values"] for run in runs]
    missing = []
    for overrides in grid or []:
        swept = swept_values(overrides, keys)
        if not any(all(v.get(k) == x for k, x in swept.items()) for v in seen):
            missing.append(
                {
                    "status": "not started",
                    "reason": "the sweep ended before this job started",
                    "overrides": overrides,
                    "swept": swept,
                    "values": parse_overrides(overrides),
                    "dir": None,
                }
            )
            seen.append(swept)
    return missing


def load_runs(dirs: Sequence[str | Path]) -> list[dict[str, Any]]:
    """Every job folder (one with metrics.json or .hydra/) in the given sweep folders, and the
    jobs of their grids that never started; a folder that is itself a run counts as one."""
    runs = []
    for d in map(Path, dirs):
        if not d.is_dir():
            raise UserError(
                f"{d} is not a folder. Pass a sweep folder such as outputs/multirun/"
                "2026-01-31/12-00-00 (or a single run's folder)."
            )
        if (d / METRICS).exists():
            runs.append(_load_run(d))
            continue
        found = [
            _load_run(sub)
            for sub in sorted(p for p in d.iterdir() if p.is_dir())
            if (sub / METRICS).exists() or (sub / CONFIG).parent.is_dir()
        ]
        if (d / SWEEP_CONFIG).exists():
            found += _not_started(d, found)
        runs += found
    if not runs:
        raise UserError(
            f"No runs found in {', '.join(map(str, dirs))}: expected job folders holding "
            "metrics.json (as `python -m mnistx.train -m ...` writes them)."
        )
    return runs


def swept_keys(runs: Sequence[dict[str, Any]]) -> list[str]:
    """The keys each run says were swept, plus any key whose value differs between runs."""
    keys: list[str] = []
    for run in runs:
        keys += [k for k in run.get("swept", {}) if k not in keys]
    all_keys = {k for run in runs for k in run["values"]}
    for key in sorted(all_keys):
        if key not in keys and len({run["values"].get(key) for run in runs}) > 1:
            keys.append(key)
    return keys


def group_runs(runs: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    """One row per setting of the non-seed keys, best val/acc_best first."""
    params = [k for k in keys if k not in POOLED]
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for run in runs:
        groups.setdefault(tuple(run["values"].get(k, "") for k in params), []).append(run)
    rows = []
    for setting, same_setting in groups.items():
        members, repeats = one_per_sample(same_setting)
        ok = [m for m in members if m.get("status") == "ok"]
        row: dict[str, Any] = dict(zip(params, setting, strict=True))
        for metric in ("val/acc_best", "test/acc", "best_epoch", "seconds_per_epoch"):
            found = [m[metric] for m in ok if m.get(metric) is not None]
            row[metric], row[f"{metric} std"] = mean_std(found)
        row["params"] = ok[0].get("params") if ok else None
        row["seeds"] = len(members)
        bad = [m for m in members if m.get("status") != "ok"]
        row["status"] = "ok" if not bad else ("ok" if ok else bad[0].get("status", "failed"))
        reasons = sorted({str(m.get("reason", "")) for m in bad})
        row["reason"] = ""
        if bad:
            prefix = f"{len(bad)} of {len(members)} {bad[0].get('status')}: " if ok else ""
            row["reason"] = prefix + " | ".join(reasons)
        if repeats:
            row["reason"] = (row["reason"] + " | " if row["reason"] else "") + (
                f"{repeats} repeated run{'s' * (repeats > 1)} (same config and seed) counted once"
            )
        row["duplicates"] = repeats
        row["tags"] = ",".join(sorted({str(t) for m in members for t in m.get("tags") or []}))
        row["runs"] = members
        rows.append(row)
    rank = {"ok": 0, "interrupted": 1, "failed": 1, "skipped": 2, "not started": 3}
    rows.sort(key=lambda r: (rank.get(r["status"], 1), -(r["val/acc_best"] or 0.0)))
    return rows


def _pct(mean: float | None, std: float | None) -> str:
    if mean is None:
        return "-"
    return f"{100 * mean:.2f}%" if std is None else f"{100 * mean:.2f} ± {100 * std:.2f}%"


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _cells(row: dict[str, Any], params: Sequence[str], width: int = 0) -> list[str]:
    reason = row["reason"]
    if width and len(reason) > width:
        reason = reason[: width - 1] + "…"
    status = row["status"] + (f" ({reason})" if reason else "")
    return [
        *(short_value(str(row[k])) for k in params),  # comparison.csv has them in full
        _pct(row["val/acc_best"], row["val/acc_best std"]),
        _pct(row["test/acc"], row["test/acc std"]),
        _num(row["best_epoch"], ".1f" if row["seeds"] > 1 else ".0f"),
        _num(row["seconds_per_epoch"], ".2f"),
        _num(row["params"], ","),
        str(row["seeds"]),
        status,
    ]


HEADER = ["val/acc_best", "test/acc", "best epoch", "s/epoch", "params", "seeds", "status"]


def write_reports(
    rows: list[dict[str, Any]], params: Sequence[str], out: Path, more: Sequence[str] = ()
) -> None:
    """comparison.md (the table, the verdict, then `more` lines) and comparison.csv."""
    header = [*params, *HEADER]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [c.replace("|", "/") for c in _cells(row, params)]
        lines.append("| " + " | ".join(cells) + " |")
    sentence = verdict(rows, [p for p in params if p != "tags"])
    if sentence:
        lines += ["", sentence]
    write_text(out / "comparison.md", "\n".join([*lines, *more]) + "\n")

    columns = [*params, "val/acc_best", "val/acc_best std", "test/acc", "test/acc std"]
    columns += ["best_epoch", "seconds_per_epoch", "params", "seeds", "val/acc_best_ci95"]
    columns += ["test/acc_ci95", "p_vs_best", "status", "reason"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for row in rows:
        writer.writerow(["" if row.get(c) is None else row[c] for c in columns])
    write_text(out / "comparison.csv", buffer.getvalue())


def print_table(rows: list[dict[str, Any]], params: Sequence[str], title: str) -> None:
    table = Table(title=title, title_justify="left")
    for name in [*params, *HEADER]:
        table.add_column(name, overflow="fold")
    for row in rows:
        style = None if row["status"] == "ok" else "dim"
        table.add_row(*_cells(row, params, width=50), style=style)
    Console().print(table)


def compare(
    dirs: Sequence[str | Path],
    out: str | Path | None = None,
    tag: str | None = None,
    overwrite: bool = False,
) -> list[dict[str, Any]]:
    """`report`'s rows."""
    return report(dirs, out, tag, overwrite)[0]


def report(
    dirs: Sequence[str | Path],
    out: str | Path | None = None,
    tag: str | None = None,
    overwrite: bool = False,
) -> tuple[list[dict[str, Any]], Path]:
    """Load, group, print and write the report (tables and plots): the rows, and where it
    went. `tag`: only the runs labelled with it (`tags=[...]`), reported into
    `<sweep>/tag-<tag>/` unless `out` says where."""
    from mnistx.sweeps.report_plots import plot_curves, plot_final_accuracy

    if tag is not None:
        check_tag(tag)
    runs = load_runs(dirs)
    if tag is not None:
        runs = [r for r in runs if tag in (r.get("tags") or [])]
        if not runs:
            raise UserError(
                f"No run in {', '.join(map(str, dirs))} is tagged {tag!r}. Runs are tagged when "
                "they start: python -m mnistx.train tags=[baseline]"
            )
    keys = swept_keys(runs)
    params = [k for k in keys if k not in POOLED]
    rows = group_runs(runs, keys)
    add_statistics(rows)
    shown = [*params, *(["tags"] if any(r["tags"] for r in rows) else [])]
    out, where = report_folder(dirs, out, tag, overwrite)
    ranked = importance.rank(runs, params)
    more = [*cross_validation.report_lines(rows, params), *importance.report_lines(ranked)]
    write_reports(rows, shown, out, more)
    plots = [plot_curves(runs, keys, out / "val_acc_curves.png")]
    plots += plot_final_accuracy(rows, params, out) + importance.write(runs, params, ranked, out)
    title = f"mnistx comparison: {len(runs)} runs, {len(rows)} settings"
    print_table(rows, shown, title + (f", tagged {tag}" if tag is not None else ""))
    sentence = verdict(rows, params)
    if sentence:
        Console().print(sentence)
    cross_validation.say(rows, params)
    importance.say(ranked)
    Console().print(
        f"Written to {out}: comparison.md, comparison.csv, " + ", ".join(p.name for p in plots if p)
    )
    if where:
        Console().print(where)
    return rows, out
