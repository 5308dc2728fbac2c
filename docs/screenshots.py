"""Screenshots of the weekly index and two reports, as a reader sees them, for the README.

Runs the bundled demo's weekly job for two consecutive weeks into a scratch folder (so the
index has two points per figure and each report a change since last week), then opens the
second week's index and two of its reports in headless Chromium at 1,400 × 900 and saves
what the window shows as PNGs in ``docs/img/``.

    .venv/bin/python docs/screenshots.py [--out docs/img] [--keep reports-for-screenshots]

It needs Debian's chromium (``make`` installs it as root) and takes about ten minutes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests import _browser  # noqa: E402  (the test suite's Chromium driver)
from workbench import demo, weekly  # noqa: E402

SHOTS = {
    "index.png": "index.html",
    "report-model-delta.png": "model_delta.html",
    "report-latency-budgets.png": "latency_budgets.html",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    parser.add_argument("--keep", type=Path, help="keep the two weeks of reports here")
    args = parser.parse_args()
    if _browser.chromium() is None:
        sys.exit("chromium is not installed: apt-get install chromium")
    scratch = Path(tempfile.mkdtemp(prefix="wb-shots-"))
    reports = args.keep or scratch / "reports"
    try:
        today = dt.datetime.now(dt.UTC).date()
        weeks = [weekly.iso_week(today - dt.timedelta(days=7)), weekly.iso_week(today)]
        config = weekly.load_config(None, fallback=demo.WEEKLY)
        for week in weeks:
            result = weekly.run_weekly(config, reports, week=week, db=reports / "workbench.db")
            print(result.table(), file=sys.stderr)
        args.out.mkdir(parents=True, exist_ok=True)
        for png, page in SHOTS.items():
            visit = _browser.visit(reports / weeks[-1] / page, {}, screenshot=args.out / png)
            if visit.external:
                sys.exit(f"{page} asked the network for {visit.external[:3]}")
            print(f"{args.out / png}: {(args.out / png).stat().st_size:,} bytes")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


if __name__ == "__main__":
    main()
