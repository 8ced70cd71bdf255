#!/usr/bin/env bash
# Runs every podbridge test: installs the Debian packages the tests use (only when missing), publishes both
# Native AOT binaries to artifacts/bin, runs the unit test projects (tests/unit/*) and the integration
# project (tests/integration, needs root), and ends with one plain line "N passed, N failed".
# Exit status is non-zero when any test failed, a project did not build, or no test ran at all.
#
#   ./test.sh                  everything
#   ./test.sh --unit           unit tests only (no root, no publish)
#   ./test.sh --integration    publish + integration tests only
#   ./test.sh --no-apt         never call apt-get
#   ./test.sh --no-publish     test the binaries already in artifacts/bin (or $PODBRIDGE_BIN_DIR)
#   ./test.sh --filter EXPR    passed to every `dotnet test --filter` (skips the benchmark smoke)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
REPO=$(pwd)

ORIG_ARGS=("$@")
RUN_UNIT=1 RUN_INTEGRATION=1 APT=1 PUBLISH=1 FILTER=
while [[ $# -gt 0 ]]; do
    case "$1" in
        --unit) RUN_INTEGRATION=0; shift ;;
        --integration) RUN_UNIT=0; shift ;;
        --no-apt) APT=0; shift ;;
        --no-publish) PUBLISH=0; shift ;;
        --filter) FILTER=${2:?--filter needs an expression}; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "test.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done

# The integration tests need root (namespaces, bridges, apt-get): a user with sudo gets re-run through it, with the
# PATH that found dotnet (sudo's secure_path would lose a per-user SDK). --unit needs no root.
if [[ $RUN_INTEGRATION -eq 1 && $EUID -ne 0 ]]; then
    if ! command -v sudo >/dev/null 2>&1; then
        echo "test.sh: the integration tests need root and sudo is not installed; run as root, or ./test.sh --unit" >&2
        exit 1
    fi
    echo "==> not root: re-running through sudo"
    exec sudo env "PATH=$PATH" ${DOTNET_ROOT:+"DOTNET_ROOT=$DOTNET_ROOT"} ${CI:+"CI=$CI"} bash "$REPO/test.sh" "${ORIG_ARGS[@]}"
fi

export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
export DEBIAN_FRONTEND=noninteractive
say() { printf '==> %s\n' "$*"; }

# --- packages ------------------------------------------------------------------------------------------
# clang links the Native AOT binaries; reference plugins and podman for comparison/interop, busybox-static for
# the podman rootfs, the tools the integration harness inspects the kernel with (nft for ipMasq), strace for the
# start-up test, binutils for GNU objcopy (splits the static executables' debug symbols) and readelf.
PACKAGES=(clang containernetworking-plugins podman runc busybox-static iproute2 iputils-ping nftables iptables strace binutils)
# containerd (1.6) for the CRI scenarios (tests/integration/Cri): a private instance per run, kubelet's path.
PACKAGES+=(containerd)
# libssl3: .NET's HTTPS (the node agent and the tests' TLS API server) and the agent image, which copies it.
PACKAGES+=(libssl3)
if [[ $RUN_INTEGRATION -eq 1 && $APT -eq 1 ]]; then
    missing=()
    for p in "${PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [[ ${#missing[@]} -gt 0 ]]; then
        if [[ $EUID -ne 0 ]]; then
            echo "test.sh: missing packages ${missing[*]}; run as root or install them" >&2
        else
            say "apt-get install ${missing[*]}"
            apt-get update -qq
            apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        fi
    fi
    # bridge-nf-call-* sysctls exist only with br_netfilter; harmless when built in or unavailable.
    modprobe br_netfilter 2>/dev/null || true
fi

PASSED=0 FAILED=0 BROKEN=0
RESULTS="$REPO/artifacts/test-results"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"

# --- publish -------------------------------------------------------------------------------------------
if [[ $RUN_INTEGRATION -eq 1 && $PUBLISH -eq 1 ]]; then
    # Remove the old binaries first: a failed publish must not leave stale ones for the tests to pass on.
    rm -f "$REPO/artifacts/bin/podbridge" "$REPO/artifacts/bin/podbridge-ipam"
    rm -f "$REPO/artifacts/bin/podbridge-node"
    for project in src/cni-plugin/podbridge src/ipam/podbridge-ipam src/podbridge-node; do
        say "dotnet publish $project -> artifacts/bin"
        if ! dotnet publish "$project" -c Release -o "$REPO/artifacts/bin" --nologo; then
            echo "test.sh: publishing $project failed" >&2
            BROKEN=$((BROKEN + 1))
        fi
    done
fi

# --- tests ---------------------------------------------------------------------------------------------
projects=()
if [[ $RUN_UNIT -eq 1 ]]; then
    for p in tests/unit/*/*.csproj; do [[ -e $p ]] && projects+=("$p"); done
fi
if [[ $RUN_INTEGRATION -eq 1 ]]; then
    [[ $EUID -eq 0 ]] || echo "test.sh: the integration tests need root (network namespaces, bridges)" >&2
    projects+=(tests/integration/PodBridge.IntegrationTests.csproj)
fi

for project in "${projects[@]}"; do
    name=$(basename "$project" .csproj)
    trx="$RESULTS/$name.trx"
    say "dotnet test $project"
    args=(test "$project" --nologo --logger "trx;LogFileName=$trx" --logger "console;verbosity=normal"
          --results-directory "$RESULTS" --blame-hang-timeout 5m)
    [[ -n $FILTER ]] && args+=(--filter "$FILTER")
    rc=0
    dotnet "${args[@]}" || rc=$?
    if [[ -f $trx ]]; then
        # <Counters total="N" executed="N" passed="N" failed="N" ...>
        counters=$(grep -o '<Counters [^>]*>' "$trx" | head -n1)
        p=$(sed -n 's/.* passed="\([0-9]*\)".*/\1/p' <<<"$counters")
        f=$(sed -n 's/.* failed="\([0-9]*\)".*/\1/p' <<<"$counters")
        PASSED=$((PASSED + ${p:-0}))
        FAILED=$((FAILED + ${f:-0}))
        if [[ $rc -ne 0 && ${f:-0} -eq 0 ]]; then
            echo "test.sh: $name exited $rc without failed tests (test host crash or hang?)" >&2
            BROKEN=$((BROKEN + 1))
        fi
    else
        echo "test.sh: $name produced no results (build failure?)" >&2
        BROKEN=$((BROKEN + 1))
    fi
done

# --- benchmark smoke -----------------------------------------------------------------------------------
# A few pods through both plugins, only to keep the benchmark working: it asserts no timing, it fails only on
# functional errors (a failed ADD, a duplicate address, something left behind).
if [[ $RUN_INTEGRATION -eq 1 && $EUID -eq 0 && -z $FILTER ]]; then
    say "benchmark smoke (bench/PodBridge.Bench --smoke)"
    if ! dotnet run -c Release --project bench/PodBridge.Bench -- --smoke --bin-dir "${PODBRIDGE_BIN_DIR:-$REPO/artifacts/bin}"; then
        echo "test.sh: the benchmark smoke run failed" >&2
        BROKEN=$((BROKEN + 1))
    fi
fi

# The same for the CRI latency benchmark: a few pods through a private containerd, functional errors only.
if [[ $RUN_INTEGRATION -eq 1 && $EUID -eq 0 && -z $FILTER ]]; then
    say "CRI benchmark smoke (bench/PodBridge.Bench --cri --smoke)"
    if ! dotnet run -c Release --project bench/PodBridge.Bench -- --cri --smoke --bin-dir "${PODBRIDGE_BIN_DIR:-$REPO/artifacts/bin}"; then
        echo "test.sh: the CRI benchmark smoke run failed" >&2
        BROKEN=$((BROKEN + 1))
    fi
fi

echo
[[ $BROKEN -eq 0 ]] || echo "test.sh: $BROKEN build/publish/run failure(s), see above"
echo "$PASSED passed, $FAILED failed"
if [[ $FAILED -gt 0 || $BROKEN -gt 0 || $PASSED -eq 0 ]]; then
    exit 1
fi
