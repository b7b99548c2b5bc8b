// End-to-end JSON-RPC throughput: many dev accounts send pre-signed
// transactions through eth_sendRawTransaction; the clock runs from the first
// send to the last receipt. Works against any node that funds the default
// mnemonic's accounts (pel node, anvil).
//
//   node rpc-bench.mjs --url http://127.0.0.1:8545 --workload transfer|erc20 \
//        --senders 200 --txs 50 [--client lean|ethers] [--stall-ms 1] [--json]
//
// Uses ethers and solc from node/tests/e2e/node_modules.
import { createRequire } from 'node:module';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../../node/tests/e2e/package.json'));
const { ethers } = require('ethers');
const solc = require('solc');

const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => {
    if (a.startsWith('--')) acc.push([a.slice(2), all[i + 1] && !all[i + 1].startsWith('--') ? all[i + 1] : true]);
    return acc;
  }, []),
);
const url = args.url ?? 'http://127.0.0.1:8545';
const workload = args.workload ?? 'transfer';
const senders = Number(args.senders ?? 100);
const perSender = Number(args.txs ?? 20);
const MNEMONIC = 'test test test test test test test test test test test junk';

// ethers waits batchStallTime (10 ms by default) to gather each JSON-RPC
// batch; with 200 senders awaiting one response each, that pause alone set
// the pace of the send phase, so the load generator waits --stall-ms instead.
const stallMs = Number(args['stall-ms'] ?? 1);
const provider = new ethers.JsonRpcProvider(url, undefined, { cacheTimeout: -1, batchMaxCount: 100, batchStallTime: stallMs, staticNetwork: true });
const chainId = (await provider.getNetwork()).chainId;
const root = ethers.HDNodeWallet.fromPhrase(MNEMONIC, undefined, "m/44'/60'/0'/0");
const wallets = Array.from({ length: senders }, (_, i) => root.deriveChild(i).connect(provider));

async function waitReceipt(hash) {
  for (;;) {
    const r = await provider.getTransactionReceipt(hash);
    if (r) return r;
    await new Promise((res) => setTimeout(res, 50));
  }
}

let token;
let tokenAbi;
if (workload === 'erc20') {
  const src = fs.readFileSync(path.join(here, '../contracts/ERC20.sol'), 'utf8');
  const out = JSON.parse(solc.compile(JSON.stringify({
    language: 'Solidity',
    sources: { 'ERC20.sol': { content: src } },
    settings: { optimizer: { enabled: true, runs: 200 }, evmVersion: 'cancun', outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } } },
  })));
  const art = out.contracts['ERC20.sol'].Token;
  tokenAbi = art.abi;
  const factory = new ethers.ContractFactory(art.abi, '0x' + art.evm.bytecode.object, wallets[0]);
  const deployed = await factory.deploy();
  await waitReceipt(deployed.deploymentTransaction().hash);
  token = new ethers.Contract(await deployed.getAddress(), art.abi, provider);
  // Mint to every sender (setup, not timed).
  let nonce = await provider.getTransactionCount(wallets[0].address, 'latest');
  const mints = [];
  for (const w of wallets) {
    const data = token.interface.encodeFunctionData('mint', [w.address, 10n ** 24n]);
    mints.push(wallets[0].sendTransaction({ to: token.target, data, nonce: nonce++, gasLimit: 100000n, maxFeePerGas: 10n ** 11n, maxPriorityFeePerGas: 10n ** 9n }));
  }
  const sent = await Promise.all(mints);
  await Promise.all(sent.map((t) => waitReceipt(t.hash)));
}

// Pre-sign everything so the clock measures the node, not the signing.
const signed = [];
for (const w of wallets) {
  const list = [];
  let nonce = await provider.getTransactionCount(w.address, 'latest');
  for (let k = 0; k < perSender; k++) {
    const to = wallets[(wallets.indexOf(w) + k + 1) % wallets.length].address;
    const tx = workload === 'erc20'
      ? { to: token.target, data: token.interface.encodeFunctionData('transfer', [to, 1n]), gasLimit: 80000n }
      : { to, value: 1n, gasLimit: 21000n };
    list.push(await w.signTransaction({ ...tx, nonce: nonce++, chainId, type: 2, maxFeePerGas: 10n ** 11n, maxPriorityFeePerGas: 10n ** 9n }));
  }
  signed.push(list);
}
// The timed sends go through a lean batching client (--client lean, the
// default): requests pending after --stall-ms go out as one JSON-RPC batch
// of at most 100, written as strings. ethers' provider (--client ethers)
// spent about 65 us of CPU per request, as much as the node being measured
// on this 2-core machine.
const client = args.client ?? 'lean';
let queue = [];
let nextId = 1;
let flushing = false;
function flush() {
  flushing = false;
  while (queue.length) {
    const batch = queue.splice(0, 100);
    const body = '[' + batch.map((r) => `{"jsonrpc":"2.0","id":${r.id},"method":"eth_sendRawTransaction","params":["${r.raw}"]}`).join(',') + ']';
    fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
      .then((res) => res.json())
      .then((replies) => {
        const byId = new Map((Array.isArray(replies) ? replies : [replies]).map((r) => [r.id, r]));
        for (const r of batch) {
          const reply = byId.get(r.id);
          if (reply && typeof reply.result === 'string') r.resolve(reply.result);
          else r.reject(new Error(`eth_sendRawTransaction: ${JSON.stringify(reply?.error ?? reply)}`));
        }
      })
      .catch((e) => batch.forEach((r) => r.reject(e)));
  }
}
function sendRaw(raw) {
  if (client === 'ethers') return provider.send('eth_sendRawTransaction', [raw]);
  return new Promise((resolve, reject) => {
    queue.push({ id: nextId++, raw, resolve, reject });
    if (!flushing) {
      flushing = true;
      setTimeout(flush, stallMs);
    }
  });
}

const total = senders * perSender;
const start = performance.now();
// Each sender sends its transactions in nonce order; senders run concurrently.
const lastHashes = await Promise.all(signed.map(async (list) => {
  let last;
  for (const raw of list) last = await sendRaw(raw);
  return last;
}));
const sentAt = performance.now();
const receipts = await Promise.all(lastHashes.map(waitReceipt));
const end = performance.now();
// Everything landed, exactly once: every sender's nonce advanced by perSender.
let ok = receipts.every((r) => r.status === 1);
const blocks = new Set(receipts.map((r) => r.blockNumber));
const seconds = (end - start) / 1000;
const result = {
  url, workload, senders, txs: total, client, stall_ms: stallMs,
  send_s: Number(((sentAt - start) / 1000).toFixed(3)),
  seconds: Number(seconds.toFixed(3)),
  tps: Math.round(total / seconds),
  last_receipt_blocks: blocks.size,
  all_succeeded: ok,
};
console.log(args.json ? JSON.stringify(result) : result);
provider.destroy();
process.exit(ok ? 0 : 1);
