#!/usr/bin/env python3
"""check_torch_train.py: checks bench/torch_train.py against cltrain-bench --train-init.

    python3 check_torch_train.py CLTRAIN_BENCH TORCH_TRAIN_PY

1. cltrain-bench --quick --sections train --train-init DIR writes mlp, cnn and gpt
   checkpoints there and the figures loss_init_eval, loss_step1 and loss_step2 (finite,
   positive) of each.
2. Without PyTorch: torch_train.py's own safetensors reader reads every tensor of each
   checkpoint (F32, sizes that match the shapes), and its copy of the bench's batch generator
   gives the batch sizes of the train section; then the test skips (77): CI has no torch.
3. With PyTorch: torch_train.py --quick loads each checkpoint into its models, and must find
   the losses of cltrain within its default tolerance (exit status 0), and its JSON must be
   accepted by cltrain-bench --from ... --compare (exit status 0).
Exit status: 0 passed, 1 failed, 77 skipped (no OpenCL device, or no PyTorch after step 2).
"""
import importlib.util
import json
import math
import os
import subprocess
import sys
import tempfile


def run(*cmd):
    p = subprocess.run(cmd, capture_output=True, text=True)
    return p.returncode, p.stdout, p.stderr


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    bench, script = sys.argv[1], sys.argv[2]
    spec = importlib.util.spec_from_file_location("torch_train", script)
    tt = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tt)
    with tempfile.TemporaryDirectory() as tmp:
        init, cl = os.path.join(tmp, "init"), os.path.join(tmp, "cl.json")
        os.mkdir(init)
        rc, out, err = run(bench, "--quick", "--sections", "train", "--cold-runs", "0",
                           "--runs", "1", "--warmup", "0", "--train-init", init, "--json", cl)
        if rc != 0 and "no OpenCL" in err:
            print("skipping: no OpenCL device")
            return 77
        if rc != 0:
            print(f"cltrain-bench failed ({rc}): {err}")
            return 1
        losses = tt.cltrain_losses(cl)
        for kind in tt.BUILTIN:
            batch = tt.CASES[kind][0]
            for what in ("loss_init_eval", "loss_step1", "loss_step2"):
                v = losses.get(kind, {}).get(what)
                if v is None or not math.isfinite(v) or v <= 0:
                    print(f"{kind}.{what}: {v}, want a finite positive loss")
                    return 1
            tensors, meta = tt.read_safetensors(os.path.join(init, kind + ".safetensors"))
            if meta.get("bench.batch") != str(batch) or meta.get("bench.model") != kind:
                print(f"{kind}: metadata {meta}")
                return 1
            for name, (dtype, shape, raw) in tensors.items():
                if dtype != "F32" or len(raw) != 4 * math.prod(shape):
                    print(f"{kind}: {name} is {dtype} {shape} with {len(raw)} bytes")
                    return 1
            x, y = tt.bench_inputs(kind, batch)
            per = tt.DEFAULTS["gpt"]["context"] if kind == "gpt" else 1
            if len(y) != batch * per or len(x) % batch:
                print(f"{kind}: batch generator gave {len(x)} inputs and {len(y)} labels")
                return 1
        try:
            import torch  # noqa: F401
        except ImportError:
            print("skipping the PyTorch half: torch is not installed")
            return 77
        ref = os.path.join(tmp, "torch.json")
        rc, out, err = run(sys.executable, script, "--init", init, "--cltrain", cl, "--json",
                           ref, "--quick", "--runs", "1", "--warmup", "0")
        if rc != 0:
            print(f"torch_train.py failed ({rc}):\n{out}\n{err}")
            return 1
        with open(ref) as f:
            names = {fig["name"] for fig in json.load(f)["devices"][0]["train"]}
        for kind in tt.BUILTIN:
            if f"{kind}.samples_per_s" not in names:
                print(f"torch.json lacks {kind}.samples_per_s")
                return 1
        rc, out, err = run(bench, "--from", cl, "--compare", ref)
        if rc != 0 or "mlp.samples_per_s" not in out:
            print(f"cltrain-bench --compare failed ({rc}):\n{out}\n{err}")
            return 1
    print("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
