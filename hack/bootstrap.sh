#!/usr/bin/env bash
# Installs every tool the project runs, from the package registries this
# machine reaches, into one cache folder outside the clone:
#   ${ORDERPIPELINE_CACHE:-~/.cache/orderpipeline}/<component>-<version>/
# Each component is keyed by its pinned version (hack/versions.env) and marked
# complete only when it built, so a second run skips everything in seconds and
# an interrupted run resumes where it stopped.
#
# Usage: hack/bootstrap.sh [component...]   (default: all)
# Independent components install at the same time (see LANES); each make
# target names only the components it uses (Makefile).
set -euo pipefail

repo=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=hack/versions.env
source "$repo/hack/versions.env"
cache=${ORDERPIPELINE_CACHE:-$HOME/.cache/orderpipeline}
mkdir -p "$cache/logs"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local CGO_ENABLED=0

step() { printf '\033[1m==> %s\033[0m\n' "$*"; }
done_mark() { [ -f "$1/.complete" ]; }

# run_logged NAME CMD...: runs CMD with output in $cache/logs/NAME.log and
# prints the log's tail on failure, so a cold build shows what it is doing
# without flooding the terminal.
run_logged() {
  local name=$1; shift
  local log="$cache/logs/$name.log"
  local start=$SECONDS
  if ! "$@" >"$log" 2>&1; then
    echo "FAILED: $name (log: $log)" >&2
    tail -30 "$log" >&2
    exit 1
  fi
  echo "    $name done in $((SECONDS - start)) s"
}

# module_dir MODULE@VERSION: the module's source in the Go module cache
# (downloaded first when missing). Read-only, as the whole module cache is.
module_dir() {
  # On failure `go mod download -json` still prints JSON, with "Error" instead of "Dir":
  # say that error in one line rather than a Python traceback.
  go mod download -json "$1" | python3 -c '
import json, sys
info = json.load(sys.stdin)
if "Dir" not in info:
    sys.exit("go mod download " + sys.argv[1] + ": " + info.get("Error", "no module directory"))
print(info["Dir"])' "$1"
}

# module_copy MODULE@VERSION DEST: a writable copy of a module's source, for
# modules that `go install` refuses (replace directives in their go.mod) or
# whose source needs changes before it builds. Callers put DEST inside the
# component's folder, so an interrupted build leaves nothing that the next
# run's `rm -rf` of that folder misses.
module_copy() {
  local src
  src=$(module_dir "$1")
  cp -r "$src" "$2"
  chmod -R u+w "$2"
}

install_uv() {
  local dir="$cache/uv-$UV_VERSION"
  done_mark "$dir" && return
  step "uv $UV_VERSION (PyPI)"
  rm -rf "$dir"
  # Straight into the folder (bin/uv), not into a virtualenv: creating one
  # (ensurepip) took longer than downloading uv itself on a loaded machine.
  run_logged uv env PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1 \
    python3.11 -m pip install -q --target "$dir" "uv==$UV_VERSION"
  touch "$dir/.complete"
}

# venv_python: the virtualenv's interpreter. ORDERPIPELINE_PYTHON when set;
# else Debian's python3.11, the interpreter the images run, built with PGO and
# LTO (the backend's in-process request cost is ~20% lower on it than on an
# unoptimized build of the same version); else the first python3.11 on PATH.
venv_python() {
  if [ -n "${ORDERPIPELINE_PYTHON:-}" ]; then echo "$ORDERPIPELINE_PYTHON"
  elif [ -x /usr/bin/python3.11 ]; then echo /usr/bin/python3.11
  else command -v python3.11
  fi
}

# python_env_key: what decides the virtualenv's contents (the lock, every
# pyproject.toml of the workspace, the uv version, the interpreter), hashed.
# The interpreter is also checked by running it: a venv whose Python went away
# is synced afresh.
python_env_key() {
  { cat "$repo/uv.lock"
    find "$repo" \( -name .venv -o -name node_modules -o -name .git \) -prune -o -name pyproject.toml -print \
      | sort | xargs cat
    echo "uv $UV_VERSION"
    echo "python $(venv_python)"
  } | sha256sum | cut -c1-16
}

install_python_env() {
  # The virtualenv lives in the clone (.venv) so editable installs point at
  # this checkout; uv's cache outside the clone makes a fresh one take seconds.
  # Keyed like the other components: with the same key uv is not run at all,
  # so a bootstrap started while the venv is in use (a test calling make)
  # never rewrites it under the running interpreter.
  local mark="$repo/.venv/.bootstrap-key" key
  key=$(python_env_key)
  [ "$(cat "$mark" 2>/dev/null)" = "$key" ] && "$repo/.venv/bin/python" -c '' 2>/dev/null && return
  install_uv
  step "Python environment from uv.lock"
  run_logged python bash -c "cd '$repo' && UV_CACHE_DIR='$cache/uv-cache' UV_PYTHON_DOWNLOADS=never \
    '$cache/uv-$UV_VERSION/bin/uv' sync --frozen --all-packages --python '$(venv_python)' --quiet"
  echo "$key" >"$mark"
}

install_kafka() {
  local dir="$cache/kafka-$KAFKA_VERSION"
  done_mark "$dir" && return
  step "Apache Kafka $KAFKA_VERSION jars (Maven Central)"
  rm -rf "$dir"
  run_logged kafka mvn -B -q -f "$repo/hack/kafka/pom.xml" \
    -Dkafka.version="$KAFKA_VERSION" -Dlog4j.version="$LOG4J_VERSION" \
    -Ddependency.plugin.version="$MAVEN_DEPENDENCY_PLUGIN_VERSION" \
    dependency:copy-dependencies -DincludeScope=runtime -DoutputDirectory="$dir/libs"
  touch "$dir/.complete"
}

install_gocaves() {
  local dir="$cache/gocaves-$GOCAVES_VERSION"
  done_mark "$dir" && return
  step "gocaves $GOCAVES_VERSION (Go module proxy, built from source)"
  rm -rf "$dir"; mkdir -p "$dir/bin"
  module_copy "github.com/couchbaselabs/gocaves@$GOCAVES_VERSION" "$dir/src"
  # Upstream's go.mod replaces its client module with a local folder that the
  # module zip lacks, and two generated files are missing: drop the replace and
  # regenerate them before building. The generator runs with -trimpath too, so
  # the standard library it compiles is the one the build reuses (about a fifth
  # less compiling on a cold Go cache); both link stripped (-s -w), as every
  # other Go tool here, which is less work for the linker.
  run_logged gocaves bash -c "cd '$dir/src' \
    && go mod edit -dropreplace=github.com/couchbaselabs/gocaves/client -droprequire=github.com/couchbaselabs/gocaves/client \
    && go run -trimpath -ldflags '-s -w' ./tools/prebuildstep.go \
    && go build -trimpath -ldflags '-s -w' -o '$dir/bin/gocaves' ."
  rm -rf "$dir/src"
  touch "$dir/.complete"
}

# kube_ldflags: the version stamps of a Kubernetes release build. The module
# source alone reports v0.0.0-master, and version skew checks (kubectl, the
# node's kubeletVersion) read these.
kube_ldflags() {
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  echo "-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
}

install_kubernetes() {
  local dir="$cache/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
  done_mark "$dir" && return
  step "kube-apiserver, kube-controller-manager, kube-scheduler $KUBERNETES_VERSION and etcd $ETCD_VERSION (Go module proxy; 10-20 min cold on 2 cores)"
  rm -rf "$dir"; mkdir -p "$dir/bin"
  run_logged kubernetes bash -c "cd '$repo/hack/tools' && go build -trimpath -ldflags '$(kube_ldflags)' -o '$dir/bin/' \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
    && go build -trimpath -ldflags '-s -w' -o '$dir/bin/etcd' go.etcd.io/etcd/server/v3"
  touch "$dir/.complete"
}

# The real node's kubelet and kube-proxy, from the same tools module (so the
# same dependency versions) as the control plane. A folder of their own, so a
# cache that already holds the control plane does not rebuild it for them.
install_kubelet() {
  local dir="$cache/kubernetes-node-$KUBERNETES_VERSION"
  done_mark "$dir" && return
  step "kubelet, kube-proxy $KUBERNETES_VERSION (Go module proxy, through hack/tools; under a minute after the control plane)"
  rm -rf "$dir"; mkdir -p "$dir/bin"
  run_logged kubelet bash -c "cd '$repo/hack/tools' && go build -trimpath -ldflags '$(kube_ldflags)' -o '$dir/bin/' \
      k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kube-proxy"
  touch "$dir/.complete"
}

# go_install NAME DIR [FLAG...] PACKAGE@VERSION...: tools whose module has no
# replace directives (go install refuses those), into DIR/bin. FLAGs go to
# `go install` as given (-tags, -ldflags). Binaries are stripped by default; a
# caller's own -ldflags replaces that default (the last one wins, as
# `go help build` documents), so callers that stamp a version repeat "-s -w".
go_install() {
  local name=$1 dir=$2; shift 2
  local last=${*: -1}
  done_mark "$dir" && return
  step "$name ${last##*@} (Go module proxy)"
  rm -rf "$dir"; mkdir -p "$dir/bin"
  run_logged "$name" env GOBIN="$dir/bin" go install -trimpath -ldflags "-s -w" "$@"
  touch "$dir/.complete"
}

install_kwok() {
  local dir="$cache/kwok-$KWOK_VERSION"
  done_mark "$dir" && return
  go_install kwok "$dir" "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION"
  rm -f "$dir/.complete"
  # kwok plays the kubelet by following "stages"; use the defaults its module
  # ships (node initialise + heartbeat, pod ready/complete/delete).
  local src
  src=$(module_dir "sigs.k8s.io/kwok@$KWOK_VERSION")
  local stage="$src/kustomize/stage"
  for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"; cat "$stage/$f"
  done >"$dir/stages.yaml"
  touch "$dir/.complete"
}

# Debian packages the real node runs or builds with: the CNI plugins
# (/usr/lib/cni), iptables, nftables and conntrack for kube-proxy, buildah and
# debootstrap for the node's images, libseccomp-dev and pkg-config for runc's
# seccomp support, gcc and libc6-dev (static glibc) for runc and pause.
install_node_packages() {
  local pkgs=(containernetworking-plugins iptables nftables conntrack libseccomp-dev
              buildah debootstrap pkg-config gcc libc6-dev)
  local missing=() p
  for p in "${pkgs[@]}"; do
    [[ $(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null) == ii* ]] || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  step "${missing[*]} (Debian)"
  # apt-get update only when the install fails (as hack/images.sh does): it is
  # the slow part, and the package lists are usually recent enough.
  run_logged node-packages bash -c 'export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "$@" \
      || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"; }' _ "${missing[@]}"
}

install_containerd() {
  local v=$CONTAINERD_VERSION pkg=github.com/containerd/containerd/v2
  # The no_* tags leave out snapshotters that need C libraries (btrfs,
  # devicemapper, zfs); the node uses overlayfs. Version stamped as in
  # containerd's Makefile, or it reports "2.x.y+unknown".
  go_install containerd "$cache/containerd-$v" -tags "no_btrfs no_devmapper no_zfs" \
    -ldflags "-s -w -X $pkg/version.Version=$v" \
    "$pkg/cmd/containerd@$v" "$pkg/cmd/containerd-shim-runc-v2@$v" "$pkg/cmd/ctr@$v"
}

install_runc() {
  # seccomp needs cgo and libseccomp (install_node_packages); the version comes
  # from runc's embedded VERSION file, so no stamp is needed.
  CGO_ENABLED=1 go_install runc "$cache/runc-$RUNC_VERSION" -tags seccomp \
    "github.com/opencontainers/runc@$RUNC_VERSION"
}

# Traefik is the node's Ingress controller.
install_traefik() {
  local dir="$cache/traefik-$TRAEFIK_VERSION"
  done_mark "$dir" && return
  step "traefik $TRAEFIK_VERSION (Go module proxy, built from source; ~5 min on 2 cores)"
  rm -rf "$dir"; mkdir -p "$dir/bin"
  # Its go.mod replaces three dependencies with forks, so `go install` refuses
  # the module: build from a copy. webui/static holds only a placeholder (the
  # web UI is built with npm upstream), so the embedded dashboard is empty.
  module_copy "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" "$dir/src"
  local ldflags="-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=${TRAEFIK_VERSION#v}"
  run_logged traefik bash -c "cd '$dir/src' && go build -trimpath -ldflags '$ldflags' -o '$dir/bin/traefik' ./cmd/traefik"
  rm -rf "$dir/src"
  touch "$dir/.complete"
}

# The pod sandbox's pause process, compiled from the C file in the Kubernetes
# release's module. Static, because it is the only file of the pause image.
install_pause() {
  local dir="$cache/pause-$KUBERNETES_VERSION"
  done_mark "$dir" && return
  step "pause (k8s.io/kubernetes $KUBERNETES_VERSION build/pause/linux/pause.c, Go module proxy; gcc)"
  rm -rf "$dir"; mkdir -p "$dir/bin"
  local src
  src=$(module_dir "k8s.io/kubernetes@$KUBERNETES_VERSION")
  run_logged pause gcc -Os -static -DVERSION=3.10-local -o "$dir/bin/pause" "$src/build/pause/linux/pause.c"
  touch "$dir/.complete"
}

install_chromium() {
  if [ -x /usr/bin/chromium ]; then return; fi
  step "chromium (Debian)"
  run_logged chromium bash -c "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium"
}

install_dashboard_deps() {
  local app="$repo/services/dashboard"
  [ -f "$app/package-lock.json" ] || return 0
  local want; want=$(sha256sum "$app/package-lock.json" | cut -c1-16)
  if [ -f "$app/node_modules/.lock-sha" ] && [ "$(cat "$app/node_modules/.lock-sha")" = "$want" ]; then return; fi
  step "dashboard npm dependencies (npm ci)"
  run_logged npm bash -c "cd '$app' && npm ci --no-audit --no-fund --cache '$cache/npm-cache' --prefer-offline"
  echo "$want" >"$app/node_modules/.lock-sha"
}

# Each component's install step, by the name `hack/bootstrap.sh NAME...` takes.
install() {
  case $1 in
    uv) install_uv ;;
    python) install_python_env ;;
    kafka) install_kafka ;;
    gocaves) install_gocaves ;;
    kubernetes) install_kubernetes ;;
    kwok) install_kwok ;;
    # Helm's source carries only "vMAJOR.MINOR"; its release builds stamp the patch.
    helm) go_install helm "$cache/helm-$HELM_VERSION" \
            -ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" \
            "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" ;;
    chromium) install_chromium ;;
    dashboard) install_dashboard_deps ;;
    node-packages) install_node_packages ;;
    kubelet) install_kubelet ;;
    containerd) install_containerd ;;
    runc) install_runc ;;
    crictl) go_install crictl "$cache/crictl-$CRICTL_VERSION" \
              -ldflags "-s -w -X sigs.k8s.io/cri-tools/pkg/version.Version=$CRICTL_VERSION" \
              "sigs.k8s.io/cri-tools/cmd/crictl@$CRICTL_VERSION" ;;
    coredns) go_install coredns "$cache/coredns-$COREDNS_VERSION" "github.com/coredns/coredns@$COREDNS_VERSION" ;;
    traefik) install_traefik ;;
    pause) install_pause ;;
  esac
}

# Components run in lanes: one lane per resource they contend for, the lanes at
# the same time. Within a lane steps run in this order, one at a time: Go
# builds would only share the same two cores, and apt-get holds dpkg's lock.
# runc and pause compile against Debian packages (libseccomp-dev, static libc),
# so they follow node-packages in the Debian lane.
LANES=(
  "python: uv python"
  "maven: kafka"
  "npm: dashboard"
  "go: gocaves kubernetes kubelet kwok helm containerd crictl coredns traefik"
  "debian: node-packages runc pause chromium"
)

main() {
  local all=() lane c
  for lane in "${LANES[@]}"; do read -ra c <<<"${lane#*:}"; all+=("${c[@]}"); done
  local want=("$@")
  [ $# -eq 0 ] && want=("${all[@]}")
  for c in "${want[@]}"; do
    [[ " ${all[*]} " == *" $c "* ]] || { echo "unknown component: $c (one of: ${all[*]})" >&2; exit 2; }
  done
  local start=$SECONDS pids=() failed=0 pid steps
  for lane in "${LANES[@]}"; do
    steps=()
    for c in ${lane#*:}; do [[ " ${want[*]} " == *" $c "* ]] && steps+=("$c"); done
    [ ${#steps[@]} -eq 0 ] && continue
    ( for c in "${steps[@]}"; do install "$c"; done ) &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  if [ "$failed" -ne 0 ]; then
    echo "bootstrap FAILED after $((SECONDS - start)) s (logs: $cache/logs/)" >&2
    exit 1
  fi
  echo "bootstrap complete in $((SECONDS - start)) s (cache: $cache)"
}

main "$@"
