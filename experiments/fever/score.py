#!/usr/bin/python3
"""Accuracy of each classify context of a prompt search against the dataset's gold labels.

    score.py verdicts.jsonl claims.jsonl
"""
import collections
import json
import sys


def main(verdicts_path, claims_path):
    gold = {}
    with open(claims_path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            gold[json.dumps(row["id"])] = row["gold"]
    right = collections.Counter()
    seen = collections.Counter()
    with open(verdicts_path, encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            result = row.get("result")
            if not isinstance(result, dict) or "label" not in result:
                continue
            seen[row["context"]] += 1
            right[row["context"]] += result["label"] == gold[json.dumps(row["id"])]
    print(f"{'context':<12} {'claims':>6} {'accuracy':>8}")
    for context in sorted(seen, key=lambda c: -right[c] / seen[c]):
        print(f"{context:<12} {seen[context]:>6} {right[context] / seen[context]:>8.3f}")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
