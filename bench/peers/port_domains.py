#!/usr/bin/env python3
"""Port Sotto's intent domains (intents/domains/*.toml) to hassil YAML, for the Python peer stack.

    python port_domains.py --out DIR [DOMAIN...]      (default domains: vehicle home factory)

Sotto's template syntax was modelled on hassil's, so templates, `[rules]` and enum synonyms carry
over as they are. What hassil cannot express is approximated, and listed in `PORT_NOTES` (also written
into each YAML file's header) so the benchmark report can say where the port differs:
slot defaults and Sotto's slot-value types are carried in `metadata` and applied by the runner.
Needs PyYAML (the peer venv has it, as a hassil dependency).
"""
import argparse
import os
import re
import sys
import tomllib

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOMAINS_DIR = os.path.join(ROOT, "intents", "domains")
DEFAULT_DOMAINS = ["vehicle", "home", "factory"]

PORT_NOTES = [
    "no fuzzy, phonetic or partial matching: hassil needs every word of a template and nothing else, while "
    "Sotto's matcher accepts extra or missing words and near-misses at a lower confidence (e.g. 'set the "
    "driver side to 21 degrees', 'set the living room thermostat to 19 degrees' match Sotto's templates only)",
    "durations: one unit per phrase (`{n} minutes`, `an hour`); sums such as "
    "'an hour and fifteen minutes' or 'one and a half hours' are not expressible as one slot value",
    "percent slots: the bare fraction words ('half', 'a quarter') are not accepted as 50 / 25",
    "numbers with halves use hassil's `fractions: halves`: '22.5' and 'twenty two point five' match, "
    "'twenty two and a half' does not",
    "text slots are hassil wildcards without Sotto's max_words limit",
    "slot defaults (e.g. zone = all) are applied by the runner from `metadata.defaults` after matching",
    "confirmation (confirm_when), retained slots and MQTT action topics are outside hassil's scope",
]

SLOT_REF = re.compile(r"\{([a-z_][a-z0-9_]*)\}")
RULE_REF = re.compile(r"<([a-z_][a-z0-9_]*)>")


def list_name(intent, slot):
    return re.sub(r"[^a-z0-9]+", "_", f"{intent}__{slot}".lower())


def enum_list(values):
    return {"values": [{"in": syn, "out": canonical} for canonical, syns in values.items() for syn in syns]}


def number_list(slot, fractions):
    lo, hi = int(slot.get("min", 0)), int(slot.get("max", 100))
    rng = {"from": lo, "to": hi}
    if fractions:
        rng["fractions"] = "halves"
    return {"range": rng}


DURATION_UNITS = [("seconds", "(seconds | second | sec | secs)", 1), ("minutes", "(minutes | minute | min | mins)", 60),
                  ("hours", "(hours | hour | hr | hrs)", 3600)]


def duration_lists(name, slot):
    """hassil has no duration type: one range list per unit, scaled to seconds by `multiplier`."""
    lo, hi = int(slot.get("min", 1)), int(slot.get("max", 86400))
    lists, alts = {}, []
    for plural, words, secs in DURATION_UNITS:
        ln = f"{name}_{plural}"
        # Seconds capped at an hour: hassil spells out every value of a range on first use (10 s for
        # 86400 values); nobody says "five thousand seconds".
        top = min(hi, 3600) if secs == 1 else hi
        lists[ln] = {"range": {"from": max(1, lo // secs), "to": max(1, top // secs), "multiplier": secs}}
        alts.append(f"{{{ln}:{{slot}}}} {words}")
    # "an hour", "a minute", "half an hour": fixed phrases with their value in seconds.
    fixed = f"{name}_phrase"
    lists[fixed] = {"values": [{"in": "(a | an | one) hour", "out": 3600}, {"in": "(a | one) minute", "out": 60},
                               {"in": "half (an | a) hour", "out": 1800}, {"in": "(a | one) second", "out": 1},
                               {"in": "(a | one) quarter (of an hour | hour)", "out": 900}]}
    alts.append(f"{{{fixed}:{{slot}}}}")
    return lists, "(" + " | ".join(alts) + ")"


def port_domain(path):
    with open(path, "rb") as f:
        dom = tomllib.load(f)
    types = dom.get("types", {})
    # Rule names are per domain in Sotto (each domain has its own <please>); hassil's are global.
    prefix = dom["domain"] + "_"

    def scoped(text):
        return RULE_REF.sub(lambda m: f"<{prefix}{m.group(1)}>", text)
    lists, intents = {}, {}
    for intent in dom.get("intent", []):
        iname = intent["name"]
        defaults, replace = {}, {}
        for sname, own in intent.get("slots", {}).items():
            slot = dict(types.get(own.get("type"), {}))
            slot.update({k: v for k, v in own.items() if k != "type"})
            kind = types[own["type"]]["type"] if own.get("type") in types else own.get("type")
            if "default" in slot:
                defaults[sname] = slot["default"]
            ln = list_name(iname, sname)
            if kind == "enum":
                lists[ln] = enum_list(slot["values"])
            elif kind in ("integer", "number"):
                lists[ln] = number_list(slot, fractions=(kind == "number"))
            elif kind == "duration":
                extra, alt = duration_lists(ln, slot)
                lists.update(extra)
                replace[sname] = alt.replace("{slot}", sname)
                continue
            elif kind == "text":
                lists[ln] = {"wildcard": True}
            else:
                sys.exit(f"{path}: intent {iname}: slot {sname}: type {kind!r} has no hassil port")
            replace[sname] = f"{{{ln}:{sname}}}"
        sentences = [scoped(SLOT_REF.sub(lambda m: replace[m.group(1)], t)) for t in intent["templates"]]
        intents[iname] = {"data": [{"sentences": sentences,
                                    "metadata": {"domain": dom["domain"], "defaults": defaults}}]}
    return {"language": "en", "intents": intents, "lists": lists,
            "expansion_rules": {prefix + k: scoped(v) for k, v in dom.get("rules", {}).items()}}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="directory for <domain>.yaml")
    ap.add_argument("domains", nargs="*", default=DEFAULT_DOMAINS)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    notes = "# What hassil cannot express (approximated):\n" + "".join(f"#  - {n}\n" for n in PORT_NOTES)
    for d in args.domains:
        data = port_domain(os.path.join(DOMAINS_DIR, f"{d}.toml"))
        with open(os.path.join(args.out, f"{d}.yaml"), "w") as f:
            f.write(f"# Generated by bench/peers/port_domains.py from intents/domains/{d}.toml; do not edit.\n{notes}")
            yaml.safe_dump(data, f, sort_keys=False, allow_unicode=True, width=120)
    print(f"ported {', '.join(args.domains)} to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
