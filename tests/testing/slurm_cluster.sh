#!/usr/bin/env bash
# A private one-node SLURM cluster for tests: munged, slurmctld and slurmd from Debian's
# packages, all state, sockets and logs under DIR, on ports of their own.
#   eval "$(tests/testing/slurm_cluster.sh start DIR)"   # exports SLURM_CONF
#   srun --mpi=pmix -n 2 program ...
#   tests/testing/slurm_cluster.sh stop DIR
set -euo pipefail
action=$1 dir=$2
host=$(hostname -s)

stop() {
  for pidfile in slurmd slurmctld munged; do
    [[ -f $dir/$pidfile.pid ]] && kill "$(cat "$dir/$pidfile.pid")" 2>/dev/null || true
  done
  sleep 0.5
}

if [[ $action == stop ]]; then
  stop
  exit 0
fi

mkdir -p "$dir"/{state,spool,munge}
chmod 700 "$dir/munge"
dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
munged --force --socket="$dir/munge/munge.socket" --key-file="$dir/munge/munge.key" \
  --pid-file="$dir/munged.pid" --log-file="$dir/munged.log" --seed-file="$dir/munge/seed"

cpus=$(nproc)
memory=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))
port=$(( 20000 + RANDOM % 20000 ))
cat >"$dir/slurm.conf" <<CONF
ClusterName=usine-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SrunPortRange=$((port + 2))-$((port + 200))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
JobCompType=jobcomp/none
NodeName=$host CPUs=$cpus RealMemory=$memory State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE
CONF
export SLURM_CONF=$dir/slurm.conf
slurmctld -f "$SLURM_CONF"
slurmd -f "$SLURM_CONF"
for _ in $(seq 100); do
  sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && break
  sleep 0.2
done
sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)' || {
  echo "slurm_cluster.sh: the node did not come up; logs in $dir" >&2
  exit 1
}
echo "export SLURM_CONF=$dir/slurm.conf"
