#!/usr/bin/env bash
# Start-up cost of one plugin invocation, measured with `perf stat` (task-clock, page faults, wall): VERSION
# (pure start-up + one JSON line) and ADD/CHECK/DEL into fresh network namespaces, for podbridge and the reference
# bridge + host-local. Medians over N runs. Needs root (namespaces) and perf (Debian: linux-perf).
#
#   bench/perf-startup.sh [-n N] [--bin-dir D] [--ref-dir D] [--verbs "VERSION ADD CHECK DEL"] [--mounts M]
#
# --mounts M runs everything in a private mount namespace holding M extra tmpfs mounts, like a node whose mount table
# has grown with its pods (each pod's netns bind mount, rootfs, secret volumes): a start-up that reads the mount
# table costs more there. They vanish with the namespace.
#
# Everything runs inside a node namespace the script creates (pbs<id>-node); pods are pbs<id>-p<i>; all of it and
# the data dirs are removed on exit. perf measures the plugin process (and, for the reference, the host-local child).
set -euo pipefail

N=30 BIN_DIR="$(cd "$(dirname "$0")/.." && pwd)/artifacts/bin" REF_DIR=/usr/lib/cni VERBS="VERSION ADD CHECK DEL" MOUNTS=0
ARGS=("$@")
while [[ $# -gt 0 ]]; do
    case "$1" in
        --mounts) MOUNTS=$2; shift 2 ;;
        -n) N=$2; shift 2 ;;
        --bin-dir) BIN_DIR=$2; shift 2 ;;
        --ref-dir) REF_DIR=$2; shift 2 ;;
        --verbs) VERBS=$2; shift 2 ;;
        *) echo "usage: $0 [-n N] [--bin-dir D] [--ref-dir D] [--verbs \"VERSION ADD CHECK DEL\"] [--mounts M]" >&2; exit 2 ;;
    esac
done
command -v perf >/dev/null || { echo "perf-startup: perf is not installed (apt-get install linux-perf)" >&2; exit 2; }

if [[ $MOUNTS -gt 0 && -z ${PBS_MOUNT_NS:-} ]]; then
    PBS_MOUNT_NS=1 exec unshare --mount --propagation private bash "$0" "${ARGS[@]}"
fi
if [[ $MOUNTS -gt 0 ]]; then
    MNT=$(mktemp -d /tmp/pbs-mounts.XXXX)
    mount -t tmpfs pbs-mounts "$MNT"
    for ((m = 0; m < MOUNTS; m++)); do mkdir "$MNT/$m" && mount -t tmpfs pbs-mount "$MNT/$m"; done
    echo "(in a private mount namespace with $(wc -l </proc/self/mountinfo) mounts)"
fi

ID=$(head -c4 /dev/urandom | od -An -tx1 | tr -d ' \n')
NODE=pbs$ID-node
TMP=$(mktemp -d /var/tmp/pbs-$ID.XXXX)
cleanup() {
    for ((i = 0; i < N; i++)); do ip netns del "pbs$ID-p$i" 2>/dev/null || true; done
    ip netns del "$NODE" 2>/dev/null || true
    rm -rf "$TMP"
    if [[ -n ${MNT:-} ]]; then umount -R "$MNT" 2>/dev/null || true; rmdir "$MNT" 2>/dev/null || true; fi
}
trap cleanup EXIT INT TERM
ip netns add "$NODE"
ip -n "$NODE" link set lo up
for ((i = 0; i < N; i++)); do ip netns add "pbs$ID-p$i"; done

median() { sort -g | awk '{ a[NR] = $1 } END { if (NR == 0) { print "-"; exit } m = (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2; printf "%.2f", m }'; }

# one invocation under perf stat: appends "task-clock-ms faults wall-ms" to OUT_FILE
measure() { # measure OUT_FILE STDIN_FILE ENV... -- BINARY
    local out=$1 stdin=$2; shift 2
    local envs=() stat
    while [[ $1 != -- ]]; do envs+=("$1"); shift; done
    shift
    stat=$(ip netns exec "$NODE" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin "${envs[@]}" \
        perf stat -x, -e task-clock,page-faults,duration_time -o /dev/stderr "$@" <"$stdin" 2>&1 >"$TMP/stdout" | grep -E 'task-clock|page-faults|duration_time' || true)
    local ms faults wall
    ms=$(awk -F, '/task-clock/ { print $1 }' <<<"$stat")
    faults=$(awk -F, '/page-faults/ { print $1 }' <<<"$stat")
    wall=$(awk -F, '/duration_time/ { print $1 / 1e6 }' <<<"$stat")
    echo "$ms $faults $wall" >>"$out"
}

conf() { # conf SIDE TYPE IPAM BRIDGE SUBNET [PREV]
    local prev=${6:-}
    printf '{"cniVersion":"1.0.0","name":"pbs%s%s","type":"%s","bridge":"%s","isGateway":true,"ipMasq":false,' "$ID" "$1" "$2" "$4"
    printf '"ipam":{"type":"%s","ranges":[[{"subnet":"%s"}]],"routes":[{"dst":"0.0.0.0/0"}],"dataDir":"%s/%s"}' "$3" "$5" "$TMP" "$1"
    [[ -n $prev ]] && printf ',"prevResult":%s' "$prev"
    printf '}'
}

report() { # report LABEL FILE
    local f=$1
    printf '%-18s task-clock %6s ms   page-faults %5s   wall %6s ms   (n=%s)\n' "$2" \
        "$(awk '{ print $1 }' "$f" | median)" "$(awk '{ print $2 }' "$f" | median)" "$(awk '{ print $3 }' "$f" | median)" "$(wc -l <"$f")"
}

run_side() { # run_side SIDE BINARY TYPE IPAM CNI_PATH SUBNET
    local side=$1 bin=$2 type=$3 ipam=$4 path=$5 subnet=$6 bridge=pbs${ID}$1
    : >"$TMP/empty"
    if [[ $VERBS == *VERSION* ]]; then
        for ((i = 0; i < N; i++)); do
            measure "$TMP/$side.VERSION" "$TMP/empty" CNI_COMMAND=VERSION -- "$bin"
        done
        report "$TMP/$side.VERSION" "$side VERSION"
    fi
    [[ $VERBS == *ADD* ]] || return 0
    conf "$side" "$type" "$ipam" "$bridge" "$subnet" >"$TMP/$side.conf"
    # one unrecorded ADD/DEL creates the bridge and the database
    local common=(CNI_PATH="$path" CNI_IFNAME=eth0 CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=p")
    ip netns add "pbs$ID-w$side"
    ip netns exec "$NODE" env CNI_COMMAND=ADD CNI_CONTAINERID="w$side" CNI_NETNS="/run/netns/pbs$ID-w$side" "${common[@]}" "$bin" <"$TMP/$side.conf" >/dev/null
    ip netns exec "$NODE" env CNI_COMMAND=DEL CNI_CONTAINERID="w$side" CNI_NETNS="/run/netns/pbs$ID-w$side" "${common[@]}" "$bin" <"$TMP/$side.conf" >/dev/null
    ip netns del "pbs$ID-w$side"
    for ((i = 0; i < N; i++)); do
        measure "$TMP/$side.ADD" "$TMP/$side.conf" CNI_COMMAND=ADD CNI_CONTAINERID="c$side$i" CNI_NETNS="/run/netns/pbs$ID-p$i" "${common[@]}" -- "$bin"
        cp "$TMP/stdout" "$TMP/$side.result$i"
        grep -q '"ips"' "$TMP/$side.result$i" || { echo "ADD failed: $(cat "$TMP/$side.result$i")" >&2; exit 1; }
    done
    report "$TMP/$side.ADD" "$side ADD"
    if [[ $VERBS == *CHECK* ]]; then
        for ((i = 0; i < N; i++)); do
            conf "$side" "$type" "$ipam" "$bridge" "$subnet" "$(cat "$TMP/$side.result$i")" >"$TMP/$side.prev"
            measure "$TMP/$side.CHECK" "$TMP/$side.prev" CNI_COMMAND=CHECK CNI_CONTAINERID="c$side$i" CNI_NETNS="/run/netns/pbs$ID-p$i" "${common[@]}" -- "$bin"
            [[ ! -s $TMP/stdout ]] || { echo "CHECK failed: $(cat "$TMP/stdout")" >&2; exit 1; }
        done
        report "$TMP/$side.CHECK" "$side CHECK"
    fi
    for ((i = 0; i < N; i++)); do
        conf "$side" "$type" "$ipam" "$bridge" "$subnet" "$(cat "$TMP/$side.result$i")" >"$TMP/$side.prev"
        measure "$TMP/$side.DEL" "$TMP/$side.prev" CNI_COMMAND=DEL CNI_CONTAINERID="c$side$i" CNI_NETNS="/run/netns/pbs$ID-p$i" "${common[@]}" -- "$bin"
    done
    [[ $VERBS == *DEL* ]] && report "$TMP/$side.DEL" "$side DEL"
    ip -n "$NODE" link del "$bridge" 2>/dev/null || true
}

run_side A "$BIN_DIR/podbridge" podbridge podbridge-ipam "$BIN_DIR" 10.250.0.0/16
run_side B "$REF_DIR/bridge" bridge host-local "$REF_DIR" 10.249.0.0/16
echo "(A = podbridge from $BIN_DIR, B = reference from $REF_DIR; medians of task-clock (CPU ms), page faults, wall)"
