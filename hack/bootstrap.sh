#!/usr/bin/env bash
# Installs every tool the project runs, from the package registries this
# machine reaches, into one cache folder outside the clone:
#   ${ORDERPIPELINE_CACHE:-~/.cache/orderpipeline}/<component>-<version>/
# Each component is keyed by its pinned version (hack/versions.env) and marked
# complete only when it built, so a second run skips everything in seconds and
# an interrupted run resumes where it stopped.
#
# Usage: hack/bootstrap.sh [component...]   (default: all)
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

install_uv() {
  local dir="$cache/uv-$UV_VERSION"
  done_mark "$dir" && return
  step "uv $UV_VERSION (PyPI)"
  rm -rf "$dir"
  run_logged uv bash -c "python3.11 -m venv '$dir' && '$dir/bin/pip' install -q 'uv==$UV_VERSION'"
  touch "$dir/.complete"
}

install_python_env() {
  # The virtualenv lives in the clone (.venv) so editable installs point at
  # this checkout; uv's cache outside the clone makes a fresh one take seconds.
  step "Python environment from uv.lock"
  (cd "$repo" && UV_CACHE_DIR="$cache/uv-cache" UV_PYTHON_DOWNLOADS=never \
    "$cache/uv-$UV_VERSION/bin/uv" sync --frozen --all-packages --python python3.11 --quiet)
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
  local src
  src=$(go mod download -json "github.com/couchbaselabs/gocaves@$GOCAVES_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  cp -r "$src" "$dir/src"; chmod -R u+w "$dir/src"
  # Upstream's go.mod replaces its client module with a local folder that the
  # module zip lacks, and two generated files are missing: drop the replace and
  # regenerate them before building.
  run_logged gocaves bash -c "cd '$dir/src' \
    && go mod edit -dropreplace=github.com/couchbaselabs/gocaves/client -droprequire=github.com/couchbaselabs/gocaves/client \
    && go run ./tools/prebuildstep.go && go build -trimpath -o '$dir/bin/gocaves' ."
  rm -rf "$dir/src"
  touch "$dir/.complete"
}

install_kubernetes() {
  local dir="$cache/kubernetes-$KUBERNETES_VERSION-etcd-$ETCD_VERSION"
  done_mark "$dir" && return
  step "kube-apiserver, kube-controller-manager, kube-scheduler $KUBERNETES_VERSION and etcd $ETCD_VERSION (Go module proxy; 10-20 min cold on 2 cores)"
  rm -rf "$dir"; mkdir -p "$dir/bin"
  local minor=${KUBERNETES_VERSION#v1.}; minor=${minor%%.*}
  local ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$KUBERNETES_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  run_logged kubernetes bash -c "cd '$repo/hack/tools' && go build -trimpath -ldflags '$ldflags' -o '$dir/bin/' \
      k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager k8s.io/kubernetes/cmd/kube-scheduler \
    && go build -trimpath -ldflags '-s -w' -o '$dir/bin/etcd' go.etcd.io/etcd/server/v3"
  touch "$dir/.complete"
}

# go_install NAME MODULE@VERSION DIR [LDFLAGS]: a tool whose module has no replaces.
go_install() {
  local name=$1 pkg=$2 dir=$3 ldflags="-s -w ${4:-}"
  done_mark "$dir" && return
  step "$name ($pkg, Go module proxy)"
  rm -rf "$dir"; mkdir -p "$dir/bin"
  run_logged "$name" env GOBIN="$dir/bin" go install -trimpath -ldflags "$ldflags" "$pkg"
  touch "$dir/.complete"
}

install_kwok() {
  local dir="$cache/kwok-$KWOK_VERSION"
  done_mark "$dir" && return
  go_install kwok "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" "$dir"
  rm -f "$dir/.complete"
  # kwok plays the kubelet by following "stages"; use the defaults its module
  # ships (node initialise + heartbeat, pod ready/complete/delete).
  local src
  src=$(go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
  local stage="$src/kustomize/stage"
  for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"; cat "$stage/$f"
  done >"$dir/stages.yaml"
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

main() {
  local all=(uv python kafka gocaves kubernetes kwok helm chromium dashboard)
  local want=("${@:-${all[@]}}")
  [ $# -eq 0 ] && want=("${all[@]}")
  local start=$SECONDS
  for c in "${want[@]}"; do
    case $c in
      uv) install_uv ;;
      python) install_uv; install_python_env ;;
      kafka) install_kafka ;;
      gocaves) install_gocaves ;;
      kubernetes) install_kubernetes ;;
      kwok) install_kwok ;;
      # Helm's source carries only "vMAJOR.MINOR"; its release builds stamp the patch.
      helm) go_install helm "helm.sh/helm/v4/cmd/helm@$HELM_VERSION" "$cache/helm-$HELM_VERSION" \
              "-X helm.sh/helm/v4/internal/version.version=$HELM_VERSION" ;;
      chromium) install_chromium ;;
      dashboard) install_dashboard_deps ;;
      *) echo "unknown component: $c (one of: ${all[*]})" >&2; exit 2 ;;
    esac
  done
  echo "bootstrap complete in $((SECONDS - start)) s (cache: $cache)"
}

main "$@"
