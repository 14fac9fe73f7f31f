#!/usr/bin/env bash
# Deletes the kind cluster made by up.sh. Safe to run again.
set -euo pipefail
# shellcheck source=lib.sh source-path=SCRIPTDIR
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

require docker kind
if cluster_exists; then
  kind delete cluster --name "$CLUSTER"
else
  log "no kind cluster named '$CLUSTER': nothing to do"
fi
