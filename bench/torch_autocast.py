#!/usr/bin/env python3
"""torch_autocast.py: the reference for cltrain's 16-bit training: the first two training
steps of each built-in model under torch.autocast, in fp32, fp16 (with GradScaler) and bf16.

The models, their initial weights, the batch and the optimizer are bench/torch_train.py's
(imported from it, so they cannot drift apart): the models of tools/models.c, the weights
cltrain-bench wrote with --train-init, the batch of bench_train_inputs (bench/train_bench.c),
AdamW with clt_trainer_options_init's defaults. Each mode starts from the same weights and the
same torch seed:

    fp32  plain steps (the numbers torch_train.py checks against cltrain-bench)
    bf16  forward and loss under torch.autocast(device, dtype=torch.bfloat16); backward and
          AdamW in fp32 (autocast keeps the parameters and their gradients in fp32)
    fp16  the same with torch.float16, and torch.amp.GradScaler (init scale 65536, growth 2
          after 2000 clean steps, backoff 0.5): scaler.scale(loss).backward(),
          scaler.step(opt), scaler.update(); the scale after each step and the steps skipped
          are written too

    build/cltrain-bench --device pocl --sections train --precision fp32,fp16,bf16 \
        --train-init /tmp/init --json cl.json
    python3 bench/torch_autocast.py --init /tmp/init --json autocast.json --cltrain cl.json

The JSON holds, per model and mode, loss_init_eval (the batch's loss in evaluation mode at
the loaded weights, under autocast for the 16-bit modes), loss_step1 and loss_step2 (the
training losses of the first two steps: the second depends on the first update), and for the
16-bit modes their relative difference from fp32. With --cltrain (a cltrain-bench JSON), each
mode that cltrain-bench ran (figures MODEL.loss_* in fp32, MODEL@fp16.loss_* and
MODEL@bf16.loss_* with --precision) also gets cltrain's three losses as cltrain_loss_init_eval,
cltrain_loss_step1, cltrain_loss_step2 and their relative difference from autocast's,
loss_*_rel_cltrain; test/check_torch_autocast.py checks them (docs/precision.md). cnn's
dropout draws PyTorch's masks, not cltrain's: its training losses compare modes with each
other, not with cltrain.

Exit status: 0 success, 1 a loss is not finite, 2 bad usage or unreadable input.
"""
import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_train as tt  # noqa: E402  (the models, the weights loader and the batch)

MODES = ("fp32", "fp16", "bf16")
LOSSES = ("loss_init_eval", "loss_step1", "loss_step2")


def cltrain_losses(path):
    """{(model, precision): {loss figure: median}} of a cltrain-bench JSON file: train figures
    named MODEL.loss_* (fp32) or MODEL@PRECISION.loss_*."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        tt.fail(f"cannot read {path}: {e}")
    out = {}
    for d in doc.get("devices", []):
        for fig in d.get("train", []):
            label, _, what = fig["name"].partition(".")
            model, _, precision = label.partition("@")
            if what in LOSSES:
                out.setdefault((model, precision or "fp32"), {})[what] = fig["median"]
    return out


def inputs(torch, kind, batch, dev):
    xs, ys = tt.bench_inputs(kind, batch)
    if tt.is_text(kind):
        context = tt.DEFAULTS[kind]["context"]
        x = torch.tensor(xs, dtype=torch.long).view(batch, context)
        y = torch.tensor(ys, dtype=torch.long).view(batch, context)
    else:
        x = torch.tensor(xs, dtype=torch.float32).view(batch, *tt.DATA[kind]["image"])
        y = torch.tensor(ys, dtype=torch.long)
    return x.to(dev), y.to(dev)


def run_mode(torch, kind, mode, init, dev):
    """The losses of two steps of one model in one mode, from the init weights."""
    batch = tt.CASES[kind][0]
    torch.manual_seed(0)
    model = tt.build(torch, kind)
    meta = tt.load(torch, model, os.path.join(init, kind + ".safetensors"))
    if batch is None:
        batch = int(meta.get("bench.batch", "0") or 0)
        if batch < 1:
            tt.fail(f"{kind}: the checkpoint names no batch size")
    model.to(dev)
    x, y = inputs(torch, kind, batch, dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=0.01)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(mode)
    scaler = torch.amp.GradScaler(dev, init_scale=65536.0, growth_factor=2.0,
                                  backoff_factor=0.5, growth_interval=2000,
                                  enabled=mode == "fp16")

    def forward():
        if dtype is None:
            return tt.loss_of(torch, model, kind, x, y)
        with torch.autocast(device_type=dev, dtype=dtype):
            return tt.loss_of(torch, model, kind, x, y)

    out = {"batch": batch}
    model.eval()
    with torch.no_grad():
        out["loss_init_eval"] = forward().float().item()
    model.train()
    scales, skipped = [], 0
    for step in (1, 2):
        opt.zero_grad(set_to_none=True)
        loss = forward()
        before = scaler.get_scale() if mode == "fp16" else None
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        if mode == "fp16":
            scales.append(scaler.get_scale())
            skipped += scaler.get_scale() < before
        out[f"loss_step{step}"] = loss.float().item()
    if mode == "fp16":
        out["scale"] = scales
        out["skipped"] = skipped
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--init", required=True,
                   help="the directory cltrain-bench --train-init wrote (<model>.safetensors)")
    p.add_argument("--json", required=True, help="write the losses here")
    p.add_argument("--models", default="mlp,cnn,gpt", help="comma-separated (default: all three)")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="CPU threads")
    p.add_argument("--cltrain", help="a cltrain-bench JSON (--train-init, --precision): its "
                   "losses beside autocast's")
    args = p.parse_args()
    models = [m for m in args.models.split(",") if m]
    for m in models:
        if m not in tt.CASES:
            tt.fail(f"unknown model {m!r} (known: {', '.join(tt.CASES)})")
    try:
        import torch
    except ImportError as e:
        tt.fail(f"PyTorch is needed: {e}")
    torch.set_num_threads(max(1, args.threads))
    if args.device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False

    cl = cltrain_losses(args.cltrain) if args.cltrain else {}
    doc = {"torch": torch.__version__, "device": args.device, "models": {}}
    finite = True
    for kind in models:
        res = {mode: run_mode(torch, kind, mode, args.init, args.device) for mode in MODES}
        for mode in ("fp16", "bf16"):
            for what in LOSSES:
                ref = res["fp32"][what]
                res[mode][what + "_rel_fp32"] = abs(res[mode][what] - ref) / max(abs(ref), 1e-12)
        for mode in MODES:
            theirs = cl.get((kind, mode), {})
            for what in LOSSES:
                if what in theirs:
                    res[mode]["cltrain_" + what] = theirs[what]
                    res[mode][what + "_rel_cltrain"] = \
                        abs(res[mode][what] - theirs[what]) / max(abs(theirs[what]), 1e-12)
        for mode in MODES:
            r = res[mode]
            finite = finite and all(math.isfinite(r[w]) for w in
                                    ("loss_init_eval", "loss_step1", "loss_step2"))
            extra = ""
            if mode != "fp32":
                extra = f"  (relative to fp32: {r['loss_step1_rel_fp32']:.2e}, " \
                        f"{r['loss_step2_rel_fp32']:.2e})"
            if mode == "fp16":
                extra += f"  scale {r['scale']}, skipped {r['skipped']}"
            print(f"torch_autocast.py: {kind} {mode}: eval {r['loss_init_eval']:.6f}, step 1 "
                  f"{r['loss_step1']:.6f}, step 2 {r['loss_step2']:.6f}{extra}", file=sys.stderr)
            if "cltrain_loss_step2" in r:
                print(f"torch_autocast.py: {kind} {mode}: cltrain eval "
                      f"{r['cltrain_loss_init_eval']:.6f}, step 1 {r['cltrain_loss_step1']:.6f}, "
                      f"step 2 {r['cltrain_loss_step2']:.6f}  (relative to autocast: "
                      + ", ".join(f"{r[w + '_rel_cltrain']:.2e}" for w in LOSSES) + ")",
                      file=sys.stderr)
        doc["models"][kind] = res
    tmp = args.json + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    os.replace(tmp, args.json)
    return 0 if finite else 1


if __name__ == "__main__":
    sys.exit(main())
