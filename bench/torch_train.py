#!/usr/bin/env python3
"""torch_train.py: the bench's models trained in PyTorch, as cltrain-bench's train section does.

Builds mlp, cnn and gpt exactly as tools/models.c does (same layers, sizes and defaults), and
the large gpt2s and resnet18 as tools/models_large.c does, loads
the initial weights cltrain-bench wrote with --train-init, trains on the same random batch
(bench_train_inputs in bench/train_bench.c: the same generator, the same numbers) with the
same optimizer (AdamW: lr 1e-3, betas 0.9 and 0.999, eps 1e-8, weight decay 0.01 on every
parameter, no clipping: clt_trainer_options_init's defaults) and batch sizes (a large model's
is the one its checkpoint names, which cltrain-bench chose for its device), and writes
cltrain-bench's JSON format with the train section's figure names, so that

    build/cltrain-bench --device pocl --sections train --train-init /tmp/init --json cl.json
    python3 bench/torch_train.py --init /tmp/init --cltrain cl.json --json torch.json
    build/cltrain-bench --device pocl --sections train --compare torch.json

(--models gpt2s,resnet18 on both programs for the large models)

prints cltrain beside PyTorch (ratio = cltrain / PyTorch). Before timing, it checks each
model's losses against cltrain's (read from --cltrain, the same run that wrote --init):
loss_init_eval (the batch's loss in evaluation mode at the loaded weights), loss_step1 (the
training loss of the first step) and loss_step2 (that of the second, after one update: it
depends on the gradients and the optimizer). The check fails (exit status 1) when they differ
by more than --loss-rtol (default 1e-3, relative), except cnn's training losses: its dropout
draws other masks than cltrain's counter-based generator, so those are printed, not checked.

samples/s is measured as bench/train_bench.c does: a run times `steps` training steps (mlp 8,
cnn 4, gpt, gpt2s and resnet18 3; --quick: 4, 2, 1, 1, 1) from the first step's start to the
loss read back, the median, minimum and maximum over --runs runs after --warmup discarded
ones. On a CPU, PyTorch runs with as many threads as the machine has cores (--threads); with
--device cuda, TF32 is off.
forward_ms, backward_ms and optimizer_ms are the wall-clock phases of one step (synchronised
on CUDA), split_total_ms their sum. --losses-only stops after the loss check (the JSON then
holds the three losses of each model).

Exit status: 0 success, 1 a check or a measurement failed, 2 bad usage or unreadable input.
"""
import argparse
import json
import os
import platform
import statistics
import struct
import sys
import time

# name: batch, steps per run, steps per run with --quick (bench/train_bench.c's cases). The
# large models' batch (None) depends on the device: it is read from the checkpoint.
CASES = {"mlp": (128, 8, 4), "cnn": (64, 4, 2), "gpt": (16, 3, 1),
         "gpt2s": (None, 3, 1), "resnet18": (None, 3, 1)}
BUILTIN = ("mlp", "cnn", "gpt")  # run by default; the large ones only when named
# The data each is built for: model_default_data (tools/models.c), 1 x 28 x 28 images of 10
# classes and 96 symbols of text; model_large_data (tools/models_large.c), 3 x 64 x 64 images
# of 100 classes and 256 symbols.
DATA = {"mlp": {"image": (1, 28, 28), "classes": 10},
        "cnn": {"image": (1, 28, 28), "classes": 10},
        "gpt": {"vocab": 96}, "gpt2s": {"vocab": 256},
        "resnet18": {"image": (3, 64, 64), "classes": 100}}
# model_defaults (tools/models.c) and model_large_build (tools/models_large.c).
DEFAULTS = {"mlp": {"width": 256, "depth": 2, "dropout": 0.0},
            "cnn": {"width": 16, "dropout": 0.1},
            "gpt": {"width": 128, "depth": 2, "heads": 4, "context": 64, "dropout": 0.0},
            "gpt2s": {"width": 768, "depth": 12, "heads": 12, "context": 256, "dropout": 0.0},
            "resnet18": {"width": 64}}


def is_text(kind):
    return "vocab" in DATA[kind]


def fail(message, status=2):
    print(f"torch_train.py: {message}", file=sys.stderr)
    raise SystemExit(status)


def read_safetensors(path):
    """{name: (dtype, shape, bytes)} and the metadata of a safetensors file (docs/formats.md),
    without the safetensors package."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        fail(f"cannot read {path}: {e.strerror}")
    if len(data) < 8:
        fail(f"{path}: not a safetensors file (too short)")
    n = struct.unpack("<Q", data[:8])[0]
    if n > len(data) - 8:
        fail(f"{path}: header length {n} past the end of the file")
    try:
        header = json.loads(data[8:8 + n])
    except ValueError as e:
        fail(f"{path}: bad header: {e}")
    meta = header.pop("__metadata__", {}) or {}
    body = data[8 + n:]
    tensors = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        if not 0 <= begin <= end <= len(body):
            fail(f"{path}: tensor {name} lies outside the file")
        tensors[name] = (t["dtype"], t["shape"], body[begin:end])
    return tensors, meta


def bench_inputs(kind, batch):
    """bench_train_inputs (bench/train_bench.c): x then y from one 32-bit LCG, seed 12345."""
    s = 12345
    text = is_text(kind)
    if text:
        context = DEFAULTS[kind]["context"]
        nx, ny, classes = batch * context, batch * context, DATA[kind]["vocab"]
    else:
        c, h, w = DATA[kind]["image"]
        nx, ny, classes = batch * c * h * w, batch, DATA[kind]["classes"]
    x, y = [], []
    for _ in range(nx):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        x.append((s >> 8) % classes if text else (s >> 8) / 16777216.0)
    for _ in range(ny):
        s = (s * 1664525 + 1013904223) & 0xFFFFFFFF
        y.append((s >> 8) % classes)
    return x, y


def build(torch, kind):
    """The model of tools/models.c or tools/models_large.c as a torch.nn.Module whose parameter
    and buffer names are cltrain's checkpoint names."""
    nn, F = torch.nn, torch.nn.functional
    d, data = DEFAULTS[kind], DATA[kind]
    IMAGE, CLASSES, VOCAB = data.get("image"), data.get("classes"), data.get("vocab")

    class Linear(nn.Module):
        """clt_linear: weight [out, in], bias [out]."""

        def __init__(self, i, o):
            super().__init__()
            self.weight = nn.Parameter(torch.empty(o, i))
            self.bias = nn.Parameter(torch.empty(o))

        def forward(self, x):
            return F.linear(x, self.weight, self.bias)

    if kind == "mlp":
        class Mlp(nn.Module):
            # flatten -> (linear width, relu) x depth -> linear classes.
            def __init__(self):
                super().__init__()
                w, n = d["width"], IMAGE[0] * IMAGE[1] * IMAGE[2]
                for i in range(d["depth"]):
                    setattr(self, f"fc{i + 1}", Linear(n if i == 0 else w, w))
                self.out = Linear(w, CLASSES)

            def forward(self, x):
                x = x.flatten(1)
                for i in range(d["depth"]):
                    x = F.relu(getattr(self, f"fc{i + 1}")(x))
                return self.out(x)
        return Mlp()

    if kind == "cnn":
        class Cnn(nn.Module):
            # (conv3x3 pad 1 no bias - batch norm - relu - maxpool 2) with width, then 2 width
            # channels; flatten; linear 4 width - relu - dropout; linear classes.
            def __init__(self):
                super().__init__()
                w, c = d["width"], IMAGE[0]
                for i in range(2):
                    conv = nn.Conv2d(c if i == 0 else w, w << i, 3, padding=1, bias=False)
                    setattr(self, f"conv{i + 1}", conv)
                    setattr(self, f"bn{i + 1}", nn.BatchNorm2d(w << i, eps=1e-5, momentum=0.1))
                flat = (2 * w) * (IMAGE[1] // 4) * (IMAGE[2] // 4)
                self.fc1 = Linear(flat, 4 * w)
                self.fc2 = Linear(4 * w, CLASSES)

            def forward(self, x):
                for i in range(2):
                    x = getattr(self, f"bn{i + 1}")(getattr(self, f"conv{i + 1}")(x))
                    x = F.max_pool2d(F.relu(x), 2, 2)
                x = F.relu(self.fc1(x.flatten(1)))
                return self.fc2(F.dropout(x, d["dropout"], self.training))
        return Cnn()

    if kind == "resnet18":
        class BasicBlock(nn.Module):
            # relu(bn2(conv2(relu(bn1(conv1(x))))) + shortcut(x)); conv1 3x3 with the stride,
            # conv2 3x3; the shortcut is conv 1x1 with the stride and batch norm
            # ("downsample") when the shape changes, else x.
            def __init__(self, cin, cout, stride):
                super().__init__()
                self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
                self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
                self.bn2 = nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1)
                self.downsample = None
                if stride != 1 or cin != cout:
                    self.downsample = nn.Sequential(
                        nn.Conv2d(cin, cout, 1, stride, bias=False),
                        nn.BatchNorm2d(cout, eps=1e-5, momentum=0.1))

            def forward(self, x):
                y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
                return F.relu(y + (x if self.downsample is None else self.downsample(x)))

        class ResNet18(nn.Module):
            # conv1 3x3 stride 1 (no max pool) - bn1 - relu; layer1..4 of two blocks with
            # w, 2w, 4w, 8w channels, stride 2 at the first block of layers 2 to 4; global
            # average pooling; fc 8w -> classes. Names as torchvision's resnet18.
            def __init__(self):
                super().__init__()
                w = d["width"]
                self.conv1 = nn.Conv2d(IMAGE[0], w, 3, 1, 1, bias=False)
                self.bn1 = nn.BatchNorm2d(w, eps=1e-5, momentum=0.1)
                cin = w
                for s in range(1, 5):
                    cout = w << (s - 1)
                    stride = 2 if s > 1 else 1
                    setattr(self, f"layer{s}", nn.Sequential(BasicBlock(cin, cout, stride),
                                                             BasicBlock(cout, cout, 1)))
                    cin = cout
                self.fc = Linear(cin, CLASSES)

            def forward(self, x):
                x = F.relu(self.bn1(self.conv1(x)))
                for s in range(1, 5):
                    x = getattr(self, f"layer{s}")(x)
                return self.fc(x.mean((2, 3)))
        return ResNet18()

    class Attention(nn.Module):
        # clt_attention: qkv linear D -> 3D, [N, T, 3, H, Dh] split into q, k, v [N, H, T, Dh],
        # causal softmax(q k^T / sqrt(Dh)) v, back to [N, T, D], proj linear D -> D.
        def __init__(self, width, heads):
            super().__init__()
            self.heads = heads
            self.qkv = Linear(width, 3 * width)
            self.proj = Linear(width, width)

        def forward(self, x):
            n, t, c = x.shape
            qkv = self.qkv(x).view(n, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
            o = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], is_causal=True)
            return self.proj(o.transpose(1, 2).reshape(n, t, c))

    class Block(nn.Module):
        # x = x + attn(ln1(x)); x = x + proj(gelu_tanh(fc(ln2(x)))).
        def __init__(self, width, heads):
            super().__init__()
            self.ln1 = nn.LayerNorm(width, eps=1e-5)
            self.attn = Attention(width, heads)
            self.ln2 = nn.LayerNorm(width, eps=1e-5)
            self.fc = Linear(width, 4 * width)
            self.proj = Linear(4 * width, width)

        def forward(self, x):
            x = x + self.attn(self.ln1(x))
            return x + self.proj(F.gelu(self.fc(self.ln2(x)), approximate="tanh"))

    class Gpt(nn.Module):
        # token embedding + learned positions ("pos.weight" [T * D]), blocks, ln_f, head.
        def __init__(self):
            super().__init__()
            w, t = d["width"], d["context"]
            self.tok = nn.Embedding(VOCAB, w)
            self.pos = nn.Module()
            self.pos.weight = nn.Parameter(torch.empty(t * w))
            for i in range(d["depth"]):
                setattr(self, f"block{i}", Block(w, d["heads"]))
            self.ln_f = nn.LayerNorm(w, eps=1e-5)
            self.head = Linear(w, VOCAB)

        def forward(self, ids):
            n, t = ids.shape
            x = self.tok(ids) + self.pos.weight.view(t, -1)
            for i in range(d["depth"]):
                x = getattr(self, f"block{i}")(x)
            return self.head(self.ln_f(x))
    return Gpt()


def load(torch, model, path):
    """Copies every parameter and buffer of model from cltrain's checkpoint, by name."""
    tensors, meta = read_safetensors(path)
    own = dict(model.named_parameters())
    own.update({k: v for k, v in model.named_buffers() if not k.endswith("num_batches_tracked")})
    missing = [k for k in own if k not in tensors]
    extra = [k for k in tensors if k not in own and not k.startswith("optimizer.")]
    if missing or extra:
        fail(f"{path}: the checkpoint does not match the model: missing {missing}, "
             f"unexpected {extra}")
    with torch.no_grad():
        for name, t in own.items():
            dtype, shape, raw = tensors[name]
            if dtype != "F32" or list(shape) != list(t.shape):
                fail(f"{path}: {name} is {dtype} {shape}, the model's is F32 {list(t.shape)}")
            t.copy_(torch.frombuffer(bytearray(raw), dtype=torch.float32).view(t.shape))
    return meta


def loss_of(torch, model, kind, x, y):
    logits = model(x)
    if is_text(kind):
        logits = logits.reshape(-1, DATA[kind]["vocab"])
        y = y.reshape(-1)
    return torch.nn.functional.cross_entropy(logits, y)


class Trainer:
    def __init__(self, torch, model, kind, x, y, dev):
        self.torch, self.model, self.kind, self.x, self.y = torch, model, kind, x, y
        self.opt = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.999),
                                     eps=1e-8, weight_decay=0.01)
        self.sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)

    def step(self, marks=None):
        self.opt.zero_grad(set_to_none=True)
        loss = loss_of(self.torch, self.model, self.kind, self.x, self.y)
        if marks is not None:
            self.sync()
            marks.append(time.perf_counter())
        loss.backward()
        if marks is not None:
            self.sync()
            marks.append(time.perf_counter())
        self.opt.step()
        if marks is not None:
            self.sync()
            marks.append(time.perf_counter())
        return loss


def figure(name, unit, higher, values):
    return {"name": name, "unit": unit, "better": "higher" if higher else "lower",
            "median": statistics.median(values), "min": min(values), "max": max(values),
            "runs": len(values)}


def cltrain_losses(path):
    """{model: {figure: median}} of the loss figures of a cltrain-bench JSON file."""
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        fail(f"cannot read {path}: {e}")
    out = {}
    for d in doc.get("devices", []):
        for fig in d.get("train", []):
            model, _, what = fig["name"].partition(".")
            if what.startswith("loss_"):
                out.setdefault(model, {})[what] = fig["median"]
    return out


def check_losses(tool, framework, kind, losses, want, rtol):
    """Prints each (figure, loss) of losses beside cltrain's (want[kind]); False when a checked
    one differs by more than rtol, relative. The cnn's training losses are not checked: its
    dropout draws other masks than cltrain's counter-based generator."""
    ok = True
    for what, got in losses:
        ref = want.get(kind, {}).get(what)
        checked = not (kind == "cnn" and what != "loss_init_eval")
        if ref is None:
            line, bad = "(no cltrain figure)", False
        else:
            rel = abs(got - ref) / max(abs(ref), 1e-12)
            bad = checked and not rel <= rtol
            line = f"cltrain {ref:.6f}, relative difference {rel:.2e}" + \
                ("" if checked else " (dropout masks differ: not checked)")
        print(f"{tool}: {kind} {what}: {framework} {got:.6f}, {line}"
              f"{'  MISMATCH' if bad else ''}", file=sys.stderr)
        ok = ok and not bad
    return ok


def one_model(torch, kind, args, dev, want):
    batch, steps, quick_steps = CASES[kind]
    steps = quick_steps if args.quick else steps
    context = DEFAULTS[kind].get("context", 1)
    torch.manual_seed(0)
    model = build(torch, kind)
    meta = load(torch, model, os.path.join(args.init, kind + ".safetensors"))
    if batch is None:
        batch = meta.get("bench.batch", "")
        if not batch.isdigit() or int(batch) < 1:
            fail(f"{kind}: the checkpoint names no batch size (bench.batch: {batch!r})")
        batch = int(batch)
    elif meta.get("bench.batch", str(batch)) != str(batch):
        fail(f"{kind}: the checkpoint was written for batch {meta['bench.batch']}, not {batch}")
    model.to(dev)
    xs, ys = bench_inputs(kind, batch)
    if is_text(kind):
        x = torch.tensor(xs, dtype=torch.long).view(batch, context)
        y = torch.tensor(ys, dtype=torch.long).view(batch, context)
    else:
        x = torch.tensor(xs, dtype=torch.float32).view(batch, *DATA[kind]["image"])
        y = torch.tensor(ys, dtype=torch.long)
    x, y = x.to(dev), y.to(dev)
    tr = Trainer(torch, model, kind, x, y, dev)

    # Losses at step 1, against cltrain's.
    model.eval()
    with torch.no_grad():
        eval_loss = loss_of(torch, model, kind, x, y).item()
    model.train()
    step1 = tr.step().item()
    step2 = tr.step().item()
    losses = (("loss_init_eval", eval_loss), ("loss_step1", step1), ("loss_step2", step2))
    ok = check_losses("torch_train.py", "pytorch", kind, losses, want, args.loss_rtol)

    figs = [figure(f"{kind}.{what}", "loss", False, [got]) for what, got in losses]
    if args.losses_only:
        return figs, ok
    samples, split = [], [[], [], [], []]
    for r in range(args.warmup + args.runs):
        tr.sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = tr.step()
        loss.item()
        tr.sync()
        if r >= args.warmup:
            samples.append(steps * batch / (time.perf_counter() - t0))
    for r in range(args.warmup + args.runs):
        tr.sync()
        marks = [time.perf_counter()]
        tr.step(marks)
        if r >= args.warmup:
            for i in range(3):
                split[i].append((marks[i + 1] - marks[i]) * 1e3)
            split[3].append((marks[3] - marks[0]) * 1e3)
    figs.append(figure(f"{kind}.samples_per_s", "samples/s", True, samples))
    if is_text(kind):
        figs.append(figure(f"{kind}.tokens_per_s", "tokens/s", True,
                           [s * context for s in samples]))
    figs.append(figure(f"{kind}.split_total_ms", "ms", False, split[3]))
    for i, part in enumerate(("forward_ms", "backward_ms", "optimizer_ms")):
        figs.append(figure(f"{kind}.{part}", "ms", False, split[i]))
    return figs, ok


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--init", required=True,
                   help="the directory of cltrain-bench --train-init (MODEL.safetensors)")
    p.add_argument("--cltrain", help="cltrain-bench's JSON of the same run, for the loss check")
    p.add_argument("--json", required=True, help="write the figures here")
    p.add_argument("--models", default="mlp,cnn,gpt",
                   help="comma-separated: mlp, cnn, gpt (the default), gpt2s, resnet18")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"),
                   help="cpu (default) or cuda (TF32 off)")
    p.add_argument("--quick", action="store_true", help="cltrain-bench --quick's steps per run")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="CPU threads (default: the cores, %(default)s)")
    p.add_argument("--runs", type=int, help="measured runs (default 5, --quick 3)")
    p.add_argument("--warmup", type=int, default=1, help="discarded runs (default 1)")
    p.add_argument("--losses-only", action="store_true",
                   help="check and write the losses only, without timing (tests)")
    p.add_argument("--loss-rtol", type=float, default=1e-3,
                   help="largest relative difference of a checked loss (default 1e-3)")
    args = p.parse_args()
    if args.runs is None:
        args.runs = 3 if args.quick else 5
    if args.runs < 1 or args.warmup < 0 or args.threads < 1 or not args.loss_rtol >= 0:
        p.error("--runs and --threads must be at least 1, --warmup and --loss-rtol at least 0")
    models = [m for m in args.models.split(",") if m]
    unknown = [m for m in models if m not in CASES]
    if unknown or not models:
        p.error(f"--models: unknown model(s) {unknown} ({', '.join(CASES)})")
    if not os.path.isdir(args.init):
        fail(f"--init {args.init} is not a directory")
    want = cltrain_losses(args.cltrain) if args.cltrain else {}

    try:
        import torch
    except ImportError:
        fail("PyTorch is not installed (pip install torch)", 1)
    if args.device == "cuda":
        if not torch.cuda.is_available():
            fail("--device cuda, but CUDA is not available", 1)
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        name = torch.cuda.get_device_name(0)
    else:
        torch.set_num_threads(args.threads)
        name = platform.processor() or platform.machine()

    figures, ok = [], True
    for kind in models:
        print(f"torch_train.py: {kind}", file=sys.stderr)
        try:
            figs, good = one_model(torch, kind, args, args.device, want)
        except RuntimeError as e:
            fail(f"{kind} failed: {e}", 1)
        figures += figs
        ok = ok and good

    env = {"framework": "pytorch", "torch_version": torch.__version__, "device": args.device,
           "device_name": name, "threads": torch.get_num_threads(),
           "tf32": "off" if args.device == "cuda" else "n/a",
           "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        if os.environ.get(var):
            env[var.lower()] = os.environ[var]
    result = {"tool": "torch_train.py", "format": 1, "cltrain_version": "n/a",
              "mode": "quick" if args.quick else "full", "warmup": args.warmup,
              "runs": args.runs,
              "devices": [{"id": args.device, "label": f"pytorch / {name}", "notes": "",
                           "environment": env, "micro": [], "gemm": [], "ops": [],
                           "train": figures}]}
    return write_result("torch_train.py", args.json, result, figures, ok)


def write_result(tool, path, result, figures, ok):
    """Writes result to path atomically, prints the figures; the exit status (1: not ok)."""
    tmp = path + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, path)
    except OSError as e:
        print(f"{tool}: cannot write {path}: {e.strerror}", file=sys.stderr)
        return 1
    for fig in figures:
        print(f"{fig['name']:<28} {fig['median']:12.4g} {fig['unit']}")
    if not ok:
        print(f"{tool}: a loss differs from cltrain's (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
