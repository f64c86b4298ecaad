# Sourced by test.sh: a throwaway single-node Slurm cluster for `cnnbench submit`'s tests, its own munged, slurmctld and
# slurmd on free ports with their config, state and logs in a temporary folder, stopped by slurm_stop. Exports SLURM_CONF
# and CNNBENCH_TEST_SLURM=1, or CNNBENCH_TEST_SLURM_SKIP saying why there is none (those tests then skip with that reason
# and the submitit local executor is tested instead).
# Needs root: slurmd runs jobs as their user, and munged runs as the package's user 'munge'. As root with apt, Debian's
# slurm-wlm and munge are installed when missing. Nothing here touches a system-wide munged or Slurm: another cluster
# (a second test run on the same machine) keeps its own sockets and ports.

slurm_skip() {
    export CNNBENCH_TEST_SLURM_SKIP="$1"
    unset CNNBENCH_TEST_SLURM
    echo "setup: no Slurm for the tests: $1" >&2
}

slurm_free_port() {
    .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# the last line of a log, or what to say when there is none
slurm_last_line() {
    local line
    line="$(tail -n 1 "$1" 2>/dev/null)" || true
    echo "${line:-no log at $1}"
}

slurm_install() {
    local policy=/usr/sbin/policy-rc.d made_policy=0 rc=0
    echo "setup: installing Debian's slurm-wlm and munge for the Slurm tests" >&2
    # package scripts would start the system's munged and Slurm daemons; this cluster runs its own, so forbid that
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod 755 "$policy" && made_policy=1
    fi
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null || rc=$?
    [ "$made_policy" = 1 ] && rm -f "$policy"
    return "$rc"
}

slurm_start() {
    local dir host ctld_port slurmd_port key i
    if [ "$(id -u)" != 0 ]; then slurm_skip "not root: slurmd must run as root, and munged as user 'munge'"; return 0; fi
    if ! command -v slurmctld >/dev/null 2>&1 || ! command -v munged >/dev/null 2>&1; then
        if command -v apt-get >/dev/null 2>&1; then
            slurm_install || { slurm_skip "apt-get could not install slurm-wlm and munge"; return 0; }
        fi
        command -v slurmctld >/dev/null 2>&1 && command -v munged >/dev/null 2>&1 \
            || { slurm_skip "no slurmctld or munged (Debian's slurm-wlm and munge; installed by scripts/test.sh as root with apt)"; return 0; }
    fi
    id -u munge >/dev/null 2>&1 || { slurm_skip "there is no user 'munge' to run munged as"; return 0; }
    key=/etc/munge/munge.key
    [ -f "$key" ] || { slurm_skip "no munge key at $key (the munge package makes it)"; return 0; }
    # munged refuses a key that others could read; the package installs it so (owned by munge, mode 400/600)
    [ "$(stat -c %U "$key")" = munge ] || { slurm_skip "$key is owned by $(stat -c %U "$key"), not munge"; return 0; }

    CNNBENCH_SLURM_DIR="$(mktemp -d "${TMPDIR:-/tmp}/cnnbench-slurm.XXXXXX")"
    dir="$CNNBENCH_SLURM_DIR"
    chmod 755 "$dir"  # munged, as user munge, must reach its socket folder inside
    mkdir -p "$dir/munge" "$dir/state" "$dir/spool" "$dir/log"
    chown munge: "$dir/munge" && chmod 755 "$dir/munge"
    if ! runuser -u munge -- munged --socket="$dir/munge/munge.socket" --pid-file="$dir/munge/munged.pid" \
            --log-file="$dir/munge/munged.log" --seed-file="$dir/munge/munged.seed" --key-file="$key" \
            >"$dir/munge/start.log" 2>&1; then
        slurm_skip "munged did not start: $(slurm_last_line "$dir/munge/start.log")"; return 0
    fi

    host="$(hostname -s)"
    ctld_port="$(slurm_free_port)"
    slurmd_port="$(slurm_free_port)"
    # proctrack/linuxproc and task/none: no cgroups, which a container may not offer; no accounting database, so
    # `sacct` has nothing to say here and `cnnbench submit` reads job states from `squeue` (bench/submit.py)
    cat > "$dir/slurm.conf" <<EOF
ClusterName=cnnbench-test
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge/munge.socket
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=root
SlurmdUser=root
ReturnToService=2
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
NodeName=$host NodeAddr=127.0.0.1 CPUs=2 RealMemory=20000 State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
    echo "CgroupPlugin=cgroup/v1" > "$dir/cgroup.conf"
    export SLURM_CONF="$dir/slurm.conf"
    CNNBENCH_SLURM_DAEMONS=1
    if ! slurmctld -f "$SLURM_CONF" -i >"$dir/log/slurmctld.start" 2>&1; then
        slurm_skip "slurmctld did not start: $(slurm_last_line "$dir/log/slurmctld.log")"; return 0
    fi
    if ! slurmd -f "$SLURM_CONF" >"$dir/log/slurmd.start" 2>&1; then
        slurm_skip "slurmd did not start: $(slurm_last_line "$dir/log/slurmd.log")"; return 0
    fi
    for i in $(seq 1 60); do  # up to 30 s for slurmd to register and the node to be idle
        if [ "$(sinfo -h -n "$host" -o %T 2>/dev/null)" = idle ]; then
            export CNNBENCH_TEST_SLURM=1
            unset CNNBENCH_TEST_SLURM_SKIP
            echo "setup: Slurm $(slurmctld -V | awk '{print $2}') for the tests: node $host idle, controller on 127.0.0.1:$ctld_port" >&2
            return 0
        fi
        sleep 0.5
    done
    slurm_skip "node $host is not idle after 30 s ($(sinfo -h -n "$host" -o '%T %E' 2>&1)): $(slurm_last_line "$dir/log/slurmd.log")"
    return 0
}

# the pid in a pid file, when that process is still alive
slurm_pid() {
    local pid
    pid="$(cat "$1" 2>/dev/null)" || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

slurm_stop() {
    local dir="${CNNBENCH_SLURM_DIR:-}" pidfile pid i pids=()
    [ -n "$dir" ] || return 0
    if [ -n "${CNNBENCH_SLURM_DAEMONS:-}" ] && [ -f "$dir/slurm.conf" ]; then
        # the jobs first, so that no slurmstepd outlives its slurmd
        SLURM_CONF="$dir/slurm.conf" scancel --full --quiet --partition=test >/dev/null 2>&1 || true
        for i in $(seq 1 20); do
            [ -z "$(SLURM_CONF="$dir/slurm.conf" squeue -h -t running,completing,pending 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
    # all three at once: each takes 1-2 s to stop
    for pidfile in "$dir/slurmd.pid" "$dir/slurmctld.pid" "$dir/munge/munged.pid"; do
        pid="$(slurm_pid "$pidfile")" && { kill -TERM "$pid" 2>/dev/null; pids+=("$pid"); }
    done
    for pid in "${pids[@]}"; do
        for i in $(seq 1 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.125; done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
    done
    rm -rf "$dir"
    unset CNNBENCH_SLURM_DIR CNNBENCH_SLURM_DAEMONS SLURM_CONF
    return 0
}
