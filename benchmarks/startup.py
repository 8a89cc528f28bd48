"""Start-up time of ``phylocl`` commands that load no model (issue 25: ``phylocl models`` took 3.6 s for torch).

Each command runs in a fresh process, ``--repeats`` times, interleaved with a bare ``python -c pass`` (the
interpreter's own start-up, to subtract on a loaded machine); one JSON object per command on stdout::

    python benchmarks/startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "phylocl --help": [sys.executable, "-m", "phylocl.cli", "--help"],
    "phylocl models": [sys.executable, "-m", "phylocl.cli", "models"],
    "phylocl simulate --help": [sys.executable, "-m", "phylocl.cli", "simulate", "--help"],
    "phylocl inspect": [sys.executable, "-m", "phylocl.cli", "inspect",
                        str(REPO / "datasets" / "example-mini-mit" / "protein")],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    times: dict[str, list[float]] = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, argv in COMMANDS.items():  # interleaved: load changes hit every command alike
            start = time.perf_counter()
            subprocess.run(argv, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
            times[name].append(time.perf_counter() - start)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    for name, t in times.items():
        print(json.dumps({"benchmark": "startup", "command": name, "median_s": round(statistics.median(t), 3),
                          "min_s": round(min(t), 3), "repeats": args.repeats, "load_average_1min": load,
                          "machine": platform.machine(), "python": platform.python_version()}))


if __name__ == "__main__":
    main()
