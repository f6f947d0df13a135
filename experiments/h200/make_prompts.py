#!/usr/bin/env python3
"""Writes the churn run's dataset: N claims of exactly 256 bytes each (the built-in model reads
bytes, so 256 tokens), the same on every machine.

    make_prompts.py N OUT.jsonl
"""
import json
import sys

WORDS = ("the tower is in paris rome water boils at degrees river flows north south never always "
         "a cat claims that every planet moon orbits sun light travels faster than sound").split()


def prompt(i: int) -> str:
    x = 0x9E3779B97F4A7C15 ^ (i + 1)
    words = [f"Claim {i}:"]
    while sum(len(w) + 1 for w in words) < 256:
        x = (x * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        words.append(WORDS[(x >> 33) % len(WORDS)])
    return " ".join(words)[:247] + "\nVerdict:"


def main() -> None:
    n, out = int(sys.argv[1]), sys.argv[2]
    with open(out, "w") as f:
        for i in range(n):
            p = prompt(i)
            assert len(p.encode()) == 256, p
            f.write(json.dumps({"id": i, "prompt": p}) + "\n")


if __name__ == "__main__":
    main()
