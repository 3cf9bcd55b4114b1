#!/usr/bin/env python3
"""check_torch_autocast.py: checks bench/torch_autocast.py against cltrain-bench --train-init.

    python3 check_torch_autocast.py [--cltrain-16bit] CLTRAIN_BENCH TORCH_AUTOCAST_PY

cltrain-bench --quick --sections train --train-init DIR writes the mlp, cnn and gpt
checkpoints and its losses; torch_autocast.py then runs two steps of each model in fp32, fp16
and bf16 and writes its JSON, which must hold, for every model and mode, finite losses; fp32's
must equal cltrain's within 1e-3 relative (cnn's training losses aside: PyTorch's dropout
masks are not cltrain's); the 16-bit modes' must lie within 2e-2 relative of fp32's (autocast's
own error on these models is near 1e-3 at most), and fp16 must report its scale.

--cltrain-16bit checks cltrain's own 16-bit training instead: cltrain-bench runs with
--precision fp32,fp16,bf16 (each precision from the same initial weights), and its fp16 and
bf16 losses (the evaluation at the initial weights and the first two steps) must equal
autocast's of the same mode within HALF_VS_AUTOCAST below (cnn's training losses aside, as
above). Every built-in model must run in both modes. A build whose library refuses 16-bit
training (cltrain-bench notes "MODEL@fp16 not run: the library refuses precision fp16" for
every model and mode) is skipped with a message (77) before PyTorch runs.

Exit status: 0 passed, 1 failed, 77 skipped (no OpenCL device, no PyTorch, or with
--cltrain-16bit a library that trains in fp32 only).
"""
import importlib.util
import json
import math
import os
import re
import subprocess
import sys
import tempfile

FP32_RTOL = 1e-3
HALF_RTOL = 2e-2
# cltrain's 16-bit losses against autocast's in the same mode, relative. cltrain's fp32 equals
# PyTorch's within FP32_RTOL (1e-3); autocast's modes differ from fp32 by at most 1.2e-3 after
# one update on these models (docs/precision.md: cnn fp16 at step 2; 1e-4 and less before the
# update); cltrain's 16-bit storage differs from its fp32 by its rounding: fp16 keeps 11
# significant bits (2^-11 = 4.9e-4 relative per stored value), bf16 8 (3.9e-3), and a loss
# averages many such errors. Their sum, rounded up: 3e-3 for fp16, 6e-3 for bf16.
HALF_VS_AUTOCAST = {"fp16": 3e-3, "bf16": 6e-3}
LOSSES = ("loss_init_eval", "loss_step1", "loss_step2")
REFUSED = re.compile(r"train: (\w+)@(fp16|bf16) not run: the library refuses precision")


def check_16bit(bench, script, tt):
    """--cltrain-16bit: cltrain's fp16 and bf16 losses against autocast's."""
    with tempfile.TemporaryDirectory() as tmp:
        init, cl, out = (os.path.join(tmp, n) for n in ("init", "cl.json", "autocast.json"))
        os.mkdir(init)
        p = subprocess.run([bench, "--quick", "--sections", "train", "--precision",
                            "fp32,fp16,bf16", "--cold-runs", "0", "--runs", "1", "--warmup", "0",
                            "--train-init", init, "--json", cl], capture_output=True, text=True)
        if p.returncode != 0 and "no OpenCL" in p.stderr:
            print("skipping: no OpenCL device")
            return 77
        if p.returncode != 0:
            print(f"cltrain-bench failed ({p.returncode}): {p.stderr}")
            return 1
        with open(cl) as f:
            notes = " ".join(d["notes"] for d in json.load(f)["devices"])
        refused = sorted(set(REFUSED.findall(notes)))
        every = sorted((k, m) for k in tt.BUILTIN for m in ("fp16", "bf16"))
        if refused == every:
            print("skipping: this build's library refuses 16-bit training (cltrain-bench: "
                  f"{REFUSED.search(notes).group(0)} ...); nothing to compare with autocast")
            return 77
        p = subprocess.run([sys.executable, script, "--init", init, "--json", out, "--cltrain",
                            cl], capture_output=True, text=True)
        print(p.stderr, end="")
        if p.returncode != 0:
            print(f"torch_autocast.py failed ({p.returncode})")
            return 1
        with open(out) as f:
            doc = json.load(f)
    bad = [f"{k} {m}: refused by the library (every built-in model must train in 16 bits)"
           for k, m in refused]
    for kind in tt.BUILTIN:
        for mode in ("fp16", "bf16"):
            res = doc["models"].get(kind, {}).get(mode, {})
            if (kind, mode) in refused:
                continue
            for what in LOSSES:
                if "cltrain_" + what not in res:
                    bad.append(f"{kind} {mode}: cltrain-bench wrote no {what}")
                    continue
                if kind == "cnn" and what != "loss_init_eval":
                    continue  # PyTorch's dropout masks are not cltrain's
                rel, tol = res[what + "_rel_cltrain"], HALF_VS_AUTOCAST[mode]
                print(f"{kind} {mode} {what}: cltrain {res['cltrain_' + what]:.6f}, autocast "
                      f"{res[what]:.6f}, relative {rel:.2e} (tolerance {tol:g})")
                if not rel <= tol:
                    bad.append(f"{kind} {mode} {what}: cltrain {res['cltrain_' + what]} vs "
                               f"autocast {res[what]} ({rel:.2e} > {tol:g})")
    for b in bad:
        print(f"FAIL: {b}")
    if not bad:
        print("passed")
    return 1 if bad else 0


def main():
    half = sys.argv[1:2] == ["--cltrain-16bit"]
    args = sys.argv[2:] if half else sys.argv[1:]
    if len(args) != 2:
        print(__doc__)
        return 2
    bench, script = args
    try:
        import torch  # noqa: F401
    except ImportError:
        print("skipping: PyTorch is not installed")
        return 77
    spec = importlib.util.spec_from_file_location(
        "torch_train", os.path.join(os.path.dirname(script), "torch_train.py"))
    tt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tt)
    if half:
        return check_16bit(bench, script, tt)
    with tempfile.TemporaryDirectory() as tmp:
        init, cl, out = (os.path.join(tmp, n) for n in ("init", "cl.json", "autocast.json"))
        os.mkdir(init)
        p = subprocess.run([bench, "--quick", "--sections", "train", "--cold-runs", "0", "--runs",
                            "1", "--warmup", "0", "--train-init", init, "--json", cl],
                           capture_output=True, text=True)
        if p.returncode != 0 and "no OpenCL" in p.stderr:
            print("skipping: no OpenCL device")
            return 77
        if p.returncode != 0:
            print(f"cltrain-bench failed ({p.returncode}): {p.stderr}")
            return 1
        p = subprocess.run([sys.executable, script, "--init", init, "--json", out],
                           capture_output=True, text=True)
        print(p.stderr, end="")
        if p.returncode != 0:
            print(f"torch_autocast.py failed ({p.returncode})")
            return 1
        with open(out) as f:
            doc = json.load(f)
        want = tt.cltrain_losses(cl)
    bad = []
    for kind in tt.BUILTIN:
        res = doc["models"].get(kind)
        if not res or set(res) != {"fp32", "fp16", "bf16"}:
            bad.append(f"{kind}: modes {sorted(res or {})}")
            continue
        for what in ("loss_init_eval", "loss_step1", "loss_step2"):
            ref = res["fp32"][what]
            for mode in ("fp32", "fp16", "bf16"):
                if not math.isfinite(res[mode][what]):
                    bad.append(f"{kind} {mode} {what} = {res[mode][what]}")
            cl_ref = want[kind][what]
            if not (kind == "cnn" and what != "loss_init_eval") and \
                    abs(ref - cl_ref) > FP32_RTOL * abs(cl_ref):
                bad.append(f"{kind} fp32 {what} {ref} is not cltrain's {cl_ref}")
            for mode in ("fp16", "bf16"):
                if not res[mode][what + "_rel_fp32"] <= HALF_RTOL:
                    bad.append(f"{kind} {mode} {what}: {res[mode][what]} vs fp32 {ref}")
        if len(res["fp16"].get("scale", [])) != 2:
            bad.append(f"{kind} fp16: no scale per step")
    for b in bad:
        print(f"FAIL: {b}")
    if not bad:
        print("passed")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
