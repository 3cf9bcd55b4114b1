#!/usr/bin/env python3
"""torch_gemm.py: PyTorch's SGEMM at the shapes of cltrain-bench's GEMM section.

Measures torch.mm (torch.bmm for batched shapes) in fp32 at every shape that
`cltrain-bench --gemm-shapes` lists (the squares and the GEMM shapes of the built-in
models' training plans), and writes the results in cltrain-bench's JSON format, each
figure named "chosen.<shape>" like cltrain's tuned choice, so that

    python3 bench/torch_gemm.py --bench build/cltrain-bench --device pocl --json ref.json
    build/cltrain-bench --device pocl --sections micro,gemm --compare ref.json

prints cltrain beside PyTorch, shape by shape (ratio = cltrain / PyTorch).

On a CPU, PyTorch runs with as many threads as the machine has cores (--threads to change);
on CUDA (--cuda) TF32 is off, so both sides compute in full fp32. Each figure is the median,
minimum and maximum over --runs runs after --warmup discarded ones; a run times enough
back-to-back products to take about 0.1 s (at least one), as cltrain-bench does.

Exit status: 0 success, 1 a measurement failed, 2 bad usage or unreadable input.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time


def read_shapes(lines, source):
    """Parses "NAME TA TB M N K BATCH" lines."""
    shapes = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        parts = line.split()
        try:
            if len(parts) != 7:
                raise ValueError("7 fields expected")
            name = parts[0]
            ta, tb, m, n, k, batch = (int(p) for p in parts[1:])
            if ta not in (0, 1) or tb not in (0, 1) or min(m, n, k, batch) < 1:
                raise ValueError("a transpose flag is not 0 or 1, or a size is not positive")
        except ValueError as e:
            raise SystemExit(f"torch_gemm.py: {source}:{number}: malformed shape line "
                             f"\"{line}\": {e}") from None
        shapes.append((name, bool(ta), bool(tb), m, n, k, batch))
    if not shapes:
        raise SystemExit(f"torch_gemm.py: {source}: no shapes")
    return shapes


def shapes_from_bench(bench, device, quick):
    cmd = [bench, "--gemm-shapes"] + (["--device", device] if device else []) + \
        (["--quick"] if quick else [])
    try:
        out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        detail = getattr(e, "stderr", "") or str(e)
        raise SystemExit(f"torch_gemm.py: cannot list the shapes with {' '.join(cmd)}: "
                         f"{detail.strip()}") from None
    return read_shapes(out.stdout.splitlines(), bench)


def operands(torch, shape, dev):
    """A and B laid out as cltrain's row-major operands (transposed views where asked)."""
    _, ta, tb, m, n, k, batch = shape
    g = torch.Generator(device="cpu").manual_seed(1)
    a = torch.rand((batch, k, m) if ta else (batch, m, k), generator=g) * 2 - 1
    b = torch.rand((batch, n, k) if tb else (batch, k, n), generator=g) * 2 - 1
    a, b = a.to(dev), b.to(dev)
    if ta:
        a = a.transpose(1, 2)
    if tb:
        b = b.transpose(1, 2)
    if batch == 1:
        return a[0], b[0]
    return a, b


def measure(torch, shape, dev, warmup, runs):
    _, _, _, m, n, k, batch = shape
    a, b = operands(torch, shape, dev)
    op = torch.mm if batch == 1 else torch.bmm
    flops = 2.0 * m * n * k * batch
    sync = torch.cuda.synchronize if dev == "cuda" else (lambda: None)
    op(a, b)
    sync()
    t0 = time.perf_counter()
    op(a, b)
    sync()
    one = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, min(1000, int(0.1 / one)))
    values = []
    for r in range(warmup + runs):
        sync()
        t0 = time.perf_counter()
        for _ in range(inner):
            op(a, b)
        sync()
        seconds = time.perf_counter() - t0
        if r >= warmup:
            values.append(flops * inner / seconds * 1e-9)
    return values


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                epilog="The shapes come from cltrain-bench --gemm-shapes "
                                       "(--bench) or a file of its output (--shapes).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--bench", help="path of cltrain-bench, asked for its shapes")
    src.add_argument("--shapes", help="a file of `cltrain-bench --gemm-shapes` output")
    p.add_argument("--device", help="cltrain-bench's --device (whose models' shapes to use)")
    p.add_argument("--quick", action="store_true", help="cltrain-bench --quick's shapes")
    p.add_argument("--json", required=True, help="write the figures here")
    p.add_argument("--cuda", action="store_true", help="measure on CUDA, TF32 off")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="CPU threads (default: the cores, %(default)s)")
    p.add_argument("--runs", type=int, default=5, help="measured runs (default 5)")
    p.add_argument("--warmup", type=int, default=1, help="discarded runs (default 1)")
    args = p.parse_args()
    if args.runs < 1 or args.warmup < 0 or args.threads < 1:
        p.error("--runs and --threads must be at least 1, --warmup at least 0")

    if args.shapes:
        try:
            with open(args.shapes) as f:
                shapes = read_shapes(f.readlines(), args.shapes)
        except OSError as e:
            raise SystemExit(f"torch_gemm.py: cannot read {args.shapes}: {e.strerror}")
    else:
        shapes = shapes_from_bench(args.bench, args.device, args.quick)

    try:
        import torch
    except ImportError:
        print("torch_gemm.py: PyTorch is not installed (pip install torch)", file=sys.stderr)
        return 1
    if args.cuda:
        if not torch.cuda.is_available():
            print("torch_gemm.py: --cuda, but CUDA is not available", file=sys.stderr)
            return 1
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        dev, name = "cuda", torch.cuda.get_device_name(0)
    else:
        torch.set_num_threads(args.threads)
        dev, name = "cpu", platform.processor() or platform.machine()

    figures = []
    for shape in shapes:
        print(f"torch_gemm.py: {shape[0]}", file=sys.stderr)
        try:
            v = measure(torch, shape, dev, args.warmup, args.runs)
        except RuntimeError as e:
            print(f"torch_gemm.py: {shape[0]} failed: {e}", file=sys.stderr)
            return 1
        figures.append({"name": "chosen." + shape[0], "unit": "GFLOP/s", "better": "higher",
                        "median": statistics.median(v), "min": min(v), "max": max(v),
                        "runs": len(v)})

    env = {"framework": "pytorch", "torch_version": torch.__version__, "device": dev,
           "device_name": name, "threads": torch.get_num_threads(),
           "tf32": "off" if args.cuda else "n/a",
           "load_average": " ".join(f"{x:.2f}" for x in os.getloadavg())}
    for var in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "OMP_NUM_THREADS"):
        if os.environ.get(var):
            env[var.lower()] = os.environ[var]
    result = {"tool": "torch_gemm.py", "format": 1, "cltrain_version": "n/a",
              "mode": "quick" if args.quick else "full", "warmup": args.warmup,
              "runs": args.runs,
              "devices": [{"id": dev, "label": f"pytorch / {name}", "notes": "",
                           "environment": env, "micro": [], "gemm": figures, "ops": [],
                           "train": []}]}
    tmp = args.json + ".tmp"
    try:
        with open(tmp, "w") as f:
            json.dump(result, f, indent=1)
        os.replace(tmp, args.json)
    except OSError as e:
        print(f"torch_gemm.py: cannot write {args.json}: {e.strerror}", file=sys.stderr)
        return 1
    for fig in figures:
        print(f"{fig['name'][7:]:<28} {fig['median']:9.1f} GFLOP/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
