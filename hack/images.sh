#!/usr/bin/env bash
# Builds the three OrderPipeline images without a Docker engine (`make images`):
#   localhost/orderpipeline/services:dev, .../operator:dev, .../dashboard:dev
# buildah (chroot isolation, vfs storage) builds the real Dockerfiles on local base
# images: Debian bookworm made by debootstrap (Python 3.11; nginx), and the pinned helm
# from the toolchain cache. Bases and buildah's storage are cached under
#   $ORDERPIPELINE_CACHE/images-<IMAGES_KEY>/
# so a warm run only rebuilds what changed. IMAGES_OCI=1 also writes each image as an
# OCI archive (oci/<name>.tar) for containerd or `kind load image-archive`.
#
# `node` builds the images of the one-node cluster instead (`make node-up` imports them),
# each always written as an OCI archive to $WORK/oci/<name>.tar:
#   pause.tar      localhost/node/pause:3.10                    (the pod sandbox)
#   coredns.tar    localhost/node/coredns:$COREDNS_VERSION      (cluster DNS)
#   traefik.tar    localhost/node/traefik:$TRAEFIK_VERSION      (the ingress controller)
#   kafka.tar      localhost/orderpipeline-dev/kafka:$KAFKA_VERSION
#   couchbase.tar  localhost/orderpipeline-dev/couchbase:gocaves-$GOCAVES_VERSION
# from the toolchain cache's binaries and jars and the sources under hack/node/; an image
# whose inputs (version, binary, sources, base) did not change is not rebuilt.
# Usage: hack/images.sh [all|services|operator|dashboard] | hack/images.sh node [name...]
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
    bah commit --quiet --rm "$c" "$image" >/dev/null
    rm -rf "$rootfs"
}

helm_base() {
    local image="$1" helm="$CACHE/helm-$HELM_VERSION/bin/helm"
    if has_image "$image"; then return; fi
    [[ -x "$helm" ]] || { log "helm missing at $helm: run make bootstrap"; exit 1; }
    local c; c="$(bah from scratch)"
    bah copy --chmod 0755 "$c" "$helm" /usr/bin/helm >/dev/null
    bah commit --quiet --rm "$c" "$image" >/dev/null
}

dashboard_dist() {
    local dir="$ROOT/services/dashboard"
    if [[ ! -f "$dir/dist/index.html" ]] || [[ -n "$(find "$dir/src" "$dir/index.html" "$dir/package.json" -newer "$dir/dist/index.html" -print -quit)" ]]; then
        log "building the dashboard bundle (npm)"
        (cd "$dir" && { [[ -d node_modules ]] || npm ci --no-audit --no-fund; } && npm run build) >&2
    fi
}

# The files a build context sends: the allow-list of an ignore file ("*" then "!path"
# lines), or everything but node_modules. NUL-separated, sorted, relative to the context.
context_files() {
    local context="$1" ignorefile="$2"
    if [[ -n "$ignorefile" ]]; then
        local allowed=()
        mapfile -t allowed < <(sed -n 's/^!//p' "$ignorefile")
        (cd "$context" && find "${allowed[@]}" -type f ! -name '*.pyc' ! -path '*/__pycache__/*' -print0 | sort -z)
    else
        (cd "$context" && find . -path ./node_modules -prune -o -type f -print0 | sort -z)
    fi
}

# A hash of everything a project image is built from: Dockerfile, build arguments (not the
# revision label), base image ids and the context's files. vfs copies every layer on each
# build (minutes for the three images), so an unchanged image is not built again.
project_key() {
    local dockerfile="$1" context="$2" ignorefile="$3"; shift 3
    {
        sha256sum "$dockerfile"
        printf '%s\n' "$@"
        local arg
        for arg in "$@"; do
            if [[ "$arg" == *_IMAGE=* ]]; then
                bah inspect --type image --format '{{.FromImageID}}' "${arg#*=}" 2>/dev/null || true
            fi
        done
        (cd "$context" && context_files "$context" "$ignorefile" | xargs -0 -r sha256sum)
    } | sha256sum | cut -c1-16
}

build() {
    local name="$1" dockerfile="$2" context="$3"; shift 3
    local image="localhost/orderpipeline/$name:$TAG" ignorefile="" args=() arg
    local previous=""
    for arg in "$@"; do
        [[ "$previous" == --ignorefile ]] && ignorefile="$arg"
        [[ "$previous" == --build-arg ]] && args+=("$arg")
        previous="$arg"
    done
    local key stamp="$WORK/keys/$name-$TAG.key" archive="$WORK/oci/$name.tar"
    key="$(project_key "$dockerfile" "$context" "$ignorefile" "${args[@]}" "VERSION=$VERSION")"
    if has_image "$image" && [[ "$(cat "$stamp" 2>/dev/null)" == "$key" ]] \
        && { [[ -z "${IMAGES_OCI:-}" ]] || [[ "$(cat "$archive.key" 2>/dev/null)" == "$key" ]]; }; then
        log "$name unchanged (inputs $key)"
        return
    fi
    log "building $image"
    local started=$SECONDS
    # The host's CA bundle: pip and uv reach the package index through it.
    bah bud --isolation chroot --layers --force-rm \
        -v /etc/ssl/certs:/etc/ssl/certs:ro \
        --build-arg SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt \
        --build-arg PIP_CERT=/etc/ssl/certs/ca-certificates.crt \
        --build-arg VERSION="$VERSION" --build-arg REVISION="$REVISION" \
        --label io.orderpipeline.inputs="$key" \
        -f "$dockerfile" -t "$image" "$@" "$context" >"$WORK/build-$name.log" 2>&1 \
        || { tail -30 "$WORK/build-$name.log" >&2; exit 1; }
    mkdir -p "$WORK/keys"
    echo "$key" >"$stamp"
    if [[ -n "${IMAGES_OCI:-}" ]]; then
        mkdir -p "$WORK/oci"
        rm -f "$archive" "$archive.key"
        # Named as the charts and the operator name it by default (docker.io/orderpipeline/
        # <name>:<version>), so the node runs `helm install` and the samples unchanged.
        bah push "$image" "oci-archive:$archive:docker.io/orderpipeline/$name:$VERSION" >/dev/null 2>&1
        echo "$key" >"$archive.key"
    fi
    log "built $name in $((SECONDS - started)) s"
}

# -- the one-node cluster's images (`hack/images.sh node`) --------------------------------
# No Dockerfiles: nothing runs inside these builds (`buildah run` would also bring up
# podman's default network); files are copied in and the image configured.

NODE_SRC="$ROOT/hack/node"

# A short hash of the named files' contents (the cache key of an image's inputs).
hash_files() { cat "$@" | sha256sum | cut -c1-16; }

image_id() { bah images --quiet --no-trunc "$1"; }

# Scratch images take the binary alone: it must not need a dynamic loader.
require_static() {
    local binary="$1"
    [[ -x "$binary" ]] || { log "missing $binary: run make bootstrap"; exit 1; }
    if command -v file >/dev/null && ! file -b "$binary" | grep -q 'statically linked'; then
        log "$binary is not statically linked: it cannot run in a scratch image"; exit 1
    fi
}

# node_image <archive name> <image> <key> <builder> [args]: runs the builder (which commits
# <image>) unless $WORK/oci/<archive name>.tar was written from the same key, then writes
# the archive. Its OCI ref name is the full image name, which `ctr images import` keeps.
node_image() {
    local name="$1" image="$2" key="$3"; shift 3
    local archive="$WORK/oci/$name.tar" stamp="$WORK/oci/$name.key"
    key="$(printf '%s\n' "$image" "$key" | sha256sum | cut -c1-16)"
    if [[ -f "$archive" && "$(cat "$stamp" 2>/dev/null)" == "$key" ]]; then
        log "$image: up to date ($archive)"
        return
    fi
    log "building $image"
    local started=$SECONDS previous
    previous="$(image_id "$image" 2>/dev/null || true)"
    "$@" "$image" "$key"
    # vfs keeps a full copy per image: drop the one this build replaced.
    if [[ -n "$previous" && "$previous" != "$(image_id "$image")" ]]; then
        bah rmi "$previous" >/dev/null 2>&1 || true
    fi
    mkdir -p "$WORK/oci"
    rm -f "$archive" "$stamp"
    bah push "$image" "oci-archive:$archive.partial:$image" >/dev/null 2>&1 \
        || { log "could not write $archive"; exit 1; }
    mv "$archive.partial" "$archive"
    echo "$key" >"$stamp"
    log "built $image in $((SECONDS - started)) s -> $archive ($(du -h "$archive" | cut -f1))"
}

# Labels every node image carries; the key says which inputs it was built from.
node_labels() {
    local c="$1" title="$2" version="$3" key="$4"
    bah config \
        --label org.opencontainers.image.title="$title" \
        --label org.opencontainers.image.version="$version" \
        --label org.opencontainers.image.revision="$REVISION" \
        --label io.orderpipeline.inputs="$key" "$c"
}

# scratch + one static binary at /<name>, run as a numeric non-root user.
static_image() {
    local binary="$1" user="$2" title="$3" version="$4" image="$5" key="$6"
    local entry="/${binary##*/}"
    local c; c="$(bah from scratch)"
    bah copy --chmod 0755 "$c" "$binary" "$entry" >/dev/null
    bah config --entrypoint "[\"$entry\"]" --cmd '' --user "$user" "$c"
    node_labels "$c" "$title" "$version" "$key"
    bah commit --quiet --rm "$c" "$image" >/dev/null
}

# Adds a user and group to an image's /etc/passwd and /etc/group (no `buildah run`).
add_user() {
    local c="$1" name="$2" id="$3" home="$4" mnt
    mnt="$(bah mount "$c")"
    grep -q "^$name:" "$mnt/etc/group" || echo "$name:x:$id:" >>"$mnt/etc/group"
    grep -q "^$name:" "$mnt/etc/passwd" \
        || echo "$name:x:$id:$id::$home:/usr/sbin/nologin" >>"$mnt/etc/passwd"
    mkdir -p "$mnt$home"
    chown "$id:$id" "$mnt$home"
    bah umount "$c" >/dev/null
}

kafka_image() {
    local base="$1" jar="$2" image="$3" key="$4"
    local c; c="$(bah from "$base")"
    bah copy "$c" "$CACHE/kafka-$KAFKA_VERSION/libs" /opt/kafka/libs >/dev/null
    bah copy "$c" "$jar" /opt/kafka/node/node-kafka.jar >/dev/null
    bah copy "$c" "$NODE_SRC/kafka/log4j2.properties" /opt/kafka/config/log4j2.properties >/dev/null
    bah copy --chmod 0755 "$c" "$NODE_SRC/kafka/kafka-node.sh" /usr/local/bin/kafka-node >/dev/null
    # The data volume's mount point; the volume itself is made writable by fsGroup.
    add_user "$c" kafka 1000 /var/lib/kafka
    bah config --entrypoint '["/usr/local/bin/kafka-node"]' --cmd '["broker"]' \
        --user 1000:1000 --workingdir /var/lib/kafka \
        --env HOME=/var/lib/kafka --env KAFKA_DATA_DIR=/var/lib/kafka \
        --port 9092 --port 8080 "$c"
    node_labels "$c" orderpipeline-dev-kafka "$KAFKA_VERSION" "$key"
    bah commit --quiet --rm "$c" "$image" >/dev/null
}

couchbase_image() {
    local base="$1" image="$2" key="$3"
    local c; c="$(bah from "$base")"
    bah copy --chmod 0755 "$c" "$CACHE/gocaves-$GOCAVES_VERSION/bin/gocaves" /usr/local/bin/gocaves >/dev/null
    bah copy "$c" "$NODE_SRC/couchbase/couchbase_dev.py" /opt/couchbase-dev/couchbase_dev.py >/dev/null
    bah config --entrypoint '["python3", "/opt/couchbase-dev/couchbase_dev.py"]' --cmd '' \
        --user 1000:1000 --workingdir /tmp \
        --env HOME=/tmp --env PYTHONDONTWRITEBYTECODE=1 --env PYTHONUNBUFFERED=1 \
        --port 11210 --port 8091 --port 8099 "$c"
    node_labels "$c" orderpipeline-dev-couchbase "gocaves-$GOCAVES_VERSION" "$key"
    bah commit --quiet --rm "$c" "$image" >/dev/null
}

# The Kafka entrypoint's Java class, compiled against the cached kafka-clients (the host's
# JDK; the image only has a JRE).
kafka_node_jar() {
    local out="$WORK/kafka-node-$1"
    if [[ ! -f "$out/node-kafka.jar" ]]; then
        command -v javac >/dev/null || { log "javac missing: apt-get install openjdk-17-jdk-headless"; exit 1; }
        rm -rf "$out" && mkdir -p "$out/classes"
        javac --release 17 -nowarn -d "$out/classes" \
            -cp "$CACHE/kafka-$KAFKA_VERSION/libs/kafka-clients-$KAFKA_VERSION.jar" \
            "$NODE_SRC/kafka/NodeKafka.java" >&2
        jar --create --file "$out/node-kafka.jar" -C "$out/classes" . >&2
    fi
    echo "$out/node-kafka.jar"
}

# node_images [name...]: all five, or only the named ones (e.g. `node kafka couchbase`).
node_images() {
    local wanted=" ${*:-pause coredns traefik kafka couchbase} "
    want() { [[ "$wanted" == *" $1 "* ]]; }
    local pause="$CACHE/pause-$KUBERNETES_VERSION/bin/pause"
    local gocaves="$CACHE/gocaves-$GOCAVES_VERSION/bin/gocaves"
    local libs="$CACHE/kafka-$KAFKA_VERSION/libs"

    # The user ids are those of the upstream images (pause: 65535, CoreDNS: 65532).
    if want pause; then
        require_static "$pause"
        node_image pause localhost/node/pause:3.10 "$(hash_files "$pause")" \
            static_image "$pause" 65535:65535 pause 3.10
    fi
    if want coredns; then
        : "${COREDNS_VERSION:?COREDNS_VERSION is not set (hack/versions.env)}"
        local coredns="$CACHE/coredns-$COREDNS_VERSION/bin/coredns"
        require_static "$coredns"
        node_image coredns "localhost/node/coredns:$COREDNS_VERSION" "$(hash_files "$coredns")" \
            static_image "$coredns" 65532:65532 coredns "$COREDNS_VERSION"
    fi
    if want traefik; then
        : "${TRAEFIK_VERSION:?TRAEFIK_VERSION is not set (hack/versions.env)}"
        local traefik="$CACHE/traefik-$TRAEFIK_VERSION/bin/traefik"
        require_static "$traefik"
        node_image traefik "localhost/node/traefik:$TRAEFIK_VERSION" "$(hash_files "$traefik")" \
            static_image "$traefik" 65532:65532 traefik "$TRAEFIK_VERSION"
    fi
    # A rebuilt base (IMAGES_KEY, or its cache removed) rebuilds what is on it.
    if want kafka; then
        [[ -f "$libs/kafka-clients-$KAFKA_VERSION.jar" ]] || { log "missing $libs: run make bootstrap"; exit 1; }
        local java_base=localhost/orderpipeline-base/java:17-bookworm kafka_inputs jar
        debian_base "$java_base" openjdk-17-jre-headless
        kafka_inputs="$(hash_files "$NODE_SRC/kafka/NodeKafka.java" "$NODE_SRC/kafka/kafka-node.sh" \
            "$NODE_SRC/kafka/log4j2.properties" "$libs"/*.jar) $(image_id "$java_base")"
        jar="$(kafka_node_jar "$KAFKA_VERSION-$(hash_files "$NODE_SRC/kafka/NodeKafka.java")")"
        node_image kafka "localhost/orderpipeline-dev/kafka:$KAFKA_VERSION" "$kafka_inputs" \
            kafka_image "$java_base" "$jar"
    fi
    if want couchbase; then
        require_static "$gocaves"
        local python_base=localhost/orderpipeline-base/python:3.11-bookworm
        debian_base "$python_base" python3 python3-venv ca-certificates
        node_image couchbase "localhost/orderpipeline-dev/couchbase:gocaves-$GOCAVES_VERSION" \
            "$(hash_files "$NODE_SRC/couchbase/couchbase_dev.py" "$gocaves") $(image_id "$python_base")" \
            couchbase_image "$python_base"
    fi
}

# vfs storage keeps every layer as a full copy of the file system: each rebuild left its
# predecessor behind as a dangling image (hundreds of MB each), and the storage grew to 47 GB
# in a day of builds until a build failed with "no space left on device" (and the node's
# kubelet evicted pods on disk pressure). Images still tagged, and the layers they are built
# on (the next build's cache), stay.
prune_storage() {
    bah rmi --prune >/dev/null 2>&1 || log "could not prune dangling images (storage $WORK/storage)"
}

main() {
    ensure_tools
    mkdir -p "$WORK"
    local only="${1:-all}"
    if [[ "$only" == node ]]; then
        shift
        node_images "$@"
        prune_storage
        echo "$WORK"
        return
    fi
    local python_base=localhost/orderpipeline-base/python:3.11-bookworm
    local nginx_base=localhost/orderpipeline-base/nginx:bookworm
    local helm_image="localhost/orderpipeline-base/helm:$HELM_VERSION"
    debian_base "$python_base" python3 python3-venv ca-certificates
    debian_base "$nginx_base" nginx gettext-base ca-certificates
    helm_base "$helm_image"
    dashboard_dist

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
    prune_storage
    echo "$WORK"
}

main "$@"
