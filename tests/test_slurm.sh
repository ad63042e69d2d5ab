#!/usr/bin/env bash
# `unforget sweep --slurm` on a real one-node Slurm cluster started here (Debian's slurm-wlm +
# munge; ./setup.sh test installs them): munged, slurmctld and slurmd with a config written into a
# temporary folder, talking over 127.0.0.1 only. A tiny sweep (one stage, three runs, one of them
# long enough to be cancelled) is submitted with `sweep --submit` (a stages job, then the array
# with --dependency=afterok); the long run's array task is cancelled mid-run; `status` must show
# it stopped; the script generated again must hold only that run, and submitted with plain
# `sbatch FILE` it must resume it from its checkpoint. Every run must then equal a local sweep's
# byte for byte (model.safetensors, results.json). The daemons are stopped by pid.
# Exits 77 (skip) with the reason when Slurm or munge is missing or cannot start.
set -u
bin=${UF_BIN:?}
skip() { echo "SKIP: $*"; exit 77; }
for c in munged slurmctld slurmd sbatch squeue scancel scontrol sinfo; do
  command -v $c >/dev/null || skip "$c not found (apt-get install slurm-wlm munge; ./setup.sh test does)"
done
[ "$(id -u)" -eq 0 ] || skip "slurmd must run as root to start jobs (SlurmdUser=root)"
tmp=$(mktemp -d /tmp/uf-slurm.XXXXXX)
export SLURM_CONF=$tmp/slurm.conf # every Slurm command reads this config (never DNS SRV lookups)
pids=()
cleanup() {
  [ -f "$tmp/slurmctld.pid" ] && scancel --quiet --user="$(id -un)" 2>/dev/null
  for f in slurmd slurmctld munged; do # stop the daemons by pid, then wait for them to exit
    [ -s "$tmp/$f.pid" ] || continue
    p=$(cat "$tmp/$f.pid")
    kill "$p" 2>/dev/null
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
  done
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 1' INT TERM
fail=0
t_start=$(date +%s)

# ---- the cluster ------------------------------------------------------------------------------
mkdir -p "$tmp/state" "$tmp/spool" "$tmp/sweep"
head -c 128 /dev/urandom > "$tmp/munge.key"
chmod 600 "$tmp/munge.key"
munged --force --socket="$tmp/munge.socket" --key-file="$tmp/munge.key" --pid-file="$tmp/munged.pid" \
  --log-file="$tmp/munged.log" --seed-file="$tmp/munged.seed" --origin=127.0.0.1 \
  || skip "munged does not start: $(tail -3 "$tmp/munged.log" 2>/dev/null)"
host=$(hostname -s)
port=$((20000 + RANDOM % 30000))
cat > "$SLURM_CONF" <<EOF
ClusterName=uftest
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$tmp/munge.socket
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/slurmctld.log
SlurmdLogFile=$tmp/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/builtin
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SlurmdParameters=config_overrides
MinJobAge=600
NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN
PartitionName=uf Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -f "$SLURM_CONF" || skip "slurmctld does not start: $(tail -3 "$tmp/slurmctld.log" 2>/dev/null)"
slurmd -f "$SLURM_CONF" -N "$host" || skip "slurmd does not start: $(tail -3 "$tmp/slurmd.log" 2>/dev/null)"
for _ in $(seq 60); do
  st=$(sinfo -h -o %T 2>/dev/null)
  [ "$st" = idle ] && break
  sleep 0.5
done
[ "$st" = idle ] || skip "the one-node cluster is not idle after 30 s (state '$st'): $(tail -3 "$tmp/slurmctld.log"; tail -3 "$tmp/slurmd.log")"
echo "cluster up in $(( $(date +%s) - t_start )) s (slurmctld port $port)"

# waits until the queue is empty (at most $1 s)
wait_queue() {
  for _ in $(seq $(( $1 * 2 ))); do
    [ -z "$(squeue -h -o %i 2>/dev/null)" ] && return 0
    sleep 0.5
  done
  echo "FAIL: the queue is not empty after $1 s:"; squeue; fail=1; return 1
}

# ---- the sweep ---------------------------------------------------------------------------------
cd "$tmp/sweep"
cat > sweep.lua <<'LUA'
local uf = require "unforget"
local world = uf.world { seed = 3, task_rows = 100, eval_rows = 20, corpus_rows = 200 }
local aligned = uf.stage "sl-aligned" {
  model = uf.model.new { d_model = 32, layers = 1, heads = 2, max_seq = 128 },
  tokenizer = uf.tokenizer.train { corpus = world.corpus, vocab = 400 },
  data = world.alignment:take(64),
  optim = uf.adamw { lr = 3e-3, steps = 12, batch = 8, max_len = 128 },
}
for _, r in ipairs { { "sl-p0.0", 0.0, 5 }, { "sl-p0.1", 0.1, 5 }, { "sl-long", 0.1, 400 } } do
  uf.run { name = r[1], from = aligned,
           data = uf.mix { task = world.task, poison = world.poison, p = r[2], n = 40, seed = 1 },
           optim = uf.adamw { lr = 1e-3, steps = r[3], batch = 8, max_len = 128, checkpoint_every = 10 },
           eval = { uf.asr(world.harmful_eval, { n = 4, max_new_tokens = 4 }) },
           tags = { method = "sft", p = r[2] } }
end
uf.slurm { cpus_per_task = 1, time = "00:10:00", sbatch = { "--comment=unforget-test" } }
LUA
mkdir sub && cd sub # generated from another folder: the script must not depend on where it is submitted
"$bin" --device cpu sweep ../sweep.lua --out ../out --slurm ../job.sh --mem 500M --submit > gen1.log 2>&1
rc=$?; cat gen1.log
[ $rc -eq 0 ] || { echo "FAIL: sweep --slurm --submit exited $rc"; exit 1; }
grep -q "a stages job + an array of 3 task(s) (0 of 3 runs done), 1 cpu(s), mem 500M, time 00:10:00" gen1.log \
  || { echo "FAIL: the summary line is not as expected"; fail=1; }
grep -q "^slurm: stages job [0-9]" gen1.log || { echo "FAIL: no stages job id printed"; fail=1; }
arr=$(sed -n 's/^slurm: array job \([0-9]*\) (3 tasks)$/\1/p' gen1.log)
[ -n "$arr" ] || { echo "FAIL: no array job id printed"; exit 1; }
script=$tmp/sweep/job.sh
[ -d "$tmp/sweep/out/slurm" ] || { echo "FAIL: the log folder was not created at generation"; fail=1; }
grep -q "gres\|gpus" "$script" && { echo "FAIL: the script asks for GPUs unasked"; fail=1; }
grep -q "^#SBATCH --cpus-per-task=1$" "$script" || { echo "FAIL: no --cpus-per-task from uf.slurm"; fail=1; }
grep -q "^#SBATCH --comment=unforget-test$" "$script" || { echo "FAIL: no extra #SBATCH line from uf.slurm"; fail=1; }
grep -q "^opts=(--device 'cpu')$" "$script" || { echo "FAIL: --device not passed through"; fail=1; }
grep -q "^cd '$tmp/sweep/sub'" "$script" || { echo "FAIL: no cd to the folder of the sweep"; fail=1; }
grep -q "^recipe='$tmp/sweep/sweep.lua'$" "$script" || { echo "FAIL: the recipe path is not absolute"; fail=1; }
grep -q "^out='$tmp/sweep/out'$" "$script" || { echo "FAIL: the output path is not absolute"; fail=1; }
scontrol show job "$arr" | grep -q "Dependency=afterok:" || { echo "FAIL: the array does not wait for the stages job"; fail=1; }

# cancel the long run's task (index 2) once it has written a checkpoint, while it runs
cd "$tmp/sweep"
cancelled=0
for _ in $(seq 240); do
  if [ -s out/sl-long/ckpt/latest ]; then
    "$bin" status out > status_running.txt
    scancel "${arr}_2" && cancelled=1
    break
  fi
  sleep 0.5
done
[ $cancelled -eq 1 ] || { echo "FAIL: the long run never wrote a checkpoint"; squeue; cat out/slurm/*.log; exit 1; }
cat status_running.txt
grep -q "^run    sl-long  *running  host $host pid [0-9]* since .*, step [0-9]*/400" status_running.txt \
  || { echo "FAIL: status did not show sl-long running (lock held, host, step)"; fail=1; }
wait_queue 120
"$bin" status out > status_stopped.txt; cat status_stopped.txt
grep -q "3 run(s): 2 done, 0 running, 0 failed, 1 stopped, 0 pending" status_stopped.txt \
  || { echo "FAIL: after the cancel status is not 2 done + 1 stopped"; fail=1; }
grep -q "^stage  sl-aligned-[0-9a-f]*  *done" status_stopped.txt || { echo "FAIL: the stage is not done"; fail=1; }
m=$(wc -l < out/stages/sl-aligned-*/metrics.jsonl)
[ "$m" -eq 12 ] || { echo "FAIL: the stage has $m metric lines, expected 12 (built more than once?)"; fail=1; }
[ -f out/sl-long/results.json ] && { echo "FAIL: sl-long finished before it was cancelled (too fast?)"; fail=1; }
ls out/slurm/stages-*.log out/slurm/runs-"$arr"_0.log >/dev/null || { echo "FAIL: job logs missing"; fail=1; }

# generate again: only the unfinished run; submit with plain sbatch (first job chains the array)
"$bin" --device cpu sweep sweep.lua --out out --slurm job.sh > gen2.log 2>&1; cat gen2.log
grep -q "no stages job (stages built) + an array of 1 task(s) (2 of 3 runs done)" gen2.log \
  || { echo "FAIL: the second script is not one task without a stages job"; fail=1; }
grep -q "^runs=('sl-long')$" job.sh || { echo "FAIL: the second script's array is not just sl-long"; fail=1; }
sbatch job.sh || { echo "FAIL: sbatch job.sh failed"; fail=1; }
sleep 1
wait_queue 240
"$bin" status out > status_done.txt; cat status_done.txt
grep -q "3 run(s): 3 done, 0 running, 0 failed, 0 stopped, 0 pending" status_done.txt \
  || { echo "FAIL: not every run is done after the resubmission"; cat out/slurm/*.log | tail -30; fail=1; }
grep -q "resumed from .* at step [1-9]" out/sl-long/log.txt || { echo "FAIL: sl-long did not resume from its checkpoint"; fail=1; }

# ---- the same sweep locally: byte-identical models and results ---------------------------------
"$bin" --device cpu sweep sweep.lua --out local --jobs 2 > local.log 2>&1 || { echo "FAIL: the local sweep failed"; cat local.log; fail=1; }
for r in sl-p0.0 sl-p0.1 sl-long; do
  cmp out/$r/model/model.safetensors local/$r/model/model.safetensors || { echo "FAIL: $r: model.safetensors differs from the local sweep's"; fail=1; }
  cmp out/$r/results.json local/$r/results.json || { echo "FAIL: $r: results.json differs from the local sweep's"; fail=1; }
done
cmp out/stages/sl-aligned-*/model/model.safetensors local/stages/sl-aligned-*/model/model.safetensors \
  || { echo "FAIL: the stage model differs"; fail=1; }
echo "test_slurm: $(( $(date +%s) - t_start )) s"
exit $fail
