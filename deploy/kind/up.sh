#!/usr/bin/env bash
# Creates the kind cluster (if absent), builds the image, loads it into kind and installs the
# chart with the in-cluster emulator, tasks in their own namespace (tes-tasks). Safe to run
# again: each step converges. --fleet installs fleet mode (a DaemonSet heartbeats for the node's
# task pods) instead of the sidecar webhook; running it again with the other flag switches.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_mode "$@"
require docker kind helm kubectl
require_docker_daemon
[ -n "$VERSION" ] || die "cannot read the version from $root/package.json"

if cluster_exists; then
  log "kind cluster '$CLUSTER' exists"
else
  log "creating kind cluster '$CLUSTER'"
  kind create cluster --name "$CLUSTER" --config "$root/deploy/kind/cluster.yaml" \
    ${KIND_NODE_IMAGE:+--image "$KIND_NODE_IMAGE"} --wait 120s
fi

log "building $IMAGE"
docker build --tag "$IMAGE" --build-arg "VERSION=$VERSION" "$root"
log "loading $IMAGE into kind"
kind load docker-image "$IMAGE" --name "$CLUSTER"

for ns in "$NAMESPACE" "$TASK_NAMESPACE"; do
  kc create namespace "$ns" --dry-run=client -o yaml | kc apply -f - >/dev/null
done

upgrade=false
if helm --kube-context "$CONTEXT" status "$RELEASE" --namespace "$NAMESPACE" >/dev/null 2>&1; then
  upgrade=true
fi
log "installing the chart (release $RELEASE in $NAMESPACE, $MODE mode, tasks in $TASK_NAMESPACE, emulator on)"
helm --kube-context "$CONTEXT" upgrade --install "$RELEASE" "$root/charts/tes-heartbeat" \
  --namespace "$NAMESPACE" \
  --set "mode=$MODE" \
  --set "taskNamespaces={$TASK_NAMESPACE}" \
  --set emulator.enabled=true \
  --set "image.repository=$IMAGE_REPOSITORY" \
  --set "image.tag=$VERSION" \
  --set image.pullPolicy=IfNotPresent \
  --set logLevel=debug \
  --wait --timeout 5m

if [ "$upgrade" = true ]; then
  # Same tag, maybe a new build: restart so the pods run the image just loaded.
  kc --namespace "$NAMESPACE" rollout restart deployment,daemonset -l "app.kubernetes.io/instance=$RELEASE"
  for workload in $(kc --namespace "$NAMESPACE" get deployment,daemonset -l "app.kubernetes.io/instance=$RELEASE" -o name); do
    kc --namespace "$NAMESPACE" rollout status "$workload" --timeout 3m
  done
fi

if [ "$MODE" = fleet ]; then
  log "ready: deploy/kind/demo.sh --fleet runs a task the fleet heartbeats for"
else
  log "ready: deploy/kind/demo.sh runs a task with an injected sidecar"
fi
