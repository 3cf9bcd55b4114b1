#!/usr/bin/env python3
"""check_torch_autocast.py: checks bench/torch_autocast.py against cltrain-bench --train-init.

    python3 check_torch_autocast.py CLTRAIN_BENCH TORCH_AUTOCAST_PY

cltrain-bench --quick --sections train --train-init DIR writes the mlp, cnn and gpt
checkpoints and its losses; torch_autocast.py then runs two steps of each model in fp32, fp16
and bf16 and writes its JSON, which must hold, for every model and mode, finite losses; fp32's
must equal cltrain's within 1e-3 relative (cnn's training losses aside: PyTorch's dropout
masks are not cltrain's); the 16-bit modes' must lie within 2e-2 relative of fp32's (autocast's
own error on these models is near 1e-3 at most), and fp16 must report its scale.

Exit status: 0 passed, 1 failed, 77 skipped (no OpenCL device, or no PyTorch).
"""
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile

FP32_RTOL = 1e-3
HALF_RTOL = 2e-2


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    bench, script = sys.argv[1], sys.argv[2]
    try:
        import torch  # noqa: F401
    except ImportError:
        print("skipping: PyTorch is not installed")
        return 77
    spec = importlib.util.spec_from_file_location(
        "torch_train", os.path.join(os.path.dirname(script), "torch_train.py"))
    tt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tt)
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
