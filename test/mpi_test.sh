#!/bin/sh
# `cltrain train` across two MPI ranks on localhost (docs/parallel.md, "Across processes
# (MPI)"), on PoCL with a small MLP on a generated CSV:
# - 20 steps on a global batch of 31 (odd: 16 rows on rank 0, 15 on rank 1) give every
#   step's loss of one process trained on the same 31 rows within 1e-5 + 1e-5 |loss| (fp32:
#   the two ranks' gradients are summed in another order than one device's rows), and a
#   second run gives the same losses to the last digit;
# - 10 steps, a checkpoint, a resume for 10 more give the uninterrupted run's losses;
# - a resume on another number of ranks is refused with a message naming both counts, and
#   under Open MPI the ranks that find it exit without MPI_Abort;
# - an option that differs on one rank (MPMD), a bad option on one rank, and a rank killed
#   with SIGKILL end the whole job within a bounded time with that rank's message.
# Usage: mpi_test.sh CLTRAIN MPIRUN|none|no-mpirun. Without MPI in the build (none) it checks
# the refusal to run as one of several processes, and skips (77) the rest; with MPI but no
# mpirun (no-mpirun) it skips.
set -u
exe=$1
mpirun=$2
. "$(dirname "$0")/cli_lib.sh"

awk 'BEGIN { srand(11); print "a,b,c,d,e,f,label";
    for (i = 0; i < 640; i++) { s = 0; for (k = 0; k < 6; k++) { x[k] = rand(); s += x[k] }
        l = int(s * 4 / 6.0001); printf "%.4f,%.4f,%.4f,%.4f,%.4f,%.4f,%d\n",
        x[0], x[1], x[2], x[3], x[4], x[5], l } }' >"$tmp/points.csv"
set -- train --model mlp --width 24 --data "csv:$tmp/points.csv" --batch 31 --epochs 2 \
    --steps 20 --log-every 1 --lr 0.01 --val-fraction 0.1

if [ "$mpirun" = no-mpirun ]; then
    echo "SKIP: this build has MPI, but mpirun is not installed (Debian: openmpi-bin)"
    exit 77
fi
if [ "$mpirun" = none ]; then
    # What mpirun tells its processes: a build without MPI must not train 2 models apart.
    check "no MPI under a launcher" 1 env OMPI_COMM_WORLD_SIZE=2 OMPI_COMM_WORLD_RANK=0 \
        "$exe" "$@"
    expect_err "no MPI under a launcher" "no MPI support"
    [ "$failed" -eq 0 ] || finish
    echo "SKIP: this build has no MPI (meson feature mpi: Open MPI not found, or disabled);" \
        "only the refusal to run under a launcher was checked"
    exit 77
fi

# As CI runs it: as root, on 2 cores. Containers often forbid the shared-memory transport's
# single-copy mechanism (ptrace); plain copies work everywhere.
root=""
[ "$(id -u)" -eq 0 ] && root=--allow-run-as-root
OMPI_MCA_btl_vader_single_copy_mechanism=none
export OMPI_MCA_btl_vader_single_copy_mechanism
mpi() { # mpi N ARGS...: cltrain ARGS on N ranks
    n=$1
    shift
    "$mpirun" $root --oversubscribe -np "$n" "$exe" "$@"
}

# The (step, loss) pairs of a metrics file's train records.
losses() {
    sed -n 's/.*"type":"train".*"step":\([0-9]*\),"loss":\([^,]*\),.*/\1 \2/p' "$1"
}

# ---- Equal to one process, identical run to run ---------------------------------------------
check "one process" 0 "$exe" "$@" --metrics "$tmp/one.jsonl"
check "two ranks" 0 mpi 2 "$@" --metrics "$tmp/two.jsonl" --out "$tmp/two.safetensors"
expect_err "two ranks" "over 2 ranks"
losses "$tmp/one.jsonl" >"$tmp/one.txt"
losses "$tmp/two.jsonl" >"$tmp/two.txt"
[ "$(wc -l <"$tmp/two.txt")" -eq 20 ] && ok || fail "two ranks: $(wc -l <"$tmp/two.txt") losses, not 20"
paste -d' ' "$tmp/one.txt" "$tmp/two.txt" | awk '
    { d = $2 - $4; if (d < 0) d = -d; a = $2 < 0 ? -$2 : $2; if (d > worst) worst = d
      if ($1 != $3 || d > 1e-5 + 1e-5 * a) { print "step " $1 ": " $2 " against " $4; bad = 1 } }
    END { printf "two ranks against one process: largest difference %.3g\n", worst; exit bad }' \
    >"$tmp/out" 2>"$tmp/err" && ok || fail "two ranks differ from one process"
cat "$tmp/out"
# Only rank 0 wrote: one train record per step, one final evaluation.
[ "$(grep -c '"type":"eval"' "$tmp/two.jsonl")" -eq 2 ] && ok \
    || fail "two ranks: $(grep -c '"type":"eval"' "$tmp/two.jsonl") eval records, not 2 (epoch end and the end)"
check "two ranks again" 0 mpi 2 "$@" --metrics "$tmp/again.jsonl"
losses "$tmp/again.jsonl" >"$tmp/again.txt"
same "two ranks run to run" "$tmp/two.txt" "$tmp/again.txt"

# ---- Checkpoint and resume across the ranks -------------------------------------------------
check "stop at 10" 0 mpi 2 "$@" --stop-at 10 --metrics "$tmp/resumed.jsonl" \
    --out "$tmp/ck.safetensors"
check "resume" 0 mpi 2 train --resume "$tmp/ck.safetensors" --metrics "$tmp/resumed.jsonl" \
    --out "$tmp/ck.safetensors"
expect_err "resume" "resuming"
losses "$tmp/resumed.jsonl" >"$tmp/resumed.txt"
same "resumed losses" "$tmp/two.txt" "$tmp/resumed.txt"

# ---- Another number of ranks ----------------------------------------------------------------
check "resume on one process" 2 "$exe" train --resume "$tmp/ck.safetensors"
expect_err "resume on one process" "saved by a run over 2 MPI ranks, and this run has 1"
check "stop at 10, one process" 0 "$exe" "$@" --stop-at 10 --out "$tmp/one.safetensors"
check "resume on two ranks" 2 mpi 2 train --resume "$tmp/one.safetensors"
expect_err "resume on two ranks" "saved by a run over 1 MPI rank, and this run has 2"
# Both ranks fail there. Under Open MPI they exit without MPI_Abort, whose message to mpirun
# races with the job's end (mpirun garbled it, or crashed, when the ranks aborted).
if "$mpirun" --version 2>/dev/null | grep -q "Open MPI"; then
    ! grep -q "MPI_ABORT was invoked\|ORTE_ERROR_LOG" "$tmp/err" && ok \
        || fail "resume on two ranks: a rank called MPI_Abort under Open MPI"
fi

# ---- An error on one rank ends every rank ---------------------------------------------------
# Another --batch on rank 1 (two programs, one each): found before the first step.
check "ranks differ" 1 "$mpirun" $root --oversubscribe -np 1 "$exe" "$@" : -np 1 "$exe" "$@" \
    --batch 32
expect_err "ranks differ" "(rank 1 of 2): the global batch is 32 here and 31 on rank 0"
check "bad option on one rank" 2 "$mpirun" $root --oversubscribe -np 1 "$exe" "$@" : -np 1 \
    "$exe" "$@" --lr -1
expect_err "bad option on one rank" "(rank 1 of 2)"

# ---- A rank killed with SIGKILL -------------------------------------------------------------
# A long run; once rank 0 has logged 3 steps, rank 1 is killed; mpirun must end the job.
"$mpirun" $root --oversubscribe -np 2 "$exe" train --model mlp --width 24 \
    --data "csv:$tmp/points.csv" --batch 31 --epochs 100000 --log-every 1 \
    --metrics "$tmp/killed.jsonl" >"$tmp/out" 2>"$tmp/err" &
job=$!
rank1=""
i=0
while [ $i -lt 600 ] && kill -0 "$job" 2>/dev/null; do
    logged=$(grep -c '"type":"train"' "$tmp/killed.jsonl" 2>/dev/null)
    if [ -z "$rank1" ] && [ "${logged:-0}" -ge 3 ]; then
        for d in /proc/[0-9]*; do # mpirun's children (no pgrep in slim images)
            [ "$(cut -d' ' -f4 "$d/stat" 2>/dev/null)" = "$job" ] || continue
            tr '\0' '\n' <"$d/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1 \
                && rank1=${d#/proc/}
        done
        [ -n "$rank1" ] && kill -KILL "$rank1" && i=0 && killed_at=$(date +%s)
    fi
    [ -n "$rank1" ] && [ $i -ge 600 ] && break
    sleep 0.1
    i=$((i + 1))
done
if kill -0 "$job" 2>/dev/null; then
    kill "$job"
    wait "$job"
    fail "killed rank: the job still ran 60 s after$([ -z "$rank1" ] && echo " no rank was") killed"
else
    wait "$job"
    got=$?
    echo "killed rank: the job ended $(($(date +%s) - ${killed_at:-0})) s after the kill, status $got"
    [ -n "$rank1" ] && [ "$got" -ne 0 ] && ok || fail "killed rank: status $got, rank 1 pid '$rank1'"
    expect_err "killed rank" "rank 1 .*exited on signal 9"
fi
finish
