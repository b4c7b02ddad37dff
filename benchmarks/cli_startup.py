"""`mlops --help` start-up time, side by side with a bare Python start (the floor).

python benchmarks/cli_startup.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _time(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    beside = Path(sys.executable).with_name("mlops")
    mlops = str(beside) if beside.exists() else shutil.which("mlops")
    if mlops is None:
        sys.exit("the mlops console script is not installed (pip install -e .)")
    bare, cli = [], []
    for _ in range(args.repeat):  # interleaved, so load on the machine hits both
        bare.append(_time([sys.executable, "-c", "pass"]))
        cli.append(_time([mlops, "--help"]))
    b, c = statistics.median(bare), statistics.median(cli)
    print(f"python -c pass: {b * 1000:6.0f} ms   mlops --help: {c * 1000:6.0f} ms   ratio {c / b:.2f}")
    print(f"(median of {args.repeat} interleaved runs; goal: mlops --help under 500 ms)")


if __name__ == "__main__":
    main()
