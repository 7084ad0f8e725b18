#!/usr/bin/env python3
"""Training data for the distilled language model, from the domain files.

Three kinds of examples, each a request and the exact answer the SLM resolver asks the model for
(intents/src/slm.rs, `PromptMode::Short`: the prompt ends in `Call: {"intent": "`, the model
continues with the intent name and a closing quote, which is what step 1 scores, then the
arguments, which step 2 generates under the schema's grammar):

- template expansions: every intent's templates from its domain file, with slot values drawn from
  the schema (enum synonyms, numbers in range as digits or words, durations, free text);
- phrasing patterns that are not the templates (tools/distil/patterns/<domain>.toml): indirect
  requests, casual words, fillers, a request inside a remark, plus Whisper-style noise;
- negatives answered `none`: questions, chit-chat, statements that mention domain words, commands
  for things no loaded domain does (patterns files' `negatives`, and the common list below).

The evaluation split is made by pattern, not by example: a held-out pattern (or negative line) is
never expanded into the training split, so the evaluation measures phrasings the model never saw.

    generate.py --domains intents/domains/home.toml ... --out DIR [--train N] [--seed S]

writes DIR/train.jsonl and DIR/eval.jsonl (`{"text", "intent", "slots", "answer", "pattern"}`) and
DIR/summary.json (counts by kind and split).
"""

import argparse
import json
import random
import re
import sys
import tomllib
from pathlib import Path

# Bump when the generated data changes for the same domain files: the adapter's record names it,
# and the models crate's test compares it with this value (which parses the line below: keep the
# value alone on it).
# 2: every pattern, negative and free-text value that copied or nearly copied a line of
#    intents/testset/ (check_overlap.py), a sentence of the tests or of issue 13 rephrased in other
#    words; light/lock/window/defrost patterns rebuilt with as many "on" as "off" phrasings and
#    fixed `{slot=value/words}` (a v1 adapter answered "off" to a request for light); patterns
#    that tell car heat from house heat; ~30 more negatives that use domain words in questions,
#    statements, complaints and past reports.
# 3: ~50% more patterns per intent (machine.start after a repair/jam/break, machine.stop with a
#    reason, note.log and fault.report always with their span, more routes and numbered addresses,
#    generic media.control); every thermostat.set pattern names the house and every
#    climate.set_temperature pattern the car; negatives for content the schema cannot express
#    (a genre, artist, song, station, podcast or service), remarks using domain words, and
#    questions about past events.
GENERATOR_VERSION = 3

# The exact short prompt of intents/src/slm.rs (`PromptMode::Short`); slm.rs has a test that
# its prompt equals this text, so the two cannot drift apart silently.
SHORT_INSTRUCTION = (
    "Map the request to one function call in JSON. "
    'If it is not a command for this device, answer {"intent": "none"}.\n\n'
)


def short_prompt(text):
    return f'{SHORT_INSTRUCTION}Request: {text.strip()}\nCall: {{"intent": "'


# ---- numbers as people say them ----

ONES = "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen " \
       "sixteen seventeen eighteen nineteen".split()
TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def words(n):
    if n < 20:
        return ONES[n]
    if n < 100:
        return TENS[n // 10] + ("" if n % 10 == 0 else " " + ONES[n % 10])
    if n < 1000:
        rest = n % 100
        return ONES[n // 100] + " hundred" + ("" if rest == 0 else " and " + words(rest))
    return str(n)


def say_number(rng, x):
    """A number as digits or words; halves as "and a half" / ".5"."""
    whole = int(x)
    half = abs(x - whole) > 1e-9
    if rng.random() < 0.45:
        return f"{whole}.5" if half else str(whole)
    w = words(whole)
    if half:
        w += rng.choice([" and a half", " point five"])
    return w


def json_number(x, integer):
    if integer or float(x).is_integer():
        return str(int(x))
    return f"{x:.1f}"


# ---- durations ----

def duration(rng):
    """(spoken, seconds) for a timer."""
    kind = rng.random()
    if kind < 0.45:
        m = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 12, 15, 20, 25, 30, 40, 45, 50, 90])
        unit = rng.choice(["minutes", "minutes", "mins", "minute"]) if m != 1 else "minute"
        num = say_number(rng, m)
        return f"{'a' if m == 1 and rng.random() < 0.5 else num} {unit}", m * 60
    if kind < 0.6:
        s = rng.choice([10, 15, 20, 30, 40, 45, 60, 90, 120])
        return f"{say_number(rng, s)} seconds", s
    if kind < 0.72:
        h = rng.choice([1, 2, 3])
        if h == 1:
            return rng.choice(["an hour", "one hour", "1 hour"]), 3600
        return f"{say_number(rng, h)} hours", h * 3600
    if kind < 0.84:
        return rng.choice([("half an hour", 1800), ("an hour and a half", 5400), ("a minute and a half", 90),
                           ("two and a half minutes", 150), ("a quarter of an hour", 900),
                           ("one and a half hours", 5400), ("three and a half minutes", 210)])
    h, m = rng.choice([1, 2]), rng.choice([5, 10, 15, 20, 30, 45])
    hs = "an hour" if h == 1 else f"{say_number(rng, h)} hours"
    return f"{hs} and {say_number(rng, m)} minutes", h * 3600 + m * 60


# ---- free text slots: spans the speaker says, copied verbatim into the answer ----

TEXT_POOLS = {
    "destination": [
        "the airport", "grandma's house", "the train station", "87 birch lane", "the office",
        "central park", "the nearest pharmacy", "oak avenue", "the stadium", "the beach",
        "my sister's place", "the city library", "riverside mall", "the dentist", "fifth avenue",
        "the harbour", "union square", "the ferry terminal", "the hotel", "305 willow drive",
        "the university", "home", "work", "the zoo", "the ski resort", "pine street",
        # v3: the v2 adapter dropped house numbers, so more numbered addresses and named places.
        "12 high street", "450 maple avenue", "9 church road", "1600 lakeview boulevard", "33 harbour view",
        "14 elm close", "77 king street", "72 station road", "5 queens road", "118 lake shore drive",
        "2 river walk", "61 orchard way", "240 hillside crescent", "unit 4 westgate business park",
        "st mary's hospital", "the science museum", "the main post office", "terminal 2", "the garden centre",
        "my parents' house", "the bus depot", "the community centre", "the football ground",
        "the old town square", "the marina car park", "the hardware store on mill lane",
    ],
    "description": [
        "the hydraulic oil is leaking", "the belt keeps slipping", "there is a strange grinding noise",
        "the safety light is flashing red", "the sensor is not reading anything", "it overheats after an hour",
        "the guard door will not latch", "parts are coming out misaligned", "the motor trips the breaker",
        "a bearing is squealing", "the feeder jammed twice this morning", "the display shows error forty two",
        "coolant pressure is dropping", "the gripper drops parts", "the emergency button is stuck",
        "it vibrates a lot at full speed", "the counter is off by a few pieces", "there is smoke from the drive",
        "the pressure gauge reads zero", "oil is dripping under the base", "the door sensor keeps tripping",
        "it stops by itself every few minutes",
    ],
    "note": [
        "changed the filter", "greased the chain", "new operator started today", "calibrated the sensors",
        "swapped the worn roller", "cleaned the nozzle", "ran at reduced speed all shift",
        "topped up the coolant", "tightened the guard bolts", "updated the program to version three",
        "inspection passed", "replaced the fuse", "ordered a spare motor", "the night shift reported no issues",
        "tested the light curtain", "adjusted the belt tension",
        "the air filter was blocked", "replaced two worn bearings", "oiled the guide rails",
        "reset the counter at noon", "the new die is installed", "ran a test batch of fifty parts",
    ],
    "topic": [
        "reset the robot cell", "replace a conveyor belt", "clear a jam in the feeder", "lock out the press",
        "calibrate the scale", "change the cutting tool", "start the line after a stop",
        "clean the packaging machine", "handle a chemical spill", "restart after an emergency stop",
        "change the glue cartridge", "the fire evacuation", "test the safety interlocks",
    ],
}


# ---- the template language of the domain files ----

def tokenize_template(s):
    return re.findall(r"<[^>]+>|\{[^}]+\}|[\[\]()|;]|[^\s\[\]()|;<{]+", s)


def parse_alternatives(tokens, i, close):
    """Parses `a b | c d` up to `close`; returns (node, next index). Node: ('alt', [seq...])."""
    alts, seq = [], []
    while i < len(tokens):
        t = tokens[i]
        if t == close:
            break
        if t == "|":
            alts.append(seq)
            seq = []
            i += 1
        elif t in "[(":
            node, i = parse_alternatives(tokens, i + 1, "]" if t == "[" else ")")
            seq.append(("opt", node) if t == "[" else node)
            i += 1
        else:
            seq.append(t)
            i += 1
    alts.append(seq)
    # `;` inside a group: its parts in any order (the barista template).
    out = []
    for a in alts:
        if ";" in a:
            parts, cur = [], []
            for t in a:
                if t == ";":
                    parts.append(cur)
                    cur = []
                else:
                    cur.append(t)
            parts.append(cur)
            out.append([("perm", parts)])
        else:
            out.append(a)
    return ("alt", out), i


class Expander:
    def __init__(self, rules, rng):
        self.rules = {k: parse_alternatives(tokenize_template(v), 0, None)[0] for k, v in rules.items()}
        self.rng = rng

    def expand(self, node, out):
        rng = self.rng
        if isinstance(node, str):
            if node.startswith("<"):
                self.expand(self.rules[node[1:-1]], out)
            else:
                out.append(node)
        elif node[0] == "alt":
            for t in rng.choice(node[1]):
                self.expand(t, out)
        elif node[0] == "opt":
            if rng.random() < 0.5:
                self.expand(node[1], out)
        elif node[0] == "perm":
            parts = list(node[1])
            rng.shuffle(parts)
            for p in parts:
                for t in p:
                    self.expand(t, out)


# ---- schema ----

class Slot:
    def __init__(self, name, spec, types):
        base = dict(types.get(spec.get("type"), {})) if spec.get("type") in types else {}
        merged = {**base, **spec}
        if spec.get("type") in types:
            merged["type"] = base["type"]
        self.name = name
        self.kind = merged["type"]
        self.values = merged.get("values", {})
        self.min = merged.get("min")
        self.max = merged.get("max")
        self.default = merged.get("default")
        self.required = merged.get("required", self.default is None)

    def spoken_enum(self, rng, value):
        syns = self.values[value] or [value]
        return rng.choice(syns)

    def draw(self, rng, fixed=None):
        """(spoken words, answer value as JSON text)."""
        if self.kind == "enum":
            # `{slot=value/words}`: this value, said with these words.
            value, _, said = (fixed or rng.choice(list(self.values))).partition("/")
            if value not in self.values:
                raise ValueError(f"slot {self.name}: {value!r} is not one of {sorted(self.values)}")
            return said or self.spoken_enum(rng, value), json.dumps(value)
        if self.kind in ("integer", "number"):
            lo, hi = self.min if self.min is not None else 0, self.max if self.max is not None else 100
            if fixed is not None:
                x = float(fixed)
            elif self.kind == "number" and rng.random() < 0.2:
                x = rng.randrange(int(lo), int(hi)) + 0.5
            elif hi - lo > 20 and rng.random() < 0.6:
                x = rng.choice([v for v in range(int(lo), int(hi) + 1) if v % 5 == 0])
            else:
                x = rng.randint(int(lo), int(hi))
            return say_number(rng, x), json_number(x, self.kind == "integer")
        if self.kind == "duration":
            spoken, seconds = duration(rng)
            return spoken, str(seconds)
        if self.kind == "text":
            t = fixed or rng.choice(TEXT_POOLS[self.name])
            return t, json.dumps(t)
        raise ValueError(f"slot {self.name}: unknown type {self.kind}")


class Intent:
    def __init__(self, spec, types, domain):
        self.name = spec["name"]
        self.domain = domain
        self.templates = spec["templates"]
        self.slots = [Slot(n, s, types) for n, s in spec.get("slots", {}).items()]

    def slot(self, name):
        return next(s for s in self.slots if s.name == name)

    def answer(self, values):
        """The continuation after `{"intent": "`: exactly what step 1 scores and step 2 generates."""
        args = "".join(f', "{s.name}": {values[s.name]}' for s in self.slots if s.name in values)
        return f'{self.name}"', f"{args}}}"


def load_domain(path):
    data = tomllib.loads(Path(path).read_text())
    types = data.get("types", {})
    intents = [Intent(i, types, data["domain"]) for i in data.get("intent", [])]
    return data["domain"], data.get("rules", {}), intents


# ---- filling a template or pattern ----

SLOT_RE = re.compile(r"\{([A-Za-z_]+)(?:=([^}]*))?\}")


def fill(intent, words_list, rng):
    """Replaces `{slot}` / `{slot=value}` / `{slot=value/words}` tokens in an expansion; returns (text, values) or None
    when a required slot without a default is never said (the answer would be invented)."""
    values, out = {}, []
    for w in words_list:
        m = SLOT_RE.fullmatch(w)
        if not m:
            out.append(w)
            continue
        slot = intent.slot(m.group(1))
        if slot.name in values:
            return None  # the same slot twice in one expansion: ambiguous, skip
        spoken, value = slot.draw(rng, m.group(2))
        out.append(spoken)
        values[slot.name] = value
    for s in intent.slots:
        if s.name not in values and s.required:
            return None
    text = " ".join(out)
    text = re.sub(r"\s+([,.?!'])", r"\1", text)
    return text, values


# ---- speech-recognition style variation ----

FILLERS = ["um", "uh", "so", "okay", "okay so", "hey", "alright", "well", "erm", "right", "hmm"]
HOMOPHONES = {"to": "too", "for": "four", "two": "to", "four": "for", "right": "write", "there": "their",
              "the": "a", "lights": "light", "off": "of", "on": "un", "in": "and", "eight": "ate"}


def whisper_style(text, rng):
    """Transcript styles: Whisper capitalises and punctuates, sometimes mishears a short word,
    repeats one, or keeps a filler."""
    words_ = text.split()
    r = rng.random()
    if r < 0.25 and len(words_) > 3:
        i = rng.randrange(len(words_))
        w = words_[i].lower().strip(",.?!")
        if w in HOMOPHONES:
            words_[i] = HOMOPHONES[w]
    elif r < 0.35 and len(words_) > 2:
        i = rng.randrange(len(words_))
        words_.insert(i, words_[i])
    if rng.random() < 0.2:
        words_.insert(0, rng.choice(FILLERS) + ("," if rng.random() < 0.5 else ""))
    text = " ".join(words_)
    if rng.random() < 0.5:
        text = text[0].upper() + text[1:]
        if text[-1] not in ".?!":
            text += rng.choice([".", ".", "!", "?"] if text.lower().startswith(("can", "could", "would", "will"))
                               else [".", ".", "!"])
    else:
        text = text.lower()
    return text


# ---- negatives shared by every domain set ----

COMMON_NEGATIVES = [
    "what's the capital of australia", "tell me something funny", "how many stars are in the milky way",
    "who wrote the odyssey", "good morning", "thanks a lot", "forget what i just said", "that's all for now",
    "how do you spell necessary", "what's seven times eight", "this tune is stuck in my head", "are you listening",
    "what day is it today", "remind me what you can do", "is it going to snow this weekend",
    "put on a podcast about history", "ring my brother on his mobile", "message sam that dinner is at seven",
    "get me a curry delivered", "reserve a hotel room in paris", "do i have any meetings on friday",
    "remember that we need bread and eggs", "translate good night into french", "what are today's headlines",
    "how far is the moon", "my back hurts today", "i'm so tired", "that was a great movie",
    "what's the score of the match", "do you dream", "make up a tale about dragons", "open my email",
    "take a photo", "what's the price of an electric bike", "the neighbours are loud again", "bless you",
    "is this thing working", "nothing", "sorry, wrong button", "wait a second", "hold on, i'm thinking",
    "what's the exchange rate for the euro", "how many calories in a banana", "who are you",
    "what was that noise", "i need a vacation", "it's my birthday tomorrow", "goodbye",
    # v3: remarks that are not requests, and questions about what already happened.
    "smart homes are a bit creepy", "i prefer doing things by hand", "you're quicker than my old assistant",
    "what did i ask you an hour ago", "did anything happen while i was out", "who was the last person to use this",
]


def load_patterns(pattern_dir, domain):
    path = Path(pattern_dir) / f"{domain}.toml"
    if not path.exists():
        return {}, []
    data = tomllib.loads(path.read_text())
    return data.get("patterns", {}), data.get("negatives", {}).get("lines", [])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--domains", nargs="+", required=True, help="domain TOML files")
    ap.add_argument("--patterns", default=str(Path(__file__).parent / "patterns"))
    ap.add_argument("--out", required=True)
    ap.add_argument("--train", type=int, default=2400, help="training examples (about)")
    ap.add_argument("--eval-share", type=float, default=0.2, help="share of patterns held out")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    rng = random.Random(args.seed)

    # Units of phrasing, each with a generator of examples; units are split, not examples.
    units = {"template": [], "pattern": [], "negative": []}
    for path in args.domains:
        domain, rules, intents = load_domain(path)
        exp = Expander(rules, rng)
        patterns, negatives = load_patterns(args.patterns, domain)
        for intent in intents:
            for k, t in enumerate(intent.templates):
                units["template"].append((f"{domain}:{intent.name}:t{k}", intent, exp, t))
            for k, p in enumerate(patterns.get(intent.name, [])):
                units["pattern"].append((f"{domain}:{intent.name}:p{k}", intent, exp, p))
            unknown = set(patterns) - {i.name for i in intents}
            if unknown:
                sys.exit(f"{args.patterns}/{domain}.toml: patterns for unknown intents {sorted(unknown)}")
        for k, n in enumerate(negatives):
            units["negative"].append((f"{domain}:none:n{k}", None, None, n))
    for k, n in enumerate(COMMON_NEGATIVES):
        units["negative"].append((f"common:none:n{k}", None, None, n))

    # Held out: a share of the patterns of each intent and of the negatives; templates always
    # train (the grammar matcher serves them anyway).
    split = {}
    for kind in ("pattern", "negative"):
        by_group = {}
        for u in units[kind]:
            by_group.setdefault(u[0].rsplit(":", 1)[0], []).append(u)
        for group in by_group.values():
            rng.shuffle(group)
            n_eval = max(1, round(len(group) * args.eval_share)) if len(group) >= 3 else 0
            for j, u in enumerate(group):
                split[u[0]] = "eval" if j < n_eval else "train"
    for u in units["template"]:
        split[u[0]] = "train"

    # Mix: patterns carry the most weight, then templates, then negatives.
    share = {"pattern": 0.5, "template": 0.3, "negative": 0.2}
    out = {"train": [], "eval": []}
    seen = set()
    for kind, frac in share.items():
        train_units = [u for u in units[kind] if split[u[0]] == "train"]
        eval_units = [u for u in units[kind] if split[u[0]] == "eval"]
        for target, pool, n in (("train", train_units, int(args.train * frac)),
                                ("eval", eval_units, int(args.train * frac * args.eval_share))):
            if not pool:
                continue
            made, tries = 0, 0
            while made < n and tries < n * 20:
                tries += 1
                uid, intent, exp, src = pool[tries % len(pool)] if tries <= len(pool) else rng.choice(pool)
                if intent is None:
                    text, name, rest, values = src, "none", "}", {}
                else:
                    words_list = []
                    exp.expand(parse_alternatives(tokenize_template(src), 0, None)[0], words_list)
                    filled = fill(intent, words_list, rng)
                    if filled is None:
                        continue
                    text, values = filled
                    name, rest = intent.answer(values)
                    name = name[:-1]
                if kind != "template" or rng.random() < 0.5:
                    noisy = whisper_style(text, rng)
                    # Free text is copied from the transcript: noise inside it would teach
                    # answers that are not a span of what was heard.
                    spans = [json.loads(values[s.name]) for s in intent.slots
                             if s.kind == "text" and s.name in values] if intent else []
                    text = noisy if all(v in noisy for v in spans) else text
                if text.lower() in seen:
                    continue
                seen.add(text.lower())
                choice = f'{name}"'
                slots = {k: json.loads(v) for k, v in values.items()}
                # The expected action, as the resolver completes it: a slot the schema gives a
                # default is filled with it (the answer leaves it out, as the user did).
                for s in intent.slots if intent else []:
                    if s.default is not None and s.name not in slots:
                        slots[s.name] = s.default
                out[target].append({
                    "text": text, "intent": None if name == "none" else name,
                    "slots": slots,
                    "prompt": short_prompt(text), "choice": choice, "rest": rest,
                    "pattern": uid, "kind": kind,
                })
                made += 1
    outdir = Path(args.out)
    outdir.mkdir(parents=True, exist_ok=True)
    summary = {"generator_version": GENERATOR_VERSION, "seed": args.seed, "domains": args.domains}
    for target, rows in out.items():
        rng.shuffle(rows)
        with open(outdir / f"{target}.jsonl", "w") as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        summary[target] = {k: sum(1 for r in rows if r["kind"] == k) for k in share}
        summary[target]["patterns"] = len({r["pattern"] for r in rows})
    train_p = {r["pattern"] for r in out["train"]}
    assert not train_p & {r["pattern"] for r in out["eval"]}, "a pattern is in both splits"
    (outdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
