#!/bin/sh
# Builds the pinned Helm from the Go module proxy into a cache directory keyed
# by Helm's version and Go's (like staticcheck in scripts/test), skips the
# build when that binary already exists, and prints its path on stdout (logs
# go to stderr).
#
#   VIPD_HELM=$(tools/helm/build.sh) go test ./deploy/...
#
# Needs no go.mod of ours: `go install pkg@version` resolves Helm's own module
# graph, so Helm's k8s.io versions never meet vipd's.
set -eu
version=v4.3.2
dir="${XDG_CACHE_HOME:-$HOME/.cache}/vipd/helm-$version-$(go env GOVERSION)"
bin="$dir/helm"
if [ -x "$bin" ]; then
	echo "$bin"
	exit 0
fi
mkdir -p "$dir"
echo "building helm $version into $dir (a few minutes on a cold cache)" >&2
# Build into a private directory and rename: concurrent builds never see a
# partial binary.
tmp=$(mktemp -d "$dir/tmp.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
GOBIN="$tmp" GOFLAGS=-trimpath go install \
	-ldflags "-s -w -X helm.sh/helm/v4/internal/version.version=$version" \
	"helm.sh/helm/v4/cmd/helm@$version" >&2
mv "$tmp/helm" "$bin"
echo "$bin"
