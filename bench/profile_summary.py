"""Summarise py-spy's collapsed stacks (bench/http_bench.py --profile DIR): share per thread and
the functions with the largest inclusive share of samples.

    python bench/profile_summary.py DIR [--top 40]
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def summarise(path: Path, top: int) -> str:
    threads: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        frames = stack.split(";")
        threads[frames[0].split(": ", 1)[-1]] += n
        # "function (file:line)" -> "function (file)": one entry per function, not per line.
        for name in {f.rsplit(":", 1)[0] + ")" if ":" in f else f for f in frames[1:]}:
            inclusive[name] += n
    lines = [f"{path.name}: {total} samples with the GIL held"]
    lines += [f"  thread {share / total:6.1%}  {name}" for name, share in threads.most_common()]
    lines += [f"  {share / total:6.1%}  {name}" for name, share in inclusive.most_common(top)]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    for path in sorted(args.directory.glob("worker-*.txt")):
        print(summarise(path, args.top))


if __name__ == "__main__":
    main()
