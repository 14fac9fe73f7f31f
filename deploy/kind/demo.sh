#!/usr/bin/env bash
# The whole path on kind: create a run in the in-cluster emulator, launch a task Job that
# relies on injection (deploy/examples/job-injected.yaml) with that run id and a fresh nonce,
# follow the injected agent until its final heartbeat, and print the run's final status and
# how to see the run on the emulator's web page.
# With --fleet (after deploy/kind/up.sh --fleet): the fleet example Job
# (deploy/examples/job-fleet.yaml), which carries nothing of ours; the fleet's log lines for the run.
# Run deploy/kind/up.sh first. Safe to run again: each run replaces the previous demo Job.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

parse_mode "$@"
require docker kind kubectl base64
require_cluster

JOB=tes-heartbeat-demo
EMULATOR="deployment/${FULLNAME}-emulator"
EMULATOR_URL=http://127.0.0.1:8080
AGENT=tes-heartbeat

# The CLI inside the emulator's own pod: distroless has no shell, so exec node directly. The
# emulator requires its token (the chart's Secret); plain http is fine on the pod's loopback.
cli() {
  kc --namespace "$NAMESPACE" exec "$EMULATOR" -- /nodejs/bin/node /app/tes-heartbeat.js "$@" --token "$token"
}

# The string value of "field" in the JSON object on stdin (its last occurrence; no jq needed).
json_field() {
  tr -d '\n' | sed -n "s/^[^{]*{.*\"$1\"[[:space:]]*:[[:space:]]*\"\([^\"]*\)\".*/\1/p"
}

kc --namespace "$NAMESPACE" rollout status "$EMULATOR" --timeout 2m >/dev/null ||
  die "the emulator is not running: was the chart installed by up.sh (emulator.enabled=true)?"

token=$(kc --namespace "$NAMESPACE" get secret "${FULLNAME}-emulator-token" -o jsonpath='{.data.token}' | base64 -d) ||
  die "cannot read the emulator's token (secret ${FULLNAME}-emulator-token in $NAMESPACE)"
[ -n "$token" ] || die "the emulator's token is empty (secret ${FULLNAME}-emulator-token in $NAMESPACE)"

created=$(cli runs create --name kind-demo --tes-url "$EMULATOR_URL" --json) || die "runs create failed: $created"
run_id=$(printf '%s' "$created" | json_field id)
[ -n "$run_id" ] || die "no run id in the emulator's answer: $created"
nonce=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
log "run $run_id created (status Pending)"

if [ "$MODE" = fleet ]; then
  example=job-fleet.yaml
  example_name=tes-task-fleet
else
  example=job-injected.yaml
  example_name=tes-task-injected
fi
kc --namespace "$TASK_NAMESPACE" delete job "$JOB" --ignore-not-found --wait=true >/dev/null
sed -e "s/^  name: $example_name$/  name: $JOB/" \
  -e "s/tes-heartbeat\/run-id: RUN_ID/tes-heartbeat\/run-id: \"$run_id\"/" \
  -e "s/tes-heartbeat\/nonce: NONCE/tes-heartbeat\/nonce: \"$nonce\"/" \
  "$root/deploy/examples/$example" | kc --namespace "$TASK_NAMESPACE" create -f - >/dev/null
log "job $JOB created in $TASK_NAMESPACE"

pod=""
for _ in $(seq 60); do
  pod=$(kc --namespace "$TASK_NAMESPACE" get pods -l "job-name=$JOB" -o jsonpath='{.items[0].metadata.name}' 2>/dev/null || true)
  [ -n "$pod" ] && break
  sleep 1
done
[ -n "$pod" ] || die "job $JOB made no pod within 60 s"
names=$(kc --namespace "$TASK_NAMESPACE" get pod "$pod" -o jsonpath='{.spec.initContainers[*].name} {.spec.containers[*].name}')
if [ "$MODE" = fleet ]; then
  case " $names " in
    *" $AGENT "*) die "pod $pod has an agent container ($names): is the chart in fleet mode? (deploy/kind/up.sh --fleet)" ;;
    *) log "pod $pod carries nothing of ours ($names): the fleet on its node heartbeats for it" ;;
  esac
else
  case " $names " in
    *" $AGENT "*) log "pod $pod has the injected agent ($names)" ;;
    *) die "pod $pod has no '$AGENT' container ($names): is the webhook ready? (kubectl -n $NAMESPACE get pods)" ;;
  esac
  kc --namespace "$TASK_NAMESPACE" wait pod "$pod" --for=condition=Ready=true --timeout 2m >/dev/null 2>&1 || true
  log "following the agent's log until its final heartbeat"
  kc --namespace "$TASK_NAMESPACE" logs --follow "$pod" --container "$AGENT" || true
fi

kc --namespace "$TASK_NAMESPACE" wait "job/$JOB" --for=condition=Complete --timeout 3m >/dev/null ||
  die "job $JOB did not complete: kubectl -n $TASK_NAMESPACE describe job $JOB"
if [ "$MODE" = fleet ]; then
  log "the fleet's log lines for run $run_id"
  kc --namespace "$NAMESPACE" logs -l "app.kubernetes.io/instance=$RELEASE,app.kubernetes.io/component=fleet" --tail=-1 |
    grep -F "\"$run_id\"" || true
fi

status=""
for _ in $(seq 30); do
  run=$(cli runs get "$run_id" --tes-url "$EMULATOR_URL" --json) || die "runs get $run_id failed"
  status=$(printf '%s' "$run" | json_field status)
  case "$status" in
    Completed | Failed | Aborted | TimedOut) break ;;
  esac
  sleep 1
done
# The emulator's web page draws the run's heartbeats; a port-forward brings it to this machine.
log "to look at the run in a browser: kubectl --context $CONTEXT --namespace $NAMESPACE port-forward service/${FULLNAME}-emulator 8080:8080"
log "  then open http://127.0.0.1:8080/ui/runs/$run_id (every run: http://127.0.0.1:8080/)"
echo "run $run_id: ${status:-unknown}"
[ "$status" = Completed ] || die "the run did not complete: $run"
