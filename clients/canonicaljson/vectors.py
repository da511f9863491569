"""Test vectors of canonical JSON, made by canonicaljson-rs (PyPI), the
serializer Remote Settings signs with:

    vectors.py COUNT SEED > vectors.jsonl

Each line is {"in": JSON text, "out": canonicaljson.dumps of it} or, when
canonicaljson-rs refuses the value, {"in": ..., "error": true}. The values
are random records: unicode (astral characters, controls, escapes, DEL),
nested objects and lists, integers up to 64 bits (and beyond, refused),
floats of every magnitude. kintogo's contentsig tests read them
(KINTOGO_CANONICAL_VECTORS, and the committed testdata).
"""

import json
import random
import sys

import canonicaljson

ALPHABETS = [
    "abcxyzABC019 _-./",
    "\"\\\b\f\n\r\t\x00\x01\x1f\x7f",
    "éàüßçñ€£¥©®\u00a0\u2028\u2029\u200b\ufeff\uffff\ufffd",
    "日本語中文한국어עבריתالعربية",
    "\U0001F600\U0001F4A9\U00010000\U0010FFFF\U0001D11E",
]


def text(rnd, n=None):
    n = rnd.randint(0, 12) if n is None else n
    return "".join(rnd.choice(rnd.choice(ALPHABETS)) for _ in range(n))


def number(rnd):
    kind = rnd.randrange(9)
    if kind == 0:
        return rnd.randint(-10, 10)
    if kind == 1:
        return rnd.randint(-(2**63), 2**64 - 1)
    if kind == 2:
        return rnd.choice([2**63 - 1, -(2**63), 2**64 - 1, 2**63, 2**64, -(2**63) - 1, 0])
    if kind == 3:
        return rnd.uniform(-1000, 1000)
    if kind == 4:
        return rnd.choice([0.0, -0.0, 1.0, 0.1, 1e20, 1e21, 1e-7, 5e-324, 1.7976931348623157e308, 100.0, 1e16])
    if kind == 5:
        return rnd.random() * 10 ** rnd.randint(-320, 308)
    if kind == 6:
        return float(rnd.randint(-(10**17), 10**17))
    if kind == 7:
        # Binary fractions of large numbers: exact values halfway between
        # two shortest decimals (ties, rounded up by Rust's formatting).
        return rnd.randint(-(2**53), 2**53) / 2 ** rnd.randint(1, 12)
    return rnd.randint(-(10**6), 10**6)


def value(rnd, depth):
    kind = rnd.randrange(9 if depth < 4 else 6)
    if kind == 0:
        return None
    if kind == 1:
        return rnd.random() < 0.5
    if kind in (2, 3):
        return text(rnd)
    if kind in (4, 5):
        return number(rnd)
    if kind in (6, 7):
        return {text(rnd, rnd.randint(0, 6)): value(rnd, depth + 1) for _ in range(rnd.randint(0, 5))}
    return [value(rnd, depth + 1) for _ in range(rnd.randint(0, 5))]


def record(rnd):
    r = {"id": text(rnd, 8), "last_modified": rnd.randint(0, 2**53)}
    for _ in range(rnd.randint(0, 6)):
        r[text(rnd, rnd.randint(1, 8))] = value(rnd, 1)
    return r


def main(count, seed):
    rnd = random.Random(seed)
    for _ in range(count):
        v = record(rnd) if rnd.random() < 0.8 else value(rnd, 0)
        line = {"in": json.dumps(v, ensure_ascii=rnd.random() < 0.3)}
        try:
            line["out"] = canonicaljson.dumps(v)
        except Exception:
            line["error"] = True
        print(json.dumps(line))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]))
