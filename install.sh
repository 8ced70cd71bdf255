#!/usr/bin/env bash
# Installs podbridge (the bridge CNI plugin) and podbridge-ipam on Debian 12 with the .NET 10 SDK:
#   - apt-get installs the host tools it needs (only when something is missing),
#   - publishes both Native AOT binaries to artifacts/bin,
#   - copies them into /opt/cni/bin (--prefix DIR),
#   - installs conf/10-podbridge.conflist into /etc/cni/net.d (never overwrites without --force),
#   - loads br_netfilter now and at boot (/etc/modules-load.d/podbridge.conf).
# --demo then wires two throw-away pods through the installed binary exactly as a runtime would, pings one
# from the other, deletes them again, and removes everything it made.
set -euo pipefail

usage() {
    cat <<'EOF'
usage: ./install.sh [options]      (re-runs itself through sudo when not root)
  --prefix DIR      where the plugin binaries go (default /opt/cni/bin)
  --conf-dir DIR    where the network config goes (default /etc/cni/net.d)
  --force           overwrite an existing 10-podbridge.conflist
  --demo            after installing, run two demo pods through the installed plugin and clean up
  --no-build        install the binaries already in artifacts/bin instead of publishing them
  --no-apt          never call apt-get (fail if a required tool is missing)
  --no-modules      do not load br_netfilter or write /etc/modules-load.d/podbridge.conf
  -h, --help        this text
EOF
}

ORIG_ARGS=("$@")
PREFIX=/opt/cni/bin
CONF_DIR=/etc/cni/net.d
FORCE=0 DEMO=0 BUILD=1 APT=1 MODULES=1
while [[ $# -gt 0 ]]; do
    case "$1" in
        --prefix) PREFIX=${2:?--prefix needs a directory}; shift 2 ;;
        --prefix=*) PREFIX=${1#*=}; shift ;;
        --conf-dir) CONF_DIR=${2:?--conf-dir needs a directory}; shift 2 ;;
        --conf-dir=*) CONF_DIR=${1#*=}; shift ;;
        --force) FORCE=1; shift ;;
        --demo) DEMO=1; shift ;;
        --no-build) BUILD=0; shift ;;
        --no-apt) APT=0; shift ;;
        --no-modules) MODULES=0; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "install.sh: unknown option '$1'" >&2; usage >&2; exit 2 ;;
    esac
done

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ARTIFACTS="$REPO/artifacts/bin"
BINARIES=(podbridge podbridge-ipam)

say() { printf '==> %s\n' "$*"; }
die() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

# Root is needed (links, br_netfilter, $PREFIX, $CONF_DIR): a user with sudo gets re-run through it, with the
# PATH that found dotnet (sudo's secure_path would lose a per-user SDK).
if [[ $EUID -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || die "run as root: it creates links, loads br_netfilter and writes $PREFIX and $CONF_DIR, and sudo is not installed"
    say "not root: re-running through sudo"
    exec sudo env "PATH=$PATH" ${DOTNET_ROOT:+"DOTNET_ROOT=$DOTNET_ROOT"} bash "$REPO/install.sh" "${ORIG_ARGS[@]}"
fi

# --- host tools ----------------------------------------------------------------------------------------
# command -> Debian package. ip/bridge for the demo and for debugging, modprobe for br_netfilter, clang as the
# Native AOT linker (the SDK falls back to gcc, but the published binaries are built and measured with clang),
# objcopy (binutils) to split the static executables' debug symbols, nft for networks that set macspoofchk (ipMasq
# speaks nf_tables netlink itself).
declare -A NEED=([ip]=iproute2 [bridge]=iproute2 [ping]=iputils-ping [clang]=clang [objcopy]=binutils [nft]=nftables)
[[ $MODULES -eq 1 ]] && NEED[modprobe]=kmod
missing=()
for cmd in "${!NEED[@]}"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${NEED[$cmd]}")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    mapfile -t missing < <(printf '%s\n' "${missing[@]}" | sort -u)
    [[ $APT -eq 1 ]] || die "missing packages: ${missing[*]} (and --no-apt was given)"
    say "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# --- build ---------------------------------------------------------------------------------------------
if [[ $BUILD -eq 1 ]]; then
    command -v dotnet >/dev/null 2>&1 || die "the .NET 10 SDK is required to build (dotnet not found on PATH)"
    export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
    say "dotnet publish (Native AOT) -> $ARTIFACTS"
    dotnet publish "$REPO/src/cni-plugin/podbridge" -c Release -o "$ARTIFACTS" --nologo -v quiet
    dotnet publish "$REPO/src/ipam/podbridge-ipam" -c Release -o "$ARTIFACTS" --nologo -v quiet
fi
for b in "${BINARIES[@]}"; do
    [[ -x "$ARTIFACTS/$b" ]] || die "$ARTIFACTS/$b is missing; run without --no-build"
done

# --- install -------------------------------------------------------------------------------------------
say "installing ${BINARIES[*]} into $PREFIX"
install -d -m 0755 "$PREFIX"
for b in "${BINARIES[@]}"; do
    # Copy then rename: a runtime exec'ing the plugin mid-install sees the old or the new file, never half.
    install -m 0755 "$ARTIFACTS/$b" "$PREFIX/.$b.new"
    mv -f "$PREFIX/.$b.new" "$PREFIX/$b"
done

install -d -m 0755 "$CONF_DIR"
CONF_SRC="$REPO/conf/10-podbridge.conflist"
CONF_DST="$CONF_DIR/10-podbridge.conflist"
if [[ -e "$CONF_DST" && $FORCE -eq 0 ]]; then
    if cmp -s "$CONF_SRC" "$CONF_DST"; then
        say "$CONF_DST is up to date"
    else
        say "$CONF_DST exists and differs; kept it (use --force to overwrite)"
    fi
else
    install -m 0644 "$CONF_SRC" "$CONF_DST"
    say "installed $CONF_DST"
fi

# --- br_netfilter --------------------------------------------------------------------------------------
# kube-proxy's iptables/nftables rules only see bridged pod-to-pod traffic with br_netfilter loaded;
# podbridge sets net.bridge.bridge-nf-call-iptables=1 but the sysctl exists only while the module is there.
if [[ $MODULES -eq 1 ]]; then
    if modprobe br_netfilter 2>/dev/null; then
        say "loaded br_netfilter"
    elif [[ -d /proc/sys/net/bridge ]]; then
        say "br_netfilter is built in or already loaded"
    else
        say "WARNING: could not load br_netfilter; bridged traffic will bypass iptables (kube-proxy needs it)"
    fi
    install -d -m 0755 /etc/modules-load.d
    echo br_netfilter > /etc/modules-load.d/podbridge.conf
fi

say "done: $PREFIX/podbridge, $PREFIX/podbridge-ipam, $CONF_DST"
[[ $DEMO -eq 1 ]] || exit 0

# --- demo ----------------------------------------------------------------------------------------------
# Its own network name, bridge, subnet and IPAM dir: it never touches a real network's config, bridge or leases.
TAG=$(printf '%04x' $((RANDOM % 65536)))
NET="podbridge-demo-$TAG"
BRIDGE="pbdemo$TAG"
NS_A="pbdemo-a-$TAG"
NS_B="pbdemo-b-$TAG"
DATA=$(mktemp -d /tmp/podbridge-demo.XXXXXX)
SUBNET=
for third in $(seq 254 -1 200); do
    candidate="10.254.$third.0/24"
    if ! ip -4 route show | grep -q "^10\.254\.$third\."; then SUBNET=$candidate; break; fi
done
[[ -n $SUBNET ]] || die "no free /24 in 10.254.200.0-10.254.254.0 for the demo"
CONFIG=$(cat <<EOF
{"cniVersion":"1.0.0","name":"$NET","type":"podbridge","bridge":"$BRIDGE","isGateway":true,"isDefaultGateway":true,
 "ipam":{"type":"podbridge-ipam","dataDir":"$DATA","ranges":[[{"subnet":"$SUBNET"}]]}}
EOF
)

ADDED=()
cleanup() {
    set +e
    for ns in "${ADDED[@]}"; do cni DEL "$ns" >/dev/null 2>&1; done
    ip netns delete "$NS_A" 2>/dev/null
    ip netns delete "$NS_B" 2>/dev/null
    ip link delete "$BRIDGE" 2>/dev/null
    rm -rf "$DATA"
}
trap cleanup EXIT

# One plugin call as libcni makes it: all six CNI_* variables, the config on stdin.
cni() {
    local verb=$1 ns=$2
    CNI_COMMAND=$verb CNI_CONTAINERID="demo-$ns" CNI_NETNS="/run/netns/$ns" CNI_IFNAME=eth0 \
        CNI_ARGS="IgnoreUnknown=1;K8S_POD_NAMESPACE=demo;K8S_POD_NAME=$ns" CNI_PATH="$PREFIX" \
        "$PREFIX/podbridge" <<<"$CONFIG"
}

address_of() { grep -o '"address": *"[^"]*"' | head -n1 | sed 's/.*"\([^"]*\)"$/\1/'; }

say "demo: network $NET, bridge $BRIDGE, subnet $SUBNET"
for ns in "$NS_A" "$NS_B"; do
    ip netns add "$ns"
    ip -n "$ns" link set lo up
done

declare -A ADDR
for ns in "$NS_A" "$NS_B"; do
    if ! out=$(cni ADD "$ns"); then
        printf '%s\n' "$out" >&2
        die "ADD for $ns failed"
    fi
    ADDED+=("$ns")
    ADDR[$ns]=$(address_of <<<"$out")
    say "pod $ns: eth0 ${ADDR[$ns]}"
done

target=${ADDR[$NS_B]%/*}
say "ping $target from $NS_A"
ip netns exec "$NS_A" ping -c 2 -W 2 "$target"

for ns in "$NS_A" "$NS_B"; do
    cni DEL "$ns" || die "DEL for $ns failed"
done
ADDED=()
say "demo ok: two pods added, pinged, deleted; cleaning up"
