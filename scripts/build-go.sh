#!/usr/bin/env bash
# Build the Go components incident-bot runs for real (kube-apiserver and friends, etcd 3.6, helm)
# from their Go modules into a cache outside the repository, reused while the pinned version
# (scripts/versions.env) is unchanged. Prints where the binaries are and how long each build took.
#   scripts/build-go.sh            # build whatever is missing
#   scripts/build-go.sh --print-bin-dir
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"
CACHE="${INCIDENT_BOT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/incident-bot}"
BIN="$CACHE/bin"
mkdir -p "$BIN"
if [ "${1:-}" = "--print-bin-dir" ]; then echo "$BIN"; exit 0; fi

command -v go >/dev/null 2>&1 || { echo "setup: the Go toolchain ('go') is missing: install Go >= 1.25 to build kube-apiserver and etcd" >&2; exit 1; }

stamp_ok() { [ -f "$1/.built-$2" ] && shift 2 && for b in "$@"; do [ -x "$BIN/$b" ] || return 1; done; }

build_module() {  # name version dir binaries... ; builds with the go.mod already written into dir
  local name="$1" version="$2" dir="$3"; shift 3
  local started=$SECONDS
  (cd "$dir" && go mod tidy >/dev/null 2>"$dir/tidy.log") || { echo "setup: resolving $name $version modules failed:" >&2; tail -5 "$dir/tidy.log" >&2; exit 1; }
  for target in "$@"; do
    local out="${target%%=*}" pkg="${target#*=}"
    if ! (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "$LDFLAGS" -o "$BIN/$out.new" "$pkg" 2>"$dir/build-$out.log"); then
      echo "setup: building $out ($name $version) failed: $(grep -m1 -v '^#' "$dir/build-$out.log")" >&2; exit 1
    fi
    mv -f "$BIN/$out.new" "$BIN/$out"
  done
  rm -f "$dir"/.built-* && touch "$dir/.built-$version"
  echo "setup: built $name $version ($*) in $((SECONDS - started)) s into $BIN" >&2
}

# --- Kubernetes: kube-apiserver, kube-controller-manager, kube-scheduler -------------------------
k8s_dir="$CACHE/src/kubernetes"
K8S_BINS=(kube-apiserver kube-controller-manager kube-scheduler)
if ! stamp_ok "$k8s_dir" "$KUBERNETES_VERSION" "${K8S_BINS[@]}"; then
  echo "setup: building Kubernetes $KUBERNETES_VERSION from its Go module (first time: several minutes)" >&2
  mkdir -p "$k8s_dir"
  modfile="$(cd "$k8s_dir" && GOFLAGS=-mod=mod go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
  [ -n "$modfile" ] || { echo "setup: the Go module proxy did not serve k8s.io/kubernetes@$KUBERNETES_VERSION" >&2; exit 1; }
  staging_version="v0.${KUBERNETES_VERSION#v1.}"
  {
    echo "module incident-bot/kubernetes-build"
    echo
    echo "go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')"
    echo
    echo "require k8s.io/kubernetes $KUBERNETES_VERSION"
    echo
    # The k8s.io/* staging modules are v0.0.0 + replace ./staging in kubernetes' own go.mod;
    # an importer pins each to the matching published v0.x release.
    sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#replace \1 => \1 '"$staging_version"'#p' "$modfile"
  } > "$k8s_dir/go.mod"
  cat > "$k8s_dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kube-scheduler"
)
GO
  minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  LDFLAGS="-s -w"
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    LDFLAGS+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  build_module Kubernetes "$KUBERNETES_VERSION" "$k8s_dir" \
    kube-apiserver=k8s.io/kubernetes/cmd/kube-apiserver \
    kube-scheduler=k8s.io/kubernetes/cmd/kube-scheduler \
    kube-controller-manager=k8s.io/kubernetes/cmd/kube-controller-manager
fi

# --- etcd 3.6: the server (etcdmain.Main, as etcd's own main.go), etcdctl, etcdutl ----------------
etcd_dir="$CACHE/src/etcd"
if ! stamp_ok "$etcd_dir" "$ETCD_VERSION" etcd etcdctl etcdutl; then
  echo "setup: building etcd $ETCD_VERSION from its Go modules" >&2
  mkdir -p "$etcd_dir/server"
  cat > "$etcd_dir/go.mod" <<MOD
module incident-bot/etcd-build

go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')

require (
	go.etcd.io/etcd/server/v3 $ETCD_VERSION
	go.etcd.io/etcd/etcdctl/v3 $ETCD_VERSION
	go.etcd.io/etcd/etcdutl/v3 $ETCD_VERSION
)
MOD
  cat > "$etcd_dir/server/main.go" <<'GO'
// The etcd server, exactly as etcd's own main.go starts it.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
  cat > "$etcd_dir/tools.go" <<'GO'
//go:build tools

package tools

import (
	_ "go.etcd.io/etcd/etcdctl/v3"
	_ "go.etcd.io/etcd/etcdutl/v3"
)
GO
  LDFLAGS="-s -w"
  build_module etcd "$ETCD_VERSION" "$etcd_dir" etcd=./server etcdctl=go.etcd.io/etcd/etcdctl/v3 etcdutl=go.etcd.io/etcd/etcdutl/v3
fi

# --- helm (lint and template the chart in the tests) ----------------------------------------------
helm_dir="$CACHE/src/helm"
if ! stamp_ok "$helm_dir" "$HELM_VERSION" helm; then
  echo "setup: building helm $HELM_VERSION from its Go module" >&2
  mkdir -p "$helm_dir"
  cat > "$helm_dir/go.mod" <<MOD
module incident-bot/helm-build

go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')

require helm.sh/helm/v3 $HELM_VERSION
MOD
  cat > "$helm_dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "helm.sh/helm/v3/cmd/helm"
GO
  LDFLAGS="-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION"
  build_module helm "$HELM_VERSION" "$helm_dir" helm=helm.sh/helm/v3/cmd/helm
fi

# --- kwok: simulated nodes (registration, Lease heartbeats, pods "running" without a runtime) -----
kwok_dir="$CACHE/src/kwok"
if ! stamp_ok "$kwok_dir" "$KWOK_VERSION" kwok; then
  echo "setup: building kwok $KWOK_VERSION from its Go module" >&2
  mkdir -p "$kwok_dir"
  cat > "$kwok_dir/go.mod" <<MOD
module incident-bot/kwok-build

go $(go env GOVERSION | sed 's/^go//; s/^\([0-9]*\.[0-9]*\).*/\1/')

require sigs.k8s.io/kwok $KWOK_VERSION
MOD
  cat > "$kwok_dir/tools.go" <<'GO'
//go:build tools

package tools

import _ "sigs.k8s.io/kwok/cmd/kwok"
GO
  LDFLAGS="-s -w"
  build_module kwok "$KWOK_VERSION" "$kwok_dir" kwok=sigs.k8s.io/kwok/cmd/kwok
fi
