#!/usr/bin/env bash
# A real SLURM cluster on this one host, for the cluster tests (tests/test_slurm.py):
# Debian's slurm-wlm 22.05 and munge, no systemd. munged, slurmctld and two slurmd nodes
# n1 and n2, both on 127.0.0.1 with their own ports, in one partition `debug`.
#
#   .ci/slurm-cluster.sh start     install the packages if missing, write the config, start
#   .ci/slurm-cluster.sh stop      cancel every job, stop the daemons
#   .ci/slurm-cluster.sh status    sinfo
#
# Needs root (the daemons, /etc/slurm). Node names do not resolve here: DDP across the two
# nodes needs MASTER_ADDR=127.0.0.1.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
LOGS=/var/log/slurm

install() {
  command -v slurmctld >/dev/null && command -v munged >/dev/null && return
  { apt-get install -y -q slurm-wlm munge \
    || { apt-get update -q && apt-get install -y -q slurm-wlm munge; }; } >/dev/null
}

write_config() {
  local cpus mem
  cpus=$(nproc)
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 / 2 ))  # MiB per node: half each
  mkdir -p /etc/slurm "$LOGS" /var/spool/slurmctld /var/spool/slurmd
  cat > "$CONF" <<EOF
# Written by .ci/slurm-cluster.sh: a two-node cluster on one host, for tests.
ClusterName=mnistx
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
# A requeued job may start again once its old credential has expired (120 s by default);
# starting it earlier (scontrol update StartTime=now) races the node's cleanup and SLURM
# kills it ("Job credential revoked"). 10 s keeps the requeue tests short and real.
AuthInfo=cred_expire=10
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd/%n
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd-%n.pid
SlurmctldLogFile=$LOGS/slurmctld.log
SlurmdLogFile=$LOGS/slurmd-%n.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
# Quick scheduling for short test jobs.
SchedulerParameters=sched_interval=2
MessageTimeout=30
NodeName=n1 NodeAddr=127.0.0.1 Port=17001 CPUs=$cpus RealMemory=$mem State=UNKNOWN
NodeName=n2 NodeAddr=127.0.0.1 Port=17002 CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=n1,n2 Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
EOF
}

start_munge() {
  if [ ! -s /etc/munge/munge.key ]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
  mkdir -p /run/munge /var/lib/munge /var/log/munge
  chown munge:munge /run/munge /var/lib/munge /var/log/munge
  pgrep -x munged >/dev/null || runuser -u munge -- munged
}

wait_idle() {
  for _ in $(seq 60); do
    if [ "$(sinfo -h -N -o '%N %T' 2>/dev/null | grep -c -E 'idle|mixed|alloc')" -ge 2 ]; then
      return 0
    fi
    scontrol update NodeName=n1,n2 State=RESUME >/dev/null 2>&1 || true
    sleep 1
  done
  echo "slurm-cluster: the nodes did not come up:" >&2
  sinfo -N >&2 || true
  tail -n 20 "$LOGS"/*.log >&2 || true
  return 1
}

start() {
  install
  write_config
  start_munge
  pgrep -x slurmctld >/dev/null || slurmctld
  for node in n1 n2; do
    pgrep -f "slurmd -N $node" >/dev/null || slurmd -N "$node"
  done
  wait_idle
  sinfo
}

stop() {
  scancel --user=root >/dev/null 2>&1 || true
  pkill -x slurmd >/dev/null 2>&1 || true
  pkill -x slurmctld >/dev/null 2>&1 || true
  for _ in $(seq 20); do
    pgrep -x slurmd >/dev/null || pgrep -x slurmctld >/dev/null || break
    sleep 0.5
  done
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) sinfo -N ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
