#!/usr/bin/env python3
"""LoRA fine-tune of the shipped Gemma 3 270M (Q4_K_M GGUF) on generate.py's examples, on CPU.

    train.py --model DIR/gemma-3-270m-q4_k_m.gguf --data DIR --out ADAPTER_DIR
             [--epochs N] [--max-minutes M] [--batch 8] [--lr 3e-4] [--threads N]

The base is read straight from the GGUF (transformers dequantises it), so the adapter is trained
on the very weights llama.cpp runs. LoRA r=8 on q/k/v/o/gate/up/down. The loss is on the answer
tokens only, and logits are computed only there: the 262k-token output layer costs more than the
rest of the model, and the prompt's positions need none. Progress lines give the step, loss,
examples per second and the estimated time left; `--max-minutes` stops training (learning rate
decayed by whichever of steps or time is further along) and keeps what was learnt.

Writes the PEFT adapter to ADAPTER_DIR, the base's config.json to ADAPTER_DIR/base (what the
GGUF converter needs), and ADAPTER_DIR/train.json (steps, examples, minutes,
final loss, the evaluation split's exact answers when `--eval-limit` > 0).
"""

import argparse
import json
import math
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F


def log(msg):
    print(msg, flush=True)


def load_rows(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def encode(tok, row):
    """Token ids of prompt + answer, and how many are prompt. The worker tokenizes the prompt
    with BOS and each scored candidate on its own, so the training sequence is built the same
    way: prompt, then the choice (`name"`), then the arguments."""
    prompt = tok(row["prompt"], add_special_tokens=True)["input_ids"]
    choice = tok(row["choice"], add_special_tokens=False)["input_ids"]
    rest = tok(row["rest"], add_special_tokens=False)["input_ids"]
    return prompt + choice + rest, len(prompt)


def batches(encoded, batch, rng):
    """Batches of similar length (less padding), in random order."""
    order = sorted(range(len(encoded)), key=lambda i: (len(encoded[i][0]), rng.random()))
    groups = [order[i:i + batch] for i in range(0, len(order), batch)]
    rng.shuffle(groups)
    return groups


def answer_loss(model, lm_head, softcap, encoded, idx, pad_id, reduce=True):
    """Cross-entropy over the answer tokens of the batch `idx`, logits for those positions only."""
    seqs = [encoded[i] for i in idx]
    width = max(len(s) for s, _ in seqs)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    rows, cols, targets = [], [], []
    for b, (s, n_prompt) in enumerate(seqs):
        ids[b, :len(s)] = torch.tensor(s)
        mask[b, :len(s)] = 1
        for j in range(n_prompt, len(s)):
            rows.append(b)
            cols.append(j - 1)  # position j-1 predicts token j
            targets.append(s[j])
    hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
    picked = hidden[torch.tensor(rows), torch.tensor(cols)]
    logits = lm_head(picked).float()
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    target = torch.tensor(targets)
    if reduce:
        return F.cross_entropy(logits, target)
    # Per example: every answer token predicted exactly (greedy) = the exact answer.
    hit = logits.argmax(-1) == target
    out = []
    for b in range(len(seqs)):
        out.append(bool(hit[torch.tensor(rows) == b].all()))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="the base GGUF file")
    ap.add_argument("--data", required=True, help="generate.py's output directory")
    ap.add_argument("--out", required=True)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--max-minutes", type=float, default=60.0)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--rank", type=int, default=8)
    ap.add_argument("--threads", type=int, default=0, help="torch threads; 0 = every core")
    ap.add_argument("--eval-limit", type=int, default=200, help="evaluation-split examples checked at the end")
    ap.add_argument("--seed", type=int, default=13)
    args = ap.parse_args()
    t_start = time.time()
    torch.manual_seed(args.seed)
    rng = random.Random(args.seed)
    if args.threads:
        torch.set_num_threads(args.threads)

    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = Path(args.model)
    log(f"loading {gguf.name} (dequantising the GGUF)…")
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    base = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    log(f"loaded in {time.time() - t_start:.0f} s: {type(base).__name__}, "
        f"{sum(p.numel() for p in base.parameters()) / 1e6:.0f} M parameters")
    lora = LoraConfig(r=args.rank, lora_alpha=2 * args.rank, lora_dropout=0.05, bias="none",
                      target_modules=["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                      task_type="CAUSAL_LM")
    # The base's config beside the adapter: convert_lora_to_gguf.py reads the architecture from it.
    # A config built from a GGUF names no architecture, which the converter detects the model by,
    # and says it is GGUF-quantised, which the converter would try to undo (it only needs shapes).
    config = base.config.to_dict()
    config["architectures"] = [type(base).__name__]
    config.pop("quantization_config", None)
    (Path(args.out) / "base").mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "base" / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    model = get_peft_model(base, lora)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    log(f"LoRA r={args.rank}: {trainable / 1e6:.2f} M trainable parameters")
    inner = model.base_model.model  # Gemma3ForCausalLM with LoRA layers
    body, lm_head = inner.model, inner.lm_head
    softcap = getattr(inner.config, "final_logit_softcapping", None)
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else 0

    train = [encode(tok, r) for r in load_rows(Path(args.data) / "train.jsonl")]
    evals = load_rows(Path(args.data) / "eval.jsonl")
    steps_per_epoch = math.ceil(len(train) / args.batch)
    total_steps = max(1, int(steps_per_epoch * args.epochs))
    warmup = max(1, total_steps // 20)
    budget_s = args.max_minutes * 60
    log(f"{len(train)} training examples, {len(evals)} held out; {total_steps} steps of {args.batch}, "
        f"budget {args.max_minutes:.0f} min")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.0)
    model.train()
    t_train = time.time()
    step, seen, ema, stopped = 0, 0, None, "steps"
    plan = []
    while len(plan) < total_steps:
        plan.extend(batches(train, args.batch, rng))
    for idx in plan[:total_steps]:
        elapsed = time.time() - t_train
        if elapsed > budget_s:
            stopped = "time budget"
            break
        progress = max(step / total_steps, elapsed / budget_s)
        lr = args.lr * min(1.0, (step + 1) / warmup) * max(0.05, 1.0 - progress)
        for g in opt.param_groups:
            g["lr"] = lr
        loss = answer_loss(body, lm_head, softcap, train, idx, pad_id)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        opt.step()
        step += 1
        seen += len(idx)
        ema = loss.item() if ema is None else 0.9 * ema + 0.1 * loss.item()
        if step % 5 == 0 or step == 1:
            elapsed = time.time() - t_train
            rate = seen / elapsed
            left = min((total_steps - step) * args.batch / rate, budget_s - elapsed)
            log(f"step {step}/{total_steps} epoch {seen / len(train):.2f} loss {ema:.3f} lr {lr:.1e} "
                f"{rate:.2f} ex/s elapsed {elapsed / 60:.1f} min ETA {max(0, left) / 60:.1f} min")
        if step % 50 == 0:
            model.save_pretrained(args.out)
    train_minutes = (time.time() - t_train) / 60
    log(f"stopped after {step} steps ({stopped}), {train_minutes:.1f} min, loss {ema:.3f}")
    model.save_pretrained(args.out)

    record = {"steps": step, "planned_steps": total_steps, "examples_seen": seen, "train_examples": len(train),
              "epochs_done": round(seen / len(train), 2), "stopped_by": stopped, "train_minutes": round(train_minutes, 1),
              "final_loss": round(ema or 0.0, 4), "lr": args.lr, "batch": args.batch, "rank": args.rank}
    if args.eval_limit > 0 and evals:
        model.eval()
        enc = [encode(tok, r) for r in evals[:args.eval_limit]]
        hits = []
        with torch.no_grad():
            for i in range(0, len(enc), args.batch):
                hits += answer_loss(body, lm_head, softcap, enc, list(range(i, min(i + args.batch, len(enc)))),
                                    pad_id, reduce=False)
        by_kind = {}
        for r, h in zip(evals, hits):
            k = by_kind.setdefault(r["kind"], [0, 0])
            k[0] += h
            k[1] += 1
        record["eval_exact_teacher_forced"] = {k: f"{a}/{n}" for k, (a, n) in by_kind.items()}
        log(f"held-out split, every answer token right (teacher forced): {record['eval_exact_teacher_forced']}")
    (Path(args.out) / "train.json").write_text(json.dumps(record, indent=2) + "\n")
    log(f"adapter in {args.out}; {(time.time() - t_start) / 60:.1f} min in all")


if __name__ == "__main__":
    sys.exit(main())
