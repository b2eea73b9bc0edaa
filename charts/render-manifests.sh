#!/usr/bin/env bash
# Renders charts/moat with its default values into plain YAML for
# `kubectl apply`: a namespace and every object of the chart but the
# helm-only uninstall hook. Usage: render-manifests.sh HELM OUTPUT
set -euo pipefail
helm=${1:?usage: render-manifests.sh HELM OUTPUT}
out=${2:?usage: render-manifests.sh HELM OUTPUT}
cd "$(dirname "$0")/.."
tmp=$(mktemp)
trap 'rm -f "$tmp"' EXIT
{
  echo "# moat: the node agent DaemonSet and the \"moat\" RuntimeClass, rendered from"
  echo "# charts/moat with its default values by 'make manifests'. Do not edit: change"
  echo "# the chart and run 'make manifests'; a test fails when this file is stale."
  echo "#"
  echo "#   kubectl apply -f manifests/moat.yaml     install"
  echo "#   kubectl delete -f manifests/moat.yaml    uninstall (each agent cleans its node up)"
  echo "---"
  echo "apiVersion: v1"
  echo "kind: Namespace"
  echo "metadata:"
  echo "  name: moat-system"
  "$helm" template moat charts/moat --namespace moat-system --no-hooks
} > "$tmp"
mv "$tmp" "$out"
trap - EXIT
