#!/usr/bin/env bash
# Side-by-side end-to-end JSON-RPC throughput of `pel node` and anvil, same
# machine, same flags (--block-time 1 --gas-limit 1000000000, SENDERS funded
# dev accounts). anvil comes from npm (@foundry-rs/anvil-linux-amd64).
#
#   benches/rpc/compare.sh [SENDERS] [TXS_PER_SENDER]
#   MINING=auto benches/rpc/compare.sh ...   both in their default auto-mining mode
#   STALL_MS=10 benches/rpc/compare.sh ...   the client's batch pause (ethers' default is 10 ms)
#   CLIENT=ethers benches/rpc/compare.sh ...  send through ethers' provider instead of the lean client
set -euo pipefail
cd "$(dirname "$0")/../.."
senders="${1:-200}"
per="${2:-50}"
target="${CARGO_TARGET_DIR:-$HOME/.cache/pel-target}"
pel="$target/release/pel"
[ -x "$pel" ] || cargo build --release --bin pel
anvil_dir="$HOME/.cache/pel-anvil"
anvil="$anvil_dir/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil"
if [ ! -x "$anvil" ]; then
  mkdir -p "$anvil_dir"
  (cd "$anvil_dir" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error @foundry-rs/anvil-linux-amd64)
  chmod +x "$anvil"
fi
if [ "${MINING:-interval}" = auto ]; then
  flags=(--gas-limit 1000000000 --accounts "$senders")
else
  flags=(--block-time 1 --gas-limit 1000000000 --accounts "$senders")
fi
scratch="$(mktemp -d)"
cleanup() { kill "${pids[@]}" 2>/dev/null || true; rm -rf "$scratch"; }
pids=()
trap cleanup EXIT
wait_port() { for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$1" -X POST -H 'content-type: application/json' --data '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' && return 0; sleep 0.1; done; return 1; }
for workload in transfer erc20; do
  "$pel" node --port 18701 --datadir "$scratch/pel-$workload" "${flags[@]}" > "$scratch/pel.log" 2>&1 &
  pids+=($!)
  "$anvil" --port 18702 "${flags[@]}" --silent > "$scratch/anvil.log" 2>&1 &
  pids+=($!)
  wait_port 18701; wait_port 18702
  echo "== $workload: $senders senders x $per txs"
  node benches/rpc/rpc-bench.mjs --url http://127.0.0.1:18701 --workload "$workload" --senders "$senders" --txs "$per" --stall-ms "${STALL_MS:-1}" --client "${CLIENT:-lean}" --json | sed 's/^/pel   /'
  node benches/rpc/rpc-bench.mjs --url http://127.0.0.1:18702 --workload "$workload" --senders "$senders" --txs "$per" --stall-ms "${STALL_MS:-1}" --client "${CLIENT:-lean}" --json | sed 's/^/anvil /'
  kill "${pids[@]}" 2>/dev/null || true
  wait "${pids[@]}" 2>/dev/null || true
  pids=()
done
