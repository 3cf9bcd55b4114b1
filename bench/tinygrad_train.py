#!/usr/bin/env python3
"""tinygrad_train.py: the bench's built-in models trained in tinygrad, on its OpenCL backend.

The third column of the training comparison (issue 13 asks for cltrain >= 3x tinygrad's OpenCL
backend on the same device): mlp, cnn and gpt as tools/models.c builds them (the definitions
and inputs of bench/torch_train.py, from which this script takes its constants), the initial
weights cltrain-bench wrote with --train-init, the same random batch, AdamW with cltrain's
defaults (lr 1e-3, betas 0.9 and 0.999, eps 1e-8, weight decay 0.01 on every parameter), the
step under TinyJit (tinygrad's fast path: the kernels of a step are captured once and
replayed), and cltrain-bench's JSON format, so that

    build/cltrain-bench --device pocl --sections train --train-init /tmp/init --json cl.json
    python3 bench/tinygrad_train.py --init /tmp/init --cltrain cl.json --json tg.json
    build/cltrain-bench --device pocl --sections train --compare tg.json

prints cltrain beside tinygrad. The device is tinygrad's DEV (default CL: the first OpenCL
device, which is PoCL on a machine without a GPU; --dev CPU for its own CPU backend). Before
timing it checks the losses against cltrain's within --loss-rtol (default 1e-3) as
torch_train.py does: loss_init_eval (the batch's loss in evaluation mode at the loaded
weights), loss_step1 and loss_step2 (after one update), except the cnn's training losses,
whose dropout draws other masks (printed, not checked). samples/s: a run times the steps of bench/train_bench.c (mlp 8, cnn 4, gpt 3)
from the first step's start to the loss read back; the median, minimum and maximum over
--runs runs after --warmup discarded ones (the JIT captures during the first two steps, which
the warm-up covers). tinygrad is installed from PyPI (pip install tinygrad); it runs with its
default settings (no BEAM search), which is how its users meet it.

Exit status: 0 success, 1 a check or a measurement failed, 2 bad usage or unreadable input.
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_train import (BUILTIN, CASES, DATA, DEFAULTS, bench_inputs,  # noqa: E402
                         check_losses, cltrain_losses, figure, is_text, read_safetensors,
                         write_result)


def fail(message, status=2):
    print(f"tinygrad_train.py: {message}", file=sys.stderr)
    raise SystemExit(status)


def build(tg, kind):
    """The model of tools/models.c as tinygrad objects whose state-dict names are cltrain's
    checkpoint names (as bench/torch_train.py's build)."""
    nn, Tensor = tg.nn, tg.Tensor
    d, data = DEFAULTS[kind], DATA[kind]
    image, classes, vocab = data.get("image"), data.get("classes"), data.get("vocab")

    class Holder:
        pass

    if kind == "mlp":
        m = Holder()
        w, n = d["width"], image[0] * image[1] * image[2]
        for i in range(d["depth"]):
            setattr(m, f"fc{i + 1}", nn.Linear(n if i == 0 else w, w))
        m.out = nn.Linear(w, classes)

        def forward(x, training):
            x = x.flatten(1)
            for i in range(d["depth"]):
                x = getattr(m, f"fc{i + 1}")(x).relu()
            return m.out(x)
        return m, forward

    if kind == "cnn":
        m = Holder()
        w, c = d["width"], image[0]
        for i in range(2):
            setattr(m, f"conv{i + 1}",
                    nn.Conv2d(c if i == 0 else w, w << i, 3, padding=1, bias=False))
            setattr(m, f"bn{i + 1}", nn.BatchNorm2d(w << i, eps=1e-5, momentum=0.1))
        flat = (2 * w) * (image[1] // 4) * (image[2] // 4)
        m.fc1 = nn.Linear(flat, 4 * w)
        m.fc2 = nn.Linear(4 * w, classes)

        def forward(x, training):
            for i in range(2):
                x = getattr(m, f"bn{i + 1}")(getattr(m, f"conv{i + 1}")(x))
                x = x.relu().max_pool2d(kernel_size=(2, 2))
            x = m.fc1(x.flatten(1)).relu()
            if training:
                x = x.dropout(d["dropout"])  # only under TRAINING
            return m.fc2(x)
        return m, forward

    width, heads, context = d["width"], d["heads"], d["context"]
    m = Holder()
    m.tok = nn.Embedding(vocab, width)
    m.pos = Holder()
    m.pos.weight = Tensor.zeros(context * width)
    blocks = []
    for i in range(d["depth"]):
        b = Holder()
        b.ln1 = nn.LayerNorm(width, eps=1e-5)
        b.attn = Holder()
        b.attn.qkv = nn.Linear(width, 3 * width)
        b.attn.proj = nn.Linear(width, width)
        b.ln2 = nn.LayerNorm(width, eps=1e-5)
        b.fc = nn.Linear(width, 4 * width)
        b.proj = nn.Linear(4 * width, width)
        setattr(m, f"block{i}", b)
        blocks.append(b)
    m.ln_f = nn.LayerNorm(width, eps=1e-5)
    m.head = nn.Linear(width, vocab)

    def attention(a, x):
        n, t, c = x.shape
        qkv = a.qkv(x).reshape(n, t, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
        o = qkv[0].scaled_dot_product_attention(qkv[1], qkv[2], is_causal=True)
        return a.proj(o.transpose(1, 2).reshape(n, t, c))

    def forward(ids, training):
        n, t = ids.shape
        x = m.tok(ids) + m.pos.weight.reshape(t, width)
        for b in blocks:
            x = x + attention(b.attn, b.ln1(x))
            x = x + b.proj(b.fc(b.ln2(x)).gelu())  # tinygrad's gelu is the tanh form
        return m.head(m.ln_f(x))
    return m, forward


def load(tg, np, model, path):
    """Copies every parameter and buffer of model from cltrain's checkpoint, by name."""
    tensors, meta = read_safetensors(path)
    own = {k: v for k, v in tg.nn.state.get_state_dict(model).items()
           if not k.endswith("num_batches_tracked")}
    missing = [k for k in own if k not in tensors]
    extra = [k for k in tensors if k not in own and not k.startswith("optimizer.")]
    if missing or extra:
        fail(f"{path}: the checkpoint does not match the model: missing {missing}, "
             f"unexpected {extra}")
    for name, t in own.items():
        dtype, shape, raw = tensors[name]
        if dtype != "F32" or list(shape) != list(t.shape):
            fail(f"{path}: {name} is {dtype} {shape}, the model's is F32 {list(t.shape)}")
        t.assign(tg.Tensor(np.frombuffer(raw, dtype=np.float32).reshape(shape).copy())).realize()
    return meta


def one_model(tg, np, kind, args, want):
    Tensor, Context = tg.Tensor, tg.helpers.Context
    batch, steps, quick_steps = CASES[kind]
    steps = quick_steps if args.quick else steps
    context = DEFAULTS[kind].get("context", 1)
    model, forward = build(tg, kind)
    meta = load(tg, np, model, os.path.join(args.init, kind + ".safetensors"))
    if meta.get("bench.batch", str(batch)) != str(batch):
        fail(f"{kind}: the checkpoint was written for batch {meta['bench.batch']}, not {batch}")
    xs, ys = bench_inputs(kind, batch)
    if is_text(kind):
        x = Tensor(np.array(xs, dtype=np.int32).reshape(batch, context)).realize()
        y = Tensor(np.array(ys, dtype=np.int32).reshape(batch, context)).realize()
    else:
        x = Tensor(np.array(xs, dtype=np.float32).reshape(batch, *DATA[kind]["image"])).realize()
        y = Tensor(np.array(ys, dtype=np.int32)).realize()

    def loss_of(x, y, training):
        logits = forward(x, training)
        if is_text(kind):
            logits, y = logits.reshape(-1, DATA[kind]["vocab"]), y.reshape(-1)
        return logits.sparse_categorical_crossentropy(y)

    params = [t for k, t in tg.nn.state.get_state_dict(model).items()
              if not k.split(".")[-1] in ("running_mean", "running_var", "num_batches_tracked")]
    opt = tg.nn.optim.AdamW(params, lr=1e-3, b1=0.9, b2=0.999, eps=1e-8, weight_decay=0.01)

    @tg.TinyJit
    def step(x, y):
        opt.zero_grad()
        loss = loss_of(x, y, True)
        loss.backward()
        # The loss realised with the update, not after it (lazy tensors would see new weights).
        return loss.realize(*opt.schedule_step())

    with Context(TRAINING=0):
        eval_loss = loss_of(x, y, False).item()
    step1 = step(x, y).item()
    step2 = step(x, y).item()
    losses = (("loss_init_eval", eval_loss), ("loss_step1", step1), ("loss_step2", step2))
    ok = check_losses("tinygrad_train.py", "tinygrad", kind, losses, want, args.loss_rtol)
    figs = [figure(f"{kind}.{what}", "loss", False, [got]) for what, got in losses]
    samples = []
    for r in range(args.warmup + args.runs):
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = step(x, y)
        loss.item()
        if r >= args.warmup:
            samples.append(steps * batch / (time.perf_counter() - t0))
    figs.append(figure(f"{kind}.samples_per_s", "samples/s", True, samples))
    if is_text(kind):
        figs.append(figure(f"{kind}.tokens_per_s", "tokens/s", True,
                           [s * context for s in samples]))
    return figs, ok


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--init", required=True,
                   help="the directory of cltrain-bench --train-init (MODEL.safetensors)")
    p.add_argument("--cltrain", help="cltrain-bench's JSON of the same run, for the loss check")
    p.add_argument("--json", required=True, help="write the figures here")
    p.add_argument("--models", default=",".join(BUILTIN),
                   help="comma-separated: mlp, cnn, gpt (the default)")
    p.add_argument("--dev", default="CL", help="tinygrad's device (default CL: OpenCL)")
    p.add_argument("--quick", action="store_true", help="cltrain-bench --quick's steps per run")
    p.add_argument("--runs", type=int, help="measured runs (default 5, --quick 3)")
    p.add_argument("--warmup", type=int, default=1, help="discarded runs (default 1)")
    p.add_argument("--loss-rtol", type=float, default=1e-3,
                   help="largest relative difference of a checked loss (default 1e-3)")
    args = p.parse_args()
    if args.runs is None:
        args.runs = 3 if args.quick else 5
    if args.runs < 1 or args.warmup < 0 or not args.loss_rtol >= 0:
        p.error("--runs must be at least 1, --warmup and --loss-rtol at least 0")
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in BUILTIN]
    if unknown or not models:
        p.error(f"--models: unknown model(s) {unknown} ({', '.join(BUILTIN)})")
    if not os.path.isdir(args.init):
        fail(f"--init {args.init} is not a directory")
    want = cltrain_losses(args.cltrain) if args.cltrain else {}

    os.environ["DEV"] = args.dev
    os.environ["TRAINING"] = "1"  # training mode (dropout, batch statistics) but where turned off
    try:
        import numpy as np
        import tinygrad as tg
        import tinygrad.helpers  # noqa: F401
        import tinygrad.nn.optim  # noqa: F401
        import tinygrad.nn.state  # noqa: F401
    except ImportError as e:
        fail(f"tinygrad or numpy is not installed (pip install tinygrad numpy): {e}", 1)

    figures, ok = [], True
    for kind in models:
        print(f"tinygrad_train.py: {kind}", file=sys.stderr)
        try:
            figs, good = one_model(tg, np, kind, args, want)
        except Exception as e:  # tinygrad raises many kinds; report which model failed
            fail(f"{kind} failed: {type(e).__name__}: {e}", 1)
        figures += figs
        ok = ok and good

    name = tg.Device[tg.Device.DEFAULT].__class__.__name__
    try:
        from importlib.metadata import version
        tg_version = version("tinygrad")
    except Exception:
        tg_version = "unknown"
    env = {"framework": "tinygrad", "tinygrad_version": tg_version, "device": args.dev,
           "device_name": name, "beam": os.environ.get("BEAM", "0"),
           "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    result = {"tool": "tinygrad_train.py", "format": 1, "cltrain_version": "n/a",
              "mode": "quick" if args.quick else "full", "warmup": args.warmup,
              "runs": args.runs,
              "devices": [{"id": args.dev.lower(), "label": f"tinygrad / {args.dev}",
                           "notes": "", "environment": env, "micro": [], "gemm": [],
                           "ops": [], "train": figures}]}
    return write_result("tinygrad_train.py", args.json, result, figures, ok)


if __name__ == "__main__":
    sys.exit(main())
