#!/usr/bin/env python3
"""Checks `cltrain export` against NumPy's and PyTorch's own rounding, and that PyTorch loads
what it writes.

    check_export.py CLTRAIN DIR [TRAINED.safetensors]

1. Writes source files of float32 values (random bit patterns, every midpoint between two
   neighbouring fp16 values and the floats next to it, the same for bf16), exports them with
   `cltrain export --precision fp16` and `bf16`, and compares the bits with NumPy's
   astype(float16) and PyTorch's .to(torch.bfloat16): they must be equal (both round to
   nearest even). Without PyTorch the bf16 comparison is skipped, with a line saying so.
2. Loads each exported file in PyTorch (safetensors.torch.load_file when the safetensors
   package is installed, else the header parsed here and torch.frombuffer) and checks the
   dtypes.
3. With TRAINED (a checkpoint of `cltrain train`), exports it in both precisions and checks
   every tensor against the fp32 one converted by PyTorch (.half(), .bfloat16()), exactly.

Exit status: 0 passed, 1 failed, 77 skipped (no NumPy).
"""
import json
import os
import struct
import subprocess
import sys

try:
    import numpy as np
except ImportError as e:
    print(f"skipping: {e}")
    sys.exit(77)

try:
    import torch
except ImportError:
    torch = None

try:
    from safetensors.torch import load_file as st_load_file
except ImportError:
    st_load_file = None


def fail(msg):
    print(f"FAIL: {msg}")
    sys.exit(1)


def write_safetensors(path, tensors):
    """tensors: name -> float32 array. No metadata: export needs none."""
    header, data, offset = {}, b"", 0
    for name in sorted(tensors):
        raw = np.ascontiguousarray(tensors[name], dtype="<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(tensors[name].shape),
                        "data_offsets": [offset, offset + len(raw)]}
        data += raw
        offset += len(raw)
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * ((8 - (8 + len(text)) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(text)) + text + data)


def read_raw(path):
    """name -> (dtype, shape, raw bytes), and the metadata."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__", {})
    out = {}
    for name, e in header.items():
        b, end = e["data_offsets"]
        out[name] = (e["dtype"], e["shape"], raw[8 + n + b:8 + n + end])
    return out, meta


def export(exe, src, dst, precision):
    r = subprocess.run([exe, "export", "--checkpoint", src, "--precision", precision,
                        "--out", dst, "--force"], capture_output=True, text=True)
    if r.returncode != 0:
        fail(f"cltrain export {precision} {src}: status {r.returncode}: {r.stderr}")


def u16(raw):
    return np.frombuffer(raw, dtype="<u2")


def torch_load(path):
    if st_load_file is not None:
        return st_load_file(path)
    dtypes = {"F16": torch.float16, "BF16": torch.bfloat16, "F32": torch.float32,
              "I32": torch.int32, "I64": torch.int64}
    tensors, _ = read_raw(path)
    return {name: torch.frombuffer(bytearray(raw), dtype=dtypes[d]).reshape(shape)
            for name, (d, shape, raw) in tensors.items()}


def values(kind):
    """float32 test values: random patterns and the midpoints of the 16-bit grid."""
    rng = np.random.default_rng(5)
    pats = rng.integers(0, 2**32, size=1 << 20, dtype=np.uint64).astype(np.uint32)
    x = pats.view(np.float32)
    x = x[np.isfinite(x)]
    if kind == "fp16":
        grid = np.arange(0, 0x7bff, dtype=np.uint16).view(np.float16).astype(np.float64)
        mids = ((grid[:-1] + grid[1:]) / 2).astype(np.float32)  # exact in float32
        x = x[np.abs(x) < 65504]
        small = (rng.standard_normal(1 << 18) * 10.0 ** rng.integers(-9, 4, 1 << 18))
        x = np.concatenate([x, small.astype(np.float32)])
    else:  # from 0x7f7f8000 on, values round to Inf: export refuses them
        x = x[np.abs(x) < np.array([0x7f7f8000], dtype=np.uint32).view(np.float32)[0]]
        mids = (np.arange(0, 0x7f7f, dtype=np.uint32) << 16 | 0x8000).view(np.float32)
    near = np.concatenate([mids, np.nextafter(mids, np.float32(0)),
                           np.nextafter(mids, np.float32(np.inf))])
    x = np.concatenate([x, near, -near]).astype(np.float32)
    return x[np.isfinite(x)]


def check_rounding(exe, d):
    for kind in ("fp16", "bf16"):
        x = values(kind)
        src, dst = os.path.join(d, f"src-{kind}.safetensors"), os.path.join(d, f"{kind}.safetensors")
        write_safetensors(src, {"x": x})
        export(exe, src, dst, kind)
        tensors, meta = read_raw(dst)
        dtype, shape, raw = tensors["x"]
        want_dtype = "F16" if kind == "fp16" else "BF16"
        if dtype != want_dtype or shape != [len(x)] or meta.get("cltrain.precision") != kind:
            fail(f"{kind}: dtype {dtype}, shape {shape}, metadata {meta}")
        got = u16(raw)
        if kind == "fp16":
            want = x.astype(np.float16).view(np.uint16)
            who = "NumPy"
        elif torch is not None:
            want = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
            who = "PyTorch"
        else:
            print("bf16: PyTorch is not installed; its rounding is not compared")
            continue
        bad = np.nonzero(got != want)[0]
        if len(bad):
            i = bad[0]
            fail(f"{kind}: {len(bad)} of {len(x)} values differ from {who}; first "
                 f"{float(x[i])!r} (0x{x.view(np.uint32)[i]:08x}): 0x{got[i]:04x}, "
                 f"{who} 0x{want[i]:04x}")
        print(f"{kind}: {len(x)} values rounded as {who} rounds them")
        if torch is not None:
            t = torch_load(dst)["x"]
            want_t = torch.float16 if kind == "fp16" else torch.bfloat16
            if t.dtype != want_t or t.shape != (len(x),):
                fail(f"{kind}: PyTorch loads {t.dtype} {tuple(t.shape)}")
            if not torch.equal(t.float(), torch.from_numpy(x).to(want_t).float()):
                fail(f"{kind}: the tensor PyTorch loads differs from its own conversion")


def check_trained(exe, d, trained):
    if torch is None:
        print("trained checkpoint: PyTorch is not installed; not compared")
        return
    original = torch_load(trained) if st_load_file else None
    raw, _ = read_raw(trained)
    if original is None:
        original = {n: torch.frombuffer(bytearray(b), dtype=torch.float32).reshape(s)
                    for n, (dt, s, b) in raw.items() if dt == "F32"}
    for kind, dt in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        dst = os.path.join(d, f"trained-{kind}.safetensors")
        export(exe, trained, dst, kind)
        got = torch_load(dst)
        params = {n for n in original if not n.startswith("optimizer.")}
        if set(got) != params:
            fail(f"{kind}: tensors {sorted(got)}, want {sorted(params)}")
        for n in params:
            if got[n].dtype != dt or not torch.equal(got[n], original[n].to(dt)):
                fail(f"{kind}: {n} differs from PyTorch's .to({dt})")
        print(f"trained checkpoint in {kind}: {len(params)} tensors equal to PyTorch's conversion")


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__)
        return 2
    exe, d = sys.argv[1], sys.argv[2]
    os.makedirs(d, exist_ok=True)
    check_rounding(exe, d)
    if len(sys.argv) == 4:
        check_trained(exe, d, sys.argv[3])
    print("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
