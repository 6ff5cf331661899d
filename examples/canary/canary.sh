#!/usr/bin/env bash
# A canary rollout by Nacos weight: v1 at 100, v2 moved 0 → 10 → 50 → 100,
# watching where modelgate sends the traffic. See README.md beside this file.
#
#   NACOS=127.0.0.1:8848 bash examples/canary/canary.sh
#
# It starts two mock model servers and a modelgate daemon on loopback,
# registers the mocks in Nacos as persistent instances of LLM@@canary-demo,
# and cleans everything up on exit.
set -euo pipefail
cd "$(dirname "$0")/../.."

NACOS=${NACOS:-127.0.0.1:8848}
API=127.0.0.1:18090 ADMIN=127.0.0.1:19091
V1=127.0.0.1:19101 V2=127.0.0.1:19102
REQUESTS=${REQUESTS:-400}
WORK=$(mktemp -d)
pids=()

cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for a in "$V1" "$V2"; do instance DELETE "$a" "" "" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# instance METHOD ADDR WEIGHT VERSION: the Nacos admin API, as an operator uses it.
instance() {
  local method=$1 addr=$2 weight=$3 version=$4
  curl -sf -X "$method" "http://$NACOS/nacos/v3/admin/ns/instance" \
    --data-urlencode "serviceName=canary-demo" --data-urlencode "groupName=LLM" \
    --data-urlencode "ip=${addr%:*}" --data-urlencode "port=${addr#*:}" \
    --data-urlencode "ephemeral=false" ${weight:+--data-urlencode "weight=$weight"} \
    ${version:+--data-urlencode "metadata={\"version\":\"$version\"}"}
}

go build -o "$WORK/modelgate" ./cmd/modelgate
go build -o "$WORK/mock" ./examples/canary/mock
"$WORK/mock" -addr "$V1" -name v1 & pids+=($!)
"$WORK/mock" -addr "$V2" -name v2 & pids+=($!)

cat >"$WORK/modelgate.yaml" <<YAML
discovery:
  nacos:
    servers: ["$NACOS"]
    groups: [LLM]
    reconcile_interval: 1s
routes:
  - model: chat
    service: canary-demo
access_log: {disabled: true}
YAML
"$WORK/modelgate" -config "$WORK/modelgate.yaml" -listen "$API" -admin "$ADMIN" 2>"$WORK/modelgate.log" & pids+=($!)

instance POST "$V1" 100 v1 >/dev/null
instance POST "$V2" 0 v2 >/dev/null
until curl -sf "http://$ADMIN/readyz" >/dev/null; do sleep 0.2; done

for w in 0 10 50 100; do
  instance PUT "$V2" "$w" v2 >/dev/null
  sleep 2 # Nacos pushes within ~1 s
  v1=0 v2=0
  for _ in $(seq "$REQUESTS"); do
    who=$(curl -s -D - -o /dev/null "http://$API/v1/chat/completions" \
      -d '{"model":"chat","messages":[{"role":"user","content":"hi"}]}' | tr -d '\r' | awk -F': ' 'tolower($1)=="x-mock-instance"{print $2}')
    if [[ $who == v2 ]]; then v2=$((v2 + 1)); else v1=$((v1 + 1)); fi
  done
  printf 'v2 weight %3d: v1 %4d  v2 %4d  (v2 share %5.1f %%, expected %5.1f %%)\n' \
    "$w" "$v1" "$v2" "$(echo "100*$v2/($v1+$v2)" | bc -l)" "$(echo "100*$w/(100+$w)" | bc -l)"
done
echo
echo "modelgate's view: http://$ADMIN/admin/pool"
curl -s "http://$ADMIN/admin/pool" | grep -E '"(addr|weight|version|breaker)"'
