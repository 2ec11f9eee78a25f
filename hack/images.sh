#!/usr/bin/env bash
# Builds the three OrderPipeline images without a Docker engine (`make images`):
#   localhost/orderpipeline/services:dev, .../operator:dev, .../dashboard:dev
# buildah (chroot isolation, vfs storage) builds the real Dockerfiles on local base
# images: Debian bookworm made by debootstrap (Python 3.11; nginx), and the pinned helm
# from the toolchain cache. Bases and buildah's storage are cached under
#   $ORDERPIPELINE_CACHE/images-<IMAGES_KEY>/
# so a warm run only rebuilds what changed. IMAGES_OCI=1 also writes each image as an
# OCI archive (oci/<name>.tar) for containerd or `kind load image-archive`.
# Usage: hack/images.sh [all|services|operator|dashboard]
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=versions.env
source "$ROOT/hack/versions.env"
CACHE="${ORDERPIPELINE_CACHE:-$HOME/.cache/orderpipeline}"
# Bump to rebuild the base images (e.g. for Debian security updates).
IMAGES_KEY="${IMAGES_KEY:-bookworm-1}"
WORK="$CACHE/images-$IMAGES_KEY"
TAG="${IMAGES_TAG:-dev}"
REVISION="$(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
VERSION="$(sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/services/pyproject.toml" | head -1)"

log() { printf '[images] %s\n' "$*" >&2; }

ensure_tools() {
    local missing=()
    command -v buildah >/dev/null || missing+=(buildah)
    command -v runc >/dev/null || missing+=(runc)
    command -v debootstrap >/dev/null || missing+=(debootstrap)
    command -v containerd >/dev/null || missing+=(containerd)
    if ((${#missing[@]})); then
        log "installing from Debian: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2 \
            || { apt-get update >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >&2; }
    fi
}

# The machine's own Debian mirror (from its apt sources), so no host is written here.
debian_mirror() {
    if [[ -n "${DEBIAN_MIRROR:-}" ]]; then echo "$DEBIAN_MIRROR"; return; fi
    local uri
    uri="$(grep -hs '^URIs:' /etc/apt/sources.list.d/*.sources | awk '{print $2}' | grep -v security | head -1 || true)"
    [[ -n "$uri" ]] || uri="$(grep -hs '^deb ' /etc/apt/sources.list | awk '{print $2}' | grep -v security | head -1 || true)"
    [[ -n "$uri" ]] || { log "no Debian mirror in the apt sources: set DEBIAN_MIRROR"; exit 1; }
    echo "$uri"
}

bah() { buildah --root "$WORK/storage" --runroot "$WORK/run" --storage-driver vfs "$@"; }

has_image() { bah inspect --type image "$1" >/dev/null 2>&1; }

# A base image from a debootstrap rootfs: $1 image name, $2.. extra packages.
debian_base() {
    local image="$1"; shift
    local packages; packages="$(IFS=,; echo "$*")"
    if has_image "$image"; then return; fi
    local rootfs="$WORK/rootfs-${image##*/}"
    rootfs="${rootfs//:/-}"
    rm -rf "$rootfs"
    log "debootstrap bookworm + $packages -> $image"
    debootstrap --variant=minbase --include="$packages" bookworm "$rootfs" "$(debian_mirror)" >"$WORK/debootstrap.log" 2>&1 \
        || { tail -20 "$WORK/debootstrap.log" >&2; exit 1; }
    # apt's lists and caches only make the base bigger.
    rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin "$rootfs"/var/cache/apt/archives/*.deb
    local c; c="$(bah from scratch)"
    bah copy "$c" "$rootfs" / >/dev/null
    bah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$c"
    bah commit --rm "$c" "$image" >/dev/null
    rm -rf "$rootfs"
}

helm_base() {
    local image="$1" helm="$CACHE/helm-$HELM_VERSION/bin/helm"
    if has_image "$image"; then return; fi
    [[ -x "$helm" ]] || { log "helm missing at $helm: run make bootstrap"; exit 1; }
    local c; c="$(bah from scratch)"
    bah copy --chmod 0755 "$c" "$helm" /usr/bin/helm >/dev/null
    bah commit --rm "$c" "$image" >/dev/null
}

dashboard_dist() {
    local dir="$ROOT/services/dashboard"
    if [[ ! -f "$dir/dist/index.html" ]] || [[ -n "$(find "$dir/src" "$dir/index.html" "$dir/package.json" -newer "$dir/dist/index.html" -print -quit)" ]]; then
        log "building the dashboard bundle (npm)"
        (cd "$dir" && { [[ -d node_modules ]] || npm ci --no-audit --no-fund; } && npm run build) >&2
    fi
}

build() {
    local name="$1" dockerfile="$2" context="$3"; shift 3
    log "building localhost/orderpipeline/$name:$TAG"
    local started=$SECONDS
    # The host's CA bundle: pip and uv reach the package index through it.
    bah bud --isolation chroot --layers \
        -v /etc/ssl/certs:/etc/ssl/certs:ro \
        --build-arg SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
        --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
        --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" \
        -f "$dockerfile" -t "localhost/orderpipeline/$name:$TAG" "$@" "$context" >"$WORK/build-$name.log" 2>&1 \
        || { tail -30 "$WORK/build-$name.log" >&2; exit 1; }
    if [[ -n "${IMAGES_OCI:-}" ]]; then
        mkdir -p "$WORK/oci"
        rm -f "$WORK/oci/$name.tar"
        bah push "localhost/orderpipeline/$name:$TAG" "oci-archive:$WORK/oci/$name.tar:orderpipeline/$name:$TAG" >/dev/null 2>&1
    fi
    log "built $name in $((SECONDS - started)) s"
}

main() {
    ensure_tools
    mkdir -p "$WORK"
    local python_base=localhost/orderpipeline-base/python:3.11-bookworm
    local nginx_base=localhost/orderpipeline-base/nginx:bookworm
    local helm_image="localhost/orderpipeline-base/helm:$HELM_VERSION"
    debian_base "$python_base" python3 python3-venv ca-certificates
    debian_base "$nginx_base" nginx gettext-base ca-certificates
    helm_base "$helm_image"
    dashboard_dist

    local only="${1:-all}"
    if [[ "$only" == all || "$only" == services ]]; then
        build services "$ROOT/services/Dockerfile" "$ROOT" --ignorefile "$ROOT/services/.dockerignore" \
            --build-arg PYTHON_IMAGE="$python_base" --build-arg UV_VERSION="$UV_VERSION"
    fi
    if [[ "$only" == all || "$only" == operator ]]; then
        build operator "$ROOT/operator/Dockerfile" "$ROOT" --ignorefile "$ROOT/operator/.dockerignore" \
            --build-arg PYTHON_IMAGE="$python_base" --build-arg HELM_IMAGE="$helm_image" \
            --build-arg UV_VERSION="$UV_VERSION"
    fi
    if [[ "$only" == all || "$only" == dashboard ]]; then
        build dashboard "$ROOT/services/dashboard/Dockerfile" "$ROOT/services/dashboard" \
            --build-arg NGINX_IMAGE="$nginx_base" --build-arg DIST=context
    fi
    echo "$WORK"
}

main "$@"
