#!/usr/bin/env bash
# Builds the podbridge node image (deploy/Containerfile) from the published Native AOT binaries.
#
#   deploy/build-image.sh                        stage + build with podman (docker when podman is missing)
#   deploy/build-image.sh --tag NAME             image name (default localhost/podbridge:dev, as deploy/podbridge.yaml)
#   deploy/build-image.sh --engine docker        force podman or docker
#   deploy/build-image.sh --bin-dir DIR          where podbridge, podbridge-ipam, podbridge-node are
#                                                (default $PODBRIDGE_BIN_DIR, else artifacts/bin)
#   deploy/build-image.sh --cni-dir DIR          where portmap and loopback are (default /usr/lib/cni, Debian's
#                                                containernetworking-plugins)
#   deploy/build-image.sh --stage-only DIR       only write the build context into DIR (then: podman build DIR)
#
# Publish the binaries first (./test.sh does), e.g.:
#   for p in src/cni-plugin/podbridge src/ipam/podbridge-ipam src/podbridge-node; do
#       dotnet publish $p -c Release -o artifacts/bin; done
set -euo pipefail

DEPLOY=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$DEPLOY")
BIN_DIR=${PODBRIDGE_BIN_DIR:-$REPO/artifacts/bin}
CNI_DIR=/usr/lib/cni
TAG=localhost/podbridge:dev
ENGINE=
STAGE=
while [[ $# -gt 0 ]]; do
    case "$1" in
        --tag) TAG=${2:?--tag needs a name}; shift 2 ;;
        --engine) ENGINE=${2:?--engine needs podman or docker}; shift 2 ;;
        --bin-dir) BIN_DIR=${2:?--bin-dir needs a directory}; shift 2 ;;
        --cni-dir) CNI_DIR=${2:?--cni-dir needs a directory}; shift 2 ;;
        --stage-only) STAGE=${2:?--stage-only needs a directory}; shift 2 ;;
        -h|--help) awk 'NR > 1 && /^#/ { print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "build-image.sh: unknown option '$1'" >&2; exit 2 ;;
    esac
done
die() { echo "build-image.sh: $*" >&2; exit 1; }

OURS=(podbridge podbridge-ipam podbridge-node)
DEBIAN=(portmap loopback)
for b in "${OURS[@]}"; do
    [[ -x $BIN_DIR/$b ]] || die "$BIN_DIR/$b is missing: publish it first (see --help)"
done
for b in "${DEBIAN[@]}"; do
    [[ -x $CNI_DIR/$b ]] || die "$CNI_DIR/$b is missing: apt-get install containernetworking-plugins (or --cni-dir)"
done

if [[ -z $ENGINE && -z $STAGE ]]; then
    if command -v podman >/dev/null; then ENGINE=podman
    elif command -v docker >/dev/null; then ENGINE=docker
    else die "neither podman nor docker is installed"; fi
fi

if [[ -n $STAGE ]]; then
    mkdir -p "$STAGE"
    [[ -z $(ls -A "$STAGE") ]] || die "--stage-only: $STAGE is not empty"
    CTX=$(cd "$STAGE" && pwd)
else
    CTX=$(mktemp -d "${TMPDIR:-/tmp}/podbridge-image.XXXXXX")
    trap 'rm -rf "$CTX"' EXIT
fi
ROOT=$CTX/rootfs
mkdir -p "$ROOT/opt/podbridge/bin"
for b in "${OURS[@]}"; do install -m 0755 "$BIN_DIR/$b" "$ROOT/opt/podbridge/bin/$b"; done
for b in "${DEBIAN[@]}"; do install -m 0755 "$CNI_DIR/$b" "$ROOT/opt/podbridge/bin/$b"; done

# The shared libraries, at the paths the dynamic loader resolves them to (ldd), so the image's loader finds them
# without an ld.so.cache. .NET opens libssl/libcrypto with dlopen() for HTTPS to the API server: ldd cannot see
# those, so they are added by name, with what they need in turn.
libs_of() { ldd "$1" 2>/dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'; }
declare -A LIBS=()
for f in "$ROOT"/opt/podbridge/bin/*; do
    for l in $(libs_of "$f"); do LIBS[$l]=1; done
done
for name in libssl.so.3 libcrypto.so.3; do
    path=$(ldconfig -p | awk -v n="$name" '$1 == n && /x86-64/ { print $NF; exit }')
    [[ -n $path ]] || die "$name not found (apt-get install libssl3)"
    LIBS[$path]=1
    for l in $(libs_of "$path"); do LIBS[$l]=1; done
done
for l in "${!LIBS[@]}"; do
    mkdir -p "$ROOT$(dirname "$l")"
    cp -L "$l" "$ROOT$l"     # -L: the file itself, not a symlink into a directory the image lacks
done
cp "$DEPLOY/Containerfile" "$CTX/Containerfile"

if [[ -n $STAGE ]]; then
    echo "build-image.sh: context staged in $CTX ($(find "$ROOT" -type f | wc -l) files)"
    exit 0
fi
echo "build-image.sh: $ENGINE build -t $TAG ($(find "$ROOT" -type f | wc -l) files)"
"$ENGINE" build -t "$TAG" -f "$CTX/Containerfile" "$CTX"
