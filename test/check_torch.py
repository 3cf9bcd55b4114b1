#!/usr/bin/env python3
"""Checks a cltrain checkpoint with Python's safetensors package and PyTorch (or NumPy).

    check_torch.py [--export PROGRAM] [--numpy-only] DIR

DIR holds what test/export_mlp writes (with --export, PROGRAM is run first to write it):
  mlp.safetensors  a checkpoint of an MLP whose layers are named in the metadata
                   "check.layers" (e.g. "fc1,fc2,fc3", nn.Linear layout: weight [out, in],
                   bias [out]) with "check.activations" between them (relu, gelu)
  io.safetensors   "x" [N, IN] and "logits" [N, OUT] that clt_trainer_eval computed

The checkpoint is opened with the reference safetensors implementation, its tensor names and
metadata are checked against docs/formats.md, and the weights run in an equivalent model:
torch.nn (float32) when torch imports, and always a NumPy forward pass in float64. Outputs
must match the engine's within |got - want| <= 1e-4 + 1e-4 |want|.

Exit status: 0 passed, 1 failed, 77 skipped (no numpy or safetensors, or no OpenCL device).
"""
import argparse
import json
import math
import os
import struct
import subprocess
import sys
import zlib

ATOL = 1e-4
RTOL = 1e-4

try:
    import numpy as np
    from safetensors import safe_open
    from safetensors.numpy import load_file
except ImportError as e:  # the check needs both; skip without them
    print(f"skipping: {e}")
    sys.exit(77)

try:
    import torch
except ImportError:
    torch = None


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def check_header(path):
    """The raw layout cltrain promises: header padded to 8 bytes, tensors laid out by name."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    if (8 + n) % 8:
        fail(f"{path}: header length {n} leaves the data unaligned")
    header = json.loads(raw[8:8 + n].decode("utf-8"))
    names = sorted(k for k in header if k != "__metadata__")
    offset = 0
    for name in names:
        begin, end = header[name]["data_offsets"]
        if begin != offset:
            fail(f"{path}: {name} starts at {begin}, not {offset}: not laid out by name")
        offset = end
    if 8 + n + offset != len(raw):
        fail(f"{path}: the data does not end the file")
    crc = header.get("__metadata__", {}).get("cltrain.data_crc32")
    if crc is not None and int(crc, 16) != zlib.crc32(raw[8 + n:]):
        fail(f"{path}: cltrain.data_crc32 {crc} is not the CRC-32 of the data section")


def check_checkpoint(tensors, meta, layers):
    for key in ("cltrain.version", "cltrain.steps", "cltrain.updates", "cltrain.seed",
                "optimizer.kind", "optimizer.t", "optimizer.skipped"):
        if key not in meta:
            fail(f"metadata {key} missing")
    for key in ("cltrain.steps", "cltrain.updates", "optimizer.t", "optimizer.skipped"):
        if not meta[key].isdigit():
            fail(f"metadata {key} = {meta[key]!r} is not a count")
    adam = meta["optimizer.kind"] in ("adam", "adamw")
    want = set()
    for layer in layers:
        for part in ("weight", "bias"):
            name = f"{layer}.{part}"
            want.add(name)
            want.add(f"optimizer.m.{name}")
            if adam:
                want.add(f"optimizer.v.{name}")
    if set(tensors) != want:
        fail(f"tensors {sorted(set(tensors) ^ want)} differ from the documented names")
    for name, t in tensors.items():
        if t.dtype != np.float32:
            fail(f"{name} is {t.dtype}, not float32")
        base = name.split(".", 2)[2] if name.startswith("optimizer.") else name
        if t.shape != tensors[base].shape:
            fail(f"{name} has shape {t.shape}, its parameter {tensors[base].shape}")
    if adam and not np.all(tensors[f"optimizer.v.{layers[0]}.weight"] >= 0):
        fail("a second moment is negative")


def gelu(x):
    return 0.5 * x * (1.0 + np.vectorize(math.erf)(x / math.sqrt(2.0)))


def numpy_forward(tensors, layers, acts, x):
    h = x.astype(np.float64)
    for i, layer in enumerate(layers):
        w = tensors[f"{layer}.weight"].astype(np.float64)
        b = tensors[f"{layer}.bias"].astype(np.float64)
        h = h @ w.T + b
        if i < len(acts):
            h = np.maximum(h, 0.0) if acts[i] == "relu" else gelu(h)
    return h


def torch_forward(tensors, layers, acts, x):
    mods = []
    for i, layer in enumerate(layers):
        w = tensors[f"{layer}.weight"]
        mods.append(torch.nn.Linear(w.shape[1], w.shape[0]))
        if i < len(acts):
            mods.append(torch.nn.ReLU() if acts[i] == "relu" else torch.nn.GELU())
    model = torch.nn.Sequential(*mods)
    state = {}
    for i, layer in enumerate(layers):
        k = 2 * i  # Linear modules sit at even indices
        state[f"{k}.weight"] = torch.from_numpy(tensors[f"{layer}.weight"].copy())
        state[f"{k}.bias"] = torch.from_numpy(tensors[f"{layer}.bias"].copy())
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():
        return model(torch.from_numpy(x.copy())).numpy().astype(np.float64)


def compare(what, got, want):
    err = np.abs(got - want)
    tol = ATOL + RTOL * np.abs(want)
    worst = float(np.max(err - tol))
    print(f"{what}: max |diff| {float(np.max(err)):.3g} over {want.size} outputs "
          f"(tolerance {ATOL:g} + {RTOL:g} |want|)")
    if worst > 0:
        i = np.unravel_index(np.argmax(err - tol), err.shape)
        fail(f"{what}: output {tuple(int(k) for k in i)} is {got[i]}, the engine gave {want[i]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--export", help="run this program with DIR first")
    ap.add_argument("--numpy-only", action="store_true", help="do not use torch")
    ap.add_argument("dir")
    args = ap.parse_args()
    if args.export:
        os.makedirs(args.dir, exist_ok=True)
        rc = subprocess.run([args.export, args.dir]).returncode
        if rc == 77:
            print("skipping: no OpenCL device")
            sys.exit(77)
        if rc != 0:
            fail(f"{args.export} exited with {rc}")
    ckpt = os.path.join(args.dir, "mlp.safetensors")
    io = os.path.join(args.dir, "io.safetensors")
    check_header(ckpt)
    with safe_open(ckpt, framework="numpy") as f:
        meta = f.metadata() or {}
    tensors = load_file(ckpt)
    layers = meta.get("check.layers", "").split(",")
    acts = meta.get("check.activations", "").split(",")
    if len(acts) != len(layers) - 1 or any(a not in ("relu", "gelu") for a in acts):
        fail(f"cannot build the model: layers {layers}, activations {acts}")
    check_checkpoint(tensors, meta, layers)
    print(f"checkpoint: {len(tensors)} tensors, step {meta['cltrain.steps']}, "
          f"optimizer {meta['optimizer.kind']} (t = {meta['optimizer.t']}), "
          f"cltrain {meta['cltrain.version']}")
    data = load_file(io)
    x, want = data["x"], data["logits"].astype(np.float64)
    compare("numpy float64", numpy_forward(tensors, layers, acts, x), want)
    if torch is not None and not args.numpy_only:
        compare(f"torch {torch.__version__} float32", torch_forward(tensors, layers, acts, x),
                want)
    else:
        print("torch: not " + ("used" if args.numpy_only else "installed") +
              "; checked with numpy only")
    print("passed")


if __name__ == "__main__":
    main()
