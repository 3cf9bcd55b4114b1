#!/usr/bin/env python3
"""bench_test.py: checks cltrain-bench (docs/bench.md) without timing thresholds.

    python3 bench_test.py CLTRAIN_BENCH

1. A --quick run on the device chosen by CLTRAIN_DEVICE writes JSON, CSV and SVG. The JSON
   has every section for every device, with figures whose median, minimum and maximum are
   positive and finite (min <= median <= max); the CSV holds the same figures; the SVG is
   well-formed XML. The run has --profile: each device whose timing is by profiling events
   has a kernel profile per trained model, with a GEMM and the optimizer among its kernels,
   rows most time first, whole launch counts per step, and kernel and op times that sum to
   the same total, at most the step's span.
2. --from and --compare: results compared with themselves show no regression; a baseline
   with one figure made much better shows that figure as a regression, and
   --fail-on-regression turns it into exit status 3. A file without "profile" (older
   results) loads and compares; one with a malformed profile is refused.
3. --precision: a default run's train figures all carry "precision": "fp32" (and the CSV's
   precision column says so), none is named MODEL@...; a run of mlp with --precision
   fp16,bf16 has, for each, either the figures MODEL@P.* with "precision": P (activations
   below fp32's, no fp32 split) or the note that the library refuses P and no such figure
   (a build that trains in fp32 only); 16-bit figures (made from fp32's when refused) load,
   are summarised and compare; a "precision" that disagrees with the name is refused.
4. Bad input (unknown options, missing or bad values, unreadable or malformed baselines)
   gives one message on stderr and exit status 2.
Exit status 77 (skip) when there is no OpenCL device at all.
"""
import copy
import csv
import json
import math
import os
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET

SECTIONS = ["micro", "gemm", "ops", "train"]
ENV_KEYS = ["platform", "device", "driver_version", "opencl_c_version", "clblast_version",
            "compute_units", "clock_mhz", "global_mem_mib"]
# Figures every device of a quick run must have (a few per section).
REQUIRED = {
    "micro": ["bandwidth.read", "bandwidth.write", "bandwidth.copy", "peak.float",
              "peak.float4", "peak.float8", "launch.enqueue_to_start", "launch.round_trip",
              "transfer.host_to_device", "transfer.device_to_host"],
    "gemm": ["chosen.square_512", "clblast.square_512", "own.square_512",
             "clblast.square_512.pct_peak", "chosen.square_512.pct_peak"],
    # One pair per op of the registry but views (a few of them here), and the optimizer.
    "ops": [f"{op}.{p}" for op in ["activation", "add", "linear", "conv2d", "pool2d",
                                   "batch_norm", "layer_norm", "softmax", "cross_entropy",
                                   "sdpa", "embedding"]
            for p in ["fwd", "bwd"]] + ["optim.adamw.step"],
    "train": ["mlp.samples_per_s", "mlp.forward_ms", "mlp.backward_ms", "mlp.optimizer_ms",
              "mlp.peak_memory_mib", "mlp.first_step_cold_s", "mlp.first_step_warm_s",
              "cnn.samples_per_s", "gpt.samples_per_s", "gpt.tokens_per_s",
              "mlp.step_host_ms", "cnn.step_host_ms", "gpt.step_host_ms", "gpt.step_call_ms"],
}

failures = []


def check(cond, what):
    if not cond:
        failures.append(what)
        print("FAIL:", what)


def run(exe, *args, want=None):
    p = subprocess.run([exe, *args], capture_output=True, text=True)
    if want is not None:
        check(p.returncode == want,
              f"{' '.join(args)}: exit {p.returncode}, wanted {want}; stderr: {p.stderr[-2000:]}")
    return p


def check_results(doc):
    check(doc.get("tool") == "cltrain-bench", "tool field")
    devices = doc.get("devices", [])
    check(len(devices) >= 1, "at least one device")
    count = 0
    for d in devices:
        env = d.get("environment", {})
        for k in ENV_KEYS:
            check(k in env and str(env[k]) != "", f"environment has {k}")
        # The machine's idle settings, where this machine has them (docs/ci.md).
        for k, path in (("cpuidle_driver", "/sys/devices/system/cpu/cpuidle/current_driver"),
                        ("guest_halt_poll_ns",
                         "/sys/module/haltpoll/parameters/guest_halt_poll_ns")):
            try:
                with open(path) as f:
                    want = f.read().split()[0]
            except (OSError, IndexError):
                continue
            check(str(env.get(k)) == want, f"environment {k} is {want} as {path} says")
        for s in SECTIONS:
            figs = d.get(s)
            check(isinstance(figs, list) and len(figs) > 0, f"{d.get('id')}: section {s}")
            names = {f["name"] for f in figs or []}
            for r in REQUIRED[s]:
                check(r in names, f"{d.get('id')}: {s}.{r} present")
            if s == "gemm":
                # The training shapes come from the built-in models' plans.
                for m in ("mlp", "cnn", "gpt"):
                    check(any(n.startswith(f"chosen.{m}_") for n in names),
                          f"{d.get('id')}: gemm has {m}'s training shapes")
            for f in figs or []:
                count += 1
                vals = [f.get(k) for k in ("median", "min", "max")]
                ok = all(isinstance(v, (int, float)) and math.isfinite(v) and v > 0
                         for v in vals)
                check(ok, f"{s}.{f.get('name')}: positive finite figures {vals}")
                if ok:
                    check(vals[1] <= vals[0] <= vals[2], f"{s}.{f['name']}: min<=median<=max")
                check(f.get("better") in ("higher", "lower"), f"{s}.{f.get('name')}: better")
                check(isinstance(f.get("runs"), int) and f["runs"] >= 1, f"{f.get('name')} runs")
    return count


def check_profiles(doc):
    for d in doc.get("devices", []):
        if d.get("environment", {}).get("timing") != "profiling events":
            check("profile" not in d, f"{d.get('id')}: no profile without usable timestamps")
            continue
        profs = d.get("profile")
        check(isinstance(profs, list), f"{d.get('id')}: profile present")
        models = {p.get("model") for p in profs or []}
        check({"mlp", "cnn", "gpt"} <= models, f"{d.get('id')}: profile of every model {models}")
        for p in profs or []:
            what = f"{d.get('id')}: profile {p.get('model')}"
            ks, ops = p.get("kernels", []), p.get("ops", [])
            names = [k["name"] for k in ks]
            check(any("gemm" in n for n in names), f"{what}: a GEMM kernel in {names}")
            check(any(n.startswith("optim_") for n in names), f"{what}: optimizer kernels")
            check(any(o["name"] == "optimizer.update" for o in ops), f"{what}: optimizer op")
            for rows in (ks, ops):
                ms = [r["ms_per_step"] for r in rows]
                check(ms == sorted(ms, reverse=True), f"{what}: rows most time first")
                for r in rows:
                    calls = r["calls_per_step"]
                    check(calls >= 1 and abs(calls - round(calls)) < 1e-9,
                          f"{what}: {r['name']} whole launches per step ({calls})")
                    check(r["ms_per_step"] >= 0, f"{what}: {r['name']} time")
            kms, oms = sum(r["ms_per_step"] for r in ks), sum(r["ms_per_step"] for r in ops)
            check(kms > 0 and abs(kms - oms) <= 1e-6 * kms + 1e-9,
                  f"{what}: kernels {kms} ms and ops {oms} ms per step")
            check(kms <= p["step_ms"] * (1 + 1e-9), f"{what}: kernels {kms} <= span {p['step_ms']}")


def check_precision_field(doc):
    """Every train figure of a default run is fp32's, named as before --precision."""
    for d in doc.get("devices", []):
        for s in SECTIONS:
            for f in d.get(s, []):
                want = "fp32" if s == "train" else None
                check(f.get("precision") == want,
                      f"{s}.{f.get('name')}: precision {f.get('precision')!r}, wanted {want!r}")
                check("@" not in f.get("name", ""), f"{s}.{f.get('name')}: no @ in a default run")


def check_16bit(exe, out):
    """A run of mlp in fp16 and bf16: trained, or refused by a build that trains in fp32."""
    p = run(exe, "--quick", "--quiet", "--sections", "train", "--models", "mlp", "--precision",
            "fp16,bf16", "--cold-runs", "0", "--runs", "1", "--warmup", "0", "--json",
            out("p.json"), "--csv", out("p.csv"), want=0)
    if p.returncode != 0:
        return
    with open(out("p.json")) as f:
        doc = json.load(f)
    with open(out("p.csv"), newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["section"] == "train"]
    for d in doc["devices"]:
        figs = {f["name"]: f for f in d["train"]}
        check(not any(n.startswith("mlp.") for n in figs), f"no fp32 figures without fp32: {figs}")
        for prec in ("fp16", "bf16"):
            mine = {n: f for n, f in figs.items() if n.startswith(f"mlp@{prec}.")}
            refused = f"train: mlp@{prec} not run: the library refuses precision {prec}"
            if refused in d["notes"]:
                check(not mine, f"{prec}: refused, yet figures {sorted(mine)}")
                print(f"bench --precision: this build refuses {prec}")
                continue
            for what in ("samples_per_s", "step_host_ms", "peak_memory_mib", "activations_mib",
                         "activations_vs_fp32"):
                f = mine.get(f"mlp@{prec}.{what}")
                check(f is not None and f["precision"] == prec and f["median"] > 0,
                      f"{prec}: mlp@{prec}.{what} with precision {prec}: {f}")
            ratio = mine.get(f"mlp@{prec}.activations_vs_fp32", {}).get("median", 1)
            check(0 < ratio < 1, f"{prec}: activations {ratio} of fp32's")
            check(f"mlp@{prec}.forward_ms" not in mine, f"{prec}: the split is fp32's only")
            check(all(r["precision"] == prec for r in rows if r["name"].startswith(f"mlp@{prec}.")),
                  f"{prec}: the CSV's precision column")


def check_16bit_reports(exe, out, doc):
    """16-bit figures (fp32's renamed) load, show in the summary, and compare."""
    half = copy.deepcopy(doc)
    for d in half["devices"]:
        extra = []
        for f in d["train"]:
            model, _, what = f["name"].partition(".")
            if model == "mlp":
                g = dict(f, name=f"mlp@fp16.{what}", precision="fp16")
                extra.append(g)
        d["train"] += extra
    with open(out("half.json"), "w") as f:
        json.dump(half, f)
    p = run(exe, "--from", out("half.json"), "--compare", out("half.json"), want=0)
    check("training mlp@fp16 (samples/s)" in p.stdout, "the summary has a row for mlp@fp16")
    check(" 0 regressions" in p.stdout, "16-bit figures compare with themselves")
    p = run(exe, "--from", out("half.json"), "--compare", out("a.json"), want=0)
    check("not in the baseline" in p.stdout and " 0 regressions" in p.stdout,
          "16-bit figures against an fp32-only baseline")
    p = run(exe, "--from", out("half.json"), "--json", out("half2.json"), want=0)
    with open(out("half2.json")) as f:
        again = json.load(f)
    check([f.get("precision") for f in again["devices"][0]["train"]] ==
          [f.get("precision") for f in half["devices"][0]["train"]], "precision survives --from")
    wrong = copy.deepcopy(half)
    wrong["devices"][0]["train"][-1]["precision"] = "bf16"
    with open(out("wrong_precision.json"), "w") as f:
        json.dump(wrong, f)
    stray = copy.deepcopy(doc)
    stray["devices"][0]["micro"][0]["precision"] = "fp32"
    with open(out("stray_precision.json"), "w") as f:
        json.dump(stray, f)
    old = copy.deepcopy(doc)
    for d in old["devices"]:
        for f in d["train"]:
            f.pop("precision", None)
    with open(out("no_precision.json"), "w") as f:
        json.dump(old, f)
    p = run(exe, "--from", out("no_precision.json"), "--compare", out("a.json"), want=0)
    check(" 0 regressions" in p.stdout, "a file without precision (older results) compares")


def main():
    with tempfile.TemporaryDirectory(prefix="cltrain-bench-test-") as tmp:
        return check_all(sys.argv[1], lambda name: os.path.join(tmp, name))


def check_all(exe, out):

    listing = run(exe, "--list")
    if listing.returncode != 0 or "no OpenCL devices" in listing.stdout:
        print("no OpenCL device; skipping")
        return 77

    # 1. A quick run and its three files.
    p = run(exe, "--quick", "--quiet", "--profile", "--json", out("a.json"), "--csv",
            out("a.csv"), "--svg", out("a.svg"), want=0)
    print(p.stdout)
    if p.returncode != 0:
        return 1
    with open(out("a.json")) as f:
        doc = json.load(f)
    nfig = check_results(doc)
    check_profiles(doc)
    check_precision_field(doc)
    with open(out("a.csv"), newline="") as f:
        rows = list(csv.DictReader(f))
    figs = [r for r in rows if r["section"] != "environment"]
    check(len(figs) == nfig, f"CSV has {len(figs)} figures, JSON {nfig}")
    for r in figs:
        check(math.isfinite(float(r["median"])) and float(r["median"]) > 0,
              f"CSV {r['name']} median")
    check({r["section"] for r in figs} == set(SECTIONS), "CSV has every section")
    check(all(r["precision"] == ("fp32" if r["section"] == "train" else "") for r in figs),
          "CSV precision column: fp32 for train figures, empty for the others")
    root = ET.parse(out("a.svg")).getroot()
    check(root.tag.endswith("svg") and len(root) > 10, "SVG is a chart")

    # 2. --from and --compare.
    p = run(exe, "--from", out("a.json"), "--compare", out("a.json"), "--csv", out("b.csv"),
            want=0)
    check(" 0 regressions" in p.stdout and "REGRESSION" not in p.stdout, "self comparison")
    better = copy.deepcopy(doc)
    fig = better["devices"][0]["micro"][0]  # bandwidth.read: higher is better
    fig["median"] *= 4
    with open(out("better.json"), "w") as f:
        json.dump(better, f)
    p = run(exe, "--from", out("a.json"), "--compare", out("better.json"), "--threshold", "5",
            want=0)
    check("REGRESSION" in p.stdout, "a 4x better baseline shows a regression")
    run(exe, "--from", out("a.json"), "--compare", out("better.json"), "--fail-on-regression",
        want=3)
    p = run(exe, "--from", out("a.json"), "--compare", out("better.json"), "--svg",
            out("c.svg"), want=0)
    ET.parse(out("c.svg"))

    old = copy.deepcopy(doc)
    for d in old["devices"]:
        d.pop("profile", None)
    with open(out("old.json"), "w") as f:
        json.dump(old, f)
    p = run(exe, "--from", out("old.json"), "--compare", out("a.json"), want=0)
    check(" 0 regressions" in p.stdout, "a file without profile compares with one that has it")
    p = run(exe, "--from", out("a.json"), want=0)
    if any("profile" in d for d in doc["devices"]):
        check("profile mlp:" in p.stdout, "--from prints the profile")

    # 3. --precision.
    check_16bit(exe, out)
    check_16bit_reports(exe, out, doc)

    # 4. Bad input: one clear line, exit status 2.
    with open(out("broken.json"), "w") as f:
        f.write('{"tool": "cltrain-bench", "devices": [')
    missing = copy.deepcopy(doc)
    del missing["devices"][0]["gemm"]
    with open(out("missing.json"), "w") as f:
        json.dump(missing, f)
    bad_profile = copy.deepcopy(doc)
    bad_profile["devices"][0]["profile"] = [{"model": "mlp", "steps": 1, "step_ms": 1,
                                             "kernels": [{"name": "k"}], "ops": []}]
    with open(out("bad_profile.json"), "w") as f:
        json.dump(bad_profile, f)
    bad = [
        (["--from", out("bad_profile.json")], "calls_per_step"),
        (["--from", out("wrong_precision.json")], '"precision" must be "fp16"'),
        (["--from", out("stray_precision.json")], '"precision" must be "absent'),
        (["--precision", "fp8"], "--precision"),
        (["--precision", "fp32,half"], "--precision"),
        (["--precision", ","], "--precision"),
        (["--precision"], "needs a value"),
        (["--bogus"], "unknown option"),
        (["--json"], "needs a value"),
        (["--runs", "0"], "--runs"),
        (["--runs", "x"], "--runs"),
        (["--threshold", "abc"], "--threshold"),
        (["--sections", "micro,nope"], "unknown section"),
        (["--models", "mlp,resnet50"], "--models"),
        (["--models", ","], "--models"),
        (["--quick=1"], "takes no value"),
        (["--compare", out("does-not-exist.json")], "cannot read"),
        (["--compare", out("broken.json")], "malformed"),
        (["--from", out("missing.json")], "gemm"),
        (["--device", "no-such-device-xyz", "--sections", "micro"], "no device matches"),
    ]
    for args, text in bad:
        p = run(exe, *args, want=2)
        check(text in p.stderr, f"{args}: stderr mentions {text!r}: {p.stderr!r}")
        check(p.stdout == "", f"{args}: nothing on stdout")

    print(f"{nfig} figures checked; {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
