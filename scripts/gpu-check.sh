#!/bin/bash
# gpu-check.sh: cltrain on a GPU machine that has a driver but no OpenCL loader, no Debian
# packages and no network (the GPU issue; docs/gpu.md says how to use it).
#
#   bash scripts/gpu-check.sh --prepare [DIR]          on this (Debian) machine
#   bash scripts/gpu-check.sh --run RESULTS [DIR]      on the GPU machine, from the repo root
#
# --prepare builds a release build into DIR (default .gpu, ignored by git), copies the
# programs, the device tests and the libraries they need that a non-Debian machine may lack
# (extracted from Debian packages with apt-get download and dpkg-deb -x: the ICD loader,
# CLBlast, cJSON, cmocka, OpenBLAS, zlib...), Fashion-MNIST and the bench's PyTorch scripts.
# DIR then travels to the GPU machine (the device tool's `carry`).
#
# --run finds NVIDIA's OpenCL library (libnvidia-opencl.so.1) under the driver's folders,
# writes an ICD file for it and points the loader at it (OCL_ICD_VENDORS), then: prints
# `cltrain devices`; runs the device tests with the NVIDIA device selected; runs
# cltrain-bench's micro, GEMM and training sections, the large models' training (gpt2s,
# resnet18) and PyTorch's CUDA references (TF32 off); trains the README's main job for one
# epoch. Every log and JSON file goes into RESULTS, with
# summary.txt saying what passed. Each step has its own time limit so the whole run stays
# under 8 minutes. Without NVIDIA's library it says what it searched and exits 3: a finding,
# not something to hide.
#
# GPU_CHECK_DEVICE (default nvidia) selects another device; GPU_CHECK_DEVICE=pocl with
# GPU_CHECK_NO_ICD=1 rehearses the run on the CPU machine; GPU_CHECK_TESTS="test_gemm ..."
# runs only those tests; GPU_CHECK_MODELS (default gpt2s,resnet18; empty: none) the large
# models benched; GPU_CHECK_TORCH=cpu runs the PyTorch references on the CPU; GPU_CHECK_QUICK=1
# passes --quick to the bench and the references (a rehearsal on a slow device).
set -uo pipefail

die() {
    echo "gpu-check: $*" >&2
    exit 1
}

# Libraries glibc, GCC's runtime and the driver provide; never bundled (a newer system copy
# must win, or the driver's own libraries would load an older one).
system_lib() {
    case "$1" in
    libc.so* | libm.so* | libpthread.so* | libdl.so* | librt.so* | ld-linux* | libstdc++.so* | \
        libgcc_s.so* | libOpenCL.so*) return 0 ;;
    esac
    return 1
}

prepare() {
    local dir=${1:-.gpu}
    [ -f meson.build ] || die "run from the repository root"
    command -v apt-get >/dev/null || die "--prepare needs a Debian machine (apt-get)"
    rm -rf "$dir/bin" "$dir/lib" "$dir/tests" "$dir/data" "$dir/bench" "$dir/debs"
    mkdir -p "$dir"/{bin,lib,tests,data,bench,debs} || die "cannot make $dir"
    # Ignored, so that the device tool carries only the folders named (in a worktree, .git is
    # a file and the exclude list is the common one's).
    local exclude
    exclude=$(git rev-parse --git-path info/exclude 2>/dev/null) || exclude=.git/info/exclude
    grep -qx "/$dir/" "$exclude" 2>/dev/null || echo "/$dir/" >>"$exclude"
    echo "gpu-check: building (release) into $dir/build"
    # No host BLAS: a GPU does not use it, and OpenBLAS would not fit the 64 MiB that travel.
    local opts=(--buildtype=release -Doclgrind_tests=disabled -Drusticl_tests=false
        -Dhost_blas=disabled)
    if [ -d "$dir/build" ]; then
        meson configure "$dir/build" "${opts[@]}" >/dev/null || die "meson configure failed"
    else
        meson setup "$dir/build" "${opts[@]}" >/dev/null || die "meson setup failed"
    fi
    meson compile -C "$dir/build" >/dev/null || die "build failed"
    cp "$dir/build/cltrain" "$dir/build/cltrain-bench" "$dir/bin/"
    find "$dir/build" -maxdepth 1 -name 'libcltrain.so*' ! -type d -exec cp -P {} "$dir/lib/" \;
    local t
    for t in "$dir"/build/test/test_*; do
        [ -x "$t" ] && [ -f "$t" ] && cp "$t" "$dir/tests/"
    done
    cp bench/*.py "$dir/bench/"
    cp -r test/data "$dir/tests/data"

    # The shared libraries the programs load, found by ldd, each traced to its Debian package.
    local libs pkgs=() lib path pkg
    libs=$(for f in "$dir"/bin/* "$dir"/tests/test_*; do ldd "$f"; done 2>/dev/null |
        awk '$3 ~ /^\// {print $1 " " $3}' | sort -u)
    while read -r lib path; do
        [ -n "$lib" ] || continue
        system_lib "$lib" && continue
        case "$path" in "$PWD"/*) continue ;; esac
        pkg=$(dpkg -S "$(readlink -f "$path")" 2>/dev/null | head -1 | cut -d: -f1)
        [ -n "$pkg" ] || pkg=$(dpkg -S "$path" 2>/dev/null | head -1 | cut -d: -f1)
        [ -n "$pkg" ] && pkgs+=("$pkg")
    done <<<"$libs"
    # The ICD loader itself (libOpenCL.so.1) is needed even though system_lib skips it above.
    pkgs+=(ocl-icd-libopencl1)
    mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)
    echo "gpu-check: packages: ${pkgs[*]}"
    chmod 777 "$dir/debs" # apt-get download runs as _apt where it can
    (cd "$dir/debs" && apt-get download "${pkgs[@]}" >/dev/null) || die "apt-get download failed"
    local root="$dir/debs/root"
    mkdir -p "$root"
    for d in "$dir"/debs/*.deb; do dpkg-deb -x "$d" "$root" || die "dpkg-deb -x $d failed"; done
    find "$root" -name '*.so*' \( -type f -o -type l \) | while read -r f; do
        system_lib "$(basename "$f")" && continue
        cp -P "$f" "$dir/lib/" 2>/dev/null
    done
    # libOpenCL.so.1 may be a link to a versioned file: copy what it points to as well.
    cp -L "$(find "$root" -name libOpenCL.so.1 | head -1)" "$dir/lib/libOpenCL.so.1" ||
        die "the ICD loader is missing from ocl-icd-libopencl1"
    rm -rf "$root" "$dir"/debs/*.deb

    local fm=/usr/share/datasets/fashion-mnist
    if ls "$fm"/*-ubyte* >/dev/null 2>&1; then
        cp "$fm"/*-ubyte* "$dir/data/"
    else
        echo "gpu-check: Fashion-MNIST not found in $fm (apt-get install dataset-fashion-mnist); the run will skip training" >&2
    fi
    # Check that every program resolves its libraries from $dir/lib alone.
    local missing
    missing=$(for f in "$dir"/bin/* "$dir"/tests/test_*; do
        LD_LIBRARY_PATH="$dir/lib" ldd "$f"; done 2>/dev/null | grep 'not found' | sort -u)
    [ -z "$missing" ] || die "libraries not found: $missing"
    echo "gpu-check: $dir holds $(du -sh "$dir" --exclude=build | cut -f1) without its build/ (carry $dir/bin $dir/lib $dir/tests $dir/data $dir/bench)"
}

# Runs a step with a time limit, its output into RESULTS/NAME.log; records the outcome.
step() {
    local name=$1 limit=$2
    shift 2
    local t0=$SECONDS
    timeout --kill-after=5 "$limit" "$@" >"$results/$name.log" 2>&1
    local rc=$?
    local what=ok
    [ $rc -eq 0 ] || what="FAILED (exit $rc)"
    [ $rc -eq 124 ] || [ $rc -eq 137 ] && what="TIMED OUT after ${limit}s"
    printf '%-32s %-24s %4ds\n' "$name" "$what" $((SECONDS - t0)) | tee -a "$results/summary.txt"
    return $rc
}

find_nvidia() {
    local d f
    local dirs=(/usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu
        /usr/lib64 /usr/lib /lib/x86_64-linux-gnu /usr/local/cuda/lib64 /opt/nvidia)
    for d in "${dirs[@]}"; do
        for f in "$d"/libnvidia-opencl.so.1 "$d"/libnvidia-opencl.so.*; do
            [ -e "$f" ] && {
                echo "$f"
                return 0
            }
        done
    done
    f=$(ldconfig -p 2>/dev/null | awk '/libnvidia-opencl\.so/ {print $NF; exit}')
    [ -n "$f" ] && {
        echo "$f"
        return 0
    }
    f=$(find /usr /opt /lib 2>/dev/null -name 'libnvidia-opencl.so*' | head -1)
    [ -n "$f" ] && {
        echo "$f"
        return 0
    }
    echo "searched: ${dirs[*]}, ldconfig -p, find /usr /opt /lib" >&2
    return 1
}

run() {
    results=${1:?--run needs a results folder}
    local dir=${2:-.gpu}
    [ -x "$dir/bin/cltrain" ] || die "$dir/bin/cltrain is missing: run --prepare first and carry $dir"
    mkdir -p "$results" || die "cannot make $results"
    : >"$results/summary.txt"
    dir=$(cd "$dir" && pwd)
    export LD_LIBRARY_PATH="$dir/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    export CLTRAIN_CACHE_DIR="$results/cache"
    local device=${GPU_CHECK_DEVICE:-nvidia}
    if [ -z "${GPU_CHECK_NO_ICD:-}" ]; then
        local lib
        if ! lib=$(find_nvidia 2>"$results/nvidia-search.txt"); then
            echo "gpu-check: NVIDIA's OpenCL library (libnvidia-opencl.so.1) is not on this machine" |
                tee -a "$results/summary.txt"
            cat "$results/nvidia-search.txt" | tee -a "$results/summary.txt"
            exit 3
        fi
        mkdir -p "$dir/icd"
        echo "$lib" >"$dir/icd/nvidia.icd"
        export OCL_ICD_VENDORS="$dir/icd"
        echo "NVIDIA OpenCL: $lib" | tee -a "$results/summary.txt"
    fi
    nvidia-smi >"$results/nvidia-smi.txt" 2>&1 || true
    step devices 60 "$dir/bin/cltrain" devices
    cat "$results/devices.log"
    grep -qi "$device" "$results/devices.log" ||
        echo "gpu-check: no device matches '$device'" | tee -a "$results/summary.txt"

    # The device tests, each with the device selected (the rest of the run goes on after a
    # failure: each log says what failed).
    local t name
    (cd "$dir/tests" && for t in ${GPU_CHECK_TESTS:-test_*}; do
        case "$t" in test_cli_units | test_tools | test_data | test_safetensors | test_status | \
            test_select | test_cache_format | test_kill | test_faults | test_memlimit) continue ;;
        esac
        name=${t#test_}
        CLTRAIN_DEVICE=$device step "test-$name" 150 ./"$t"
    done)

    # The bench, with --train-init for the PyTorch references: the built-in models, then the
    # large ones, the training figures that count on a GPU (docs/bench.md), with three runs
    # and no cold starts (each would compile and tune every kernel again).
    local bench=("$dir/bin/cltrain-bench" --device "$device")
    local models=${GPU_CHECK_MODELS-gpt2s,resnet18} quick=()
    [ -n "${GPU_CHECK_QUICK:-}" ] && quick=(--quick)
    mkdir -p "$results/init" "$results/init-large"
    rm -f "$results"/{bench,bench-large,torch_gemm,torch_train,torch_train_large}.json
    step bench 240 "${bench[@]}" "${quick[@]}" --sections micro,gemm,train \
        --train-init "$results/init" \
        --json "$results/bench.json"
    [ -z "$models" ] || step bench-large 240 "${bench[@]}" "${quick[@]}" --sections train \
        --models "$models" \
        --runs 3 --cold-runs 0 --train-init "$results/init-large" \
        --json "$results/bench-large.json"

    # PyTorch's references: CUDA with TF32 off (the scripts turn it off); GPU_CHECK_TORCH=cpu
    # runs them on the CPU instead, to rehearse.
    local torch_dev=${GPU_CHECK_TORCH:-cuda} cuda=()
    [ "$torch_dev" = cuda ] && cuda=(--cuda)
    local probe="import torch; assert '$torch_dev' == 'cpu' or torch.cuda.is_available()"
    if command -v python3 >/dev/null && python3 -c "$probe" 2>/dev/null; then
        step torch-gemm 120 python3 "$dir/bench/torch_gemm.py" --bench "$dir/bin/cltrain-bench" \
            --device "$device" "${cuda[@]}" "${quick[@]}" --json "$results/torch_gemm.json"
        [ -f "$results/bench.json" ] &&
            step torch-train 150 python3 "$dir/bench/torch_train.py" "${quick[@]}" \
                --init "$results/init" \
                --cltrain "$results/bench.json" --device "$torch_dev" \
                --json "$results/torch_train.json"
        [ -f "$results/bench-large.json" ] &&
            step torch-train-large 150 python3 "$dir/bench/torch_train.py" "${quick[@]}" \
                --models "$models" \
                --runs 3 --init "$results/init-large" --cltrain "$results/bench-large.json" \
                --device "$torch_dev" --json "$results/torch_train_large.json"
        local ours ref name pair
        for pair in gemm:bench:torch_gemm train:bench:torch_train \
            train-large:bench-large:torch_train_large; do
            IFS=: read -r name ours ref <<<"$pair"
            [ -f "$results/$ours.json" ] && [ -f "$results/$ref.json" ] &&
                "${bench[@]}" --from "$results/$ours.json" --compare "$results/$ref.json" \
                    >"$results/compare-$name.txt" 2>&1
        done
    else
        echo "PyTorch with $torch_dev not found: no reference" | tee -a "$results/summary.txt"
    fi
    if ls "$dir"/data/*idx*-ubyte* >/dev/null 2>&1; then
        step train-cnn-1-epoch 240 "$dir/bin/cltrain" train --device "$device" --model cnn \
            --data "idx:$dir/data" --epochs 1 --out "$results/cnn.safetensors" \
            --metrics "$results/metrics.jsonl"
    fi
    echo "gpu-check: results in $results"
}

case "${1:-}" in
--prepare)
    shift
    prepare "$@"
    ;;
--run)
    shift
    run "$@"
    ;;
*)
    sed -n '2,28p' "$0" | sed 's/^# \{0,1\}//'
    [ "${1:-}" = --help ] || [ "${1:-}" = -h ]
    ;;
esac
