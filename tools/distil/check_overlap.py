#!/usr/bin/env python3
"""Lists the distillation phrasings that are near copies of a line of the evaluation sets.

The evaluation sets (intents/testset/) must never inform training: a pattern or negative that
repeats one of their lines makes the held-out figures of docs/distil.md measure memory, not
generalisation. This compares every pattern (tools/distil/patterns/*.toml, `{slot}` as any words,
`{slot=value/words}` as its words), every negative and every free-text value of generate.py with
every line of the sets, after lower-casing and dropping punctuation, and prints:

- `SAME`: the phrasing says exactly that line (a pattern's slots standing for two or more of its
  words each);
- `NEAR`: the same words in the same order for the most part (difflib ratio >= 0.7 on words, slot
  placeholders left out) or a run of five or more words in common.

Exits 1 when anything is `SAME`; a `NEAR` row is a place to look (a common turn of phrase such as
"could you put the … on" is not a copy). Run it after editing a patterns file:

    tools/distil/check_overlap.py
"""

import difflib
import json
import re
import sys
import tomllib
from pathlib import Path

here = Path(__file__).resolve().parent
repo = here.parent.parent
sys.path.insert(0, str(here))
import generate  # noqa: E402  (its COMMON_NEGATIVES and TEXT_POOLS)


def norm(s):
    return " ".join(re.sub(r"[^a-z0-9{}=/_' ]", " ", s.lower()).split())


def said(pattern):
    """The pattern's words, a slot without fixed words as SLOT."""
    def one(m):
        body = m.group(1)
        if "=" not in body:
            return " SLOT "
        value = body.split("=", 1)[1]
        return " " + (value.split("/", 1)[1] if "/" in value else value).replace("_", " ") + " "
    return norm(re.sub(r"\{([^}]*)\}", one, pattern)).replace("slot", "SLOT")


def test_lines():
    for path in sorted((repo / "intents/testset").iterdir()):
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip() or line.startswith("#"):
                continue
            text = json.loads(line)["text"] if path.suffix == ".jsonl" else line
            yield f"{path.name}:{n}", norm(text)


def phrasings():
    for path in sorted((here / "patterns").glob("*.toml")):
        data = tomllib.loads(path.read_text())
        for intent, lines in data.get("patterns", {}).items():
            for p in lines:
                yield f"{path.name} {intent}", p
        for p in data.get("negatives", {}).get("lines", []):
            yield f"{path.name} negative", p
    for p in generate.COMMON_NEGATIVES:
        yield "generate.py COMMON_NEGATIVES", p
    for slot, values in generate.TEXT_POOLS.items():
        for p in values:
            yield f"generate.py TEXT_POOLS[{slot}]", p


def main():
    tests = list(test_lines())
    found = {"SAME": 0, "NEAR": 0}
    for where, p in phrasings():
        words = said(p).split()
        literal = [w for w in words if w != "SLOT"]
        rx = re.compile("^" + r"\s".join(r"\S+(?:\s\S+)+" if w == "SLOT" else re.escape(w) for w in words) + "$")
        for tid, line in tests:
            lw = line.split()
            blocks = difflib.SequenceMatcher(None, words, lw, autojunk=False).get_matching_blocks()
            run = max(b.size for b in blocks)
            ratio = difflib.SequenceMatcher(None, literal, lw, autojunk=False).ratio()
            # A pattern that is all slots matches anything: only a literal part can be a copy.
            same = len(literal) >= 3 and rx.match(line)
            if same or ratio >= 0.7 or run >= 5:
                kind = "SAME" if same else "NEAR"
                found[kind] += 1
                print(f"{kind} {where}: {p!r}\n     {tid}: {line!r} (ratio {ratio:.2f}, run of {run} words)")
    print(f"{found['SAME']} copies and {found['NEAR']} near copies of an evaluation line", file=sys.stderr)
    sys.exit(1 if found["SAME"] else 0)


if __name__ == "__main__":
    main()
