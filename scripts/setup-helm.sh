#!/usr/bin/env bash
# Installs Helm, which the chart's tests (test/deploy/helm.test.ts) run, as .tools/bin/helm
# (git-ignored): built by `go install` from the Go module proxy at a pinned version, with the
# link flags of Helm's own Makefile, so that it reports its version and assumes the Kubernetes
# version (for `.Capabilities` and lint's deprecation checks) that a released binary does.
#
# Without Go it says so and the chart's tests are skipped, unless SESSIONSTORE_REQUIRE_HELM=1
# (set by .ci/run under CI), which makes it an error. Re-running is cheap: Helm is built again
# only when the pinned version changes. The first build takes a few minutes.
set -euo pipefail
cd "$(dirname "$0")/.."

helm_version=v3.19.5
# Helm's Makefile derives this from its go.mod's k8s.io/client-go (v0.34 for Helm 3.19).
kubernetes_major=1
kubernetes_minor=34

bin=$PWD/.tools/bin
helm=$bin/helm

if [ -x "$helm" ] && [ "$("$helm" version --template '{{.Version}}')" = "$helm_version" ]; then
  exit 0
fi
if ! command -v go >/dev/null; then
  if [ "${SESSIONSTORE_REQUIRE_HELM:-}" = 1 ]; then
    echo "setup-helm: go not found, and SESSIONSTORE_REQUIRE_HELM=1 requires Helm" >&2
    exit 1
  fi
  echo "setup-helm: go not found: skipping Helm (the chart's tests will be skipped)"
  exit 0
fi

echo "setup-helm: go install helm.sh/helm/v3/cmd/helm@$helm_version"
mkdir -p "$bin"
flags="-s -w -X helm.sh/helm/v3/internal/version.version=$helm_version"
for package in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
  flags+=" -X $package.k8sVersionMajor=$kubernetes_major -X $package.k8sVersionMinor=$kubernetes_minor"
done
started=$SECONDS
GOBIN=$bin CGO_ENABLED=0 go install -trimpath -ldflags "$flags" "helm.sh/helm/v3/cmd/helm@$helm_version"
echo "setup-helm: $("$helm" version --short), built in $((SECONDS - started)) s"
