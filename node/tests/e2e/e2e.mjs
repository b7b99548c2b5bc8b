// End-to-end test of `pel node` with ethers.js v6 and solc-js.
//
//   node e2e.mjs deploy    deploy an ERC-20 and a reverting contract, transfer,
//                          read balances with eth_call, read events with
//                          eth_getLogs and a WebSocket `logs` subscription,
//                          check revert reasons, estimateGas, receipts and bad
//                          input; writes what it saw to $STATE_FILE
//   node e2e.mjs restart   after the node was killed and restarted on the same
//                          data dir: the chain, balances and receipts are still there
//
// Environment: PEL_URL (http), PEL_WS (ws), STATE_FILE, CONTRACTS (folder of ERC20.sol).
import { ethers } from 'ethers';
import solc from 'solc';
import fs from 'node:fs';
import path from 'node:path';
import assert from 'node:assert/strict';

const url = process.env.PEL_URL;
const wsUrl = process.env.PEL_WS;
const stateFile = process.env.STATE_FILE;
const contracts = process.env.CONTRACTS;
const KEY0 = '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80';
const ACCOUNT1 = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const ACCOUNT2 = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC';

// ethers caches identical requests for 250 ms by default (cacheTimeout), so
// on a chain that mines in milliseconds a second send can reuse a stale
// "pending" nonce; local-node tooling turns the cache off, as here.
const REVERTER = `
// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;
contract Reverter {
    uint256 public value;
    error Custom(uint256 code);
    function fail() external pure { revert("nope"); }
    function failCustom() external pure { revert Custom(7); }
    function set(uint256 v) external { require(v < 100, "too big"); value = v; }
}`;

function compile() {
  const input = {
    language: 'Solidity',
    sources: {
      'ERC20.sol': { content: fs.readFileSync(path.join(contracts, 'ERC20.sol'), 'utf8') },
      'Reverter.sol': { content: REVERTER },
    },
    settings: {
      optimizer: { enabled: true, runs: 200 },
      evmVersion: 'cancun',
      outputSelection: { '*': { '*': ['abi', 'evm.bytecode.object'] } },
    },
  };
  const out = JSON.parse(solc.compile(JSON.stringify(input)));
  for (const e of out.errors || []) {
    if (e.severity === 'error') throw new Error(e.formattedMessage);
  }
  const get = (file, name) => ({
    abi: out.contracts[file][name].abi,
    bytecode: '0x' + out.contracts[file][name].evm.bytecode.object,
  });
  return { token: get('ERC20.sol', 'Token'), reverter: get('Reverter.sol', 'Reverter') };
}

async function expectRpcError(promise, pattern, what) {
  try {
    await promise;
  } catch (e) {
    const text = JSON.stringify(e.info ?? {}) + ' ' + (e.shortMessage ?? '') + ' ' + (e.message ?? '') + ' ' + (e.reason ?? '');
    assert.match(text, pattern, `${what}: unexpected error ${text}`);
    return e;
  }
  assert.fail(`${what}: expected an error`);
}

async function deploy() {
  const { token: tokenArt, reverter: reverterArt } = compile();
  const provider = new ethers.JsonRpcProvider(url, undefined, { pollingInterval: 100, cacheTimeout: -1 });
  const wallet = new ethers.Wallet(KEY0, provider);
  const network = await provider.getNetwork();
  assert.equal(network.chainId, 31337n);
  assert.deepEqual((await provider.send('eth_accounts', [])).length, 10);

  // Deploy and use the ERC-20.
  const token = await new ethers.ContractFactory(tokenArt.abi, tokenArt.bytecode, wallet).deploy();
  await token.waitForDeployment();
  const tokenAddress = await token.getAddress();
  assert.notEqual(await provider.getCode(tokenAddress), '0x');
  await (await token.mint(wallet.address, 1000n)).wait();
  const transfer = await token.transfer(ACCOUNT1, 250n);
  const receipt = await transfer.wait();
  assert.equal(receipt.status, 1);
  assert.equal(receipt.logs.length, 1);
  const parsed = token.interface.parseLog(receipt.logs[0]);
  assert.equal(parsed.name, 'Transfer');
  assert.equal(parsed.args.value, 250n);
  assert.equal(await token.balanceOf(wallet.address), 750n);
  assert.equal(await token.balanceOf(ACCOUNT1), 250n);

  console.log('erc20 deployed and transferred');
  // Events through eth_getLogs.
  const transferTopic = token.interface.getEvent('Transfer').topicHash;
  const logs = await provider.getLogs({ address: tokenAddress, topics: [transferTopic], fromBlock: 0 });
  assert.equal(logs.length, 2, 'mint and transfer');
  const events = await token.queryFilter(token.filters.Transfer(wallet.address), 0);
  assert.equal(events.length, 1);

  console.log('getLogs ok');
  // A `logs` subscription over WebSocket sees the next transfer.
  const ws = new ethers.WebSocketProvider(wsUrl);
  const seen = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no log notification within 10 s')), 10000);
    ws.on({ address: tokenAddress, topics: [transferTopic] }, (log) => {
      clearTimeout(timer);
      resolve(log);
    });
  });
  // Give the subscription a moment to be installed.
  await new Promise((r) => setTimeout(r, 300));
  await (await token.transfer(ACCOUNT2, 5n)).wait();
  const notified = await seen;
  assert.equal(notified.address.toLowerCase(), tokenAddress.toLowerCase());
  console.log('logs subscription ok');
  // And a newHeads subscription sees the next block.
  const head = new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no block notification within 10 s')), 10000);
    ws.once('block', (n) => {
      clearTimeout(timer);
      resolve(n);
    });
  });
  await new Promise((r) => setTimeout(r, 300));
  await (await wallet.sendTransaction({ to: ACCOUNT2, value: 1n })).wait();
  assert.ok((await head) > 0);
  await ws.destroy();

  console.log('newHeads subscription ok');
  // Reverts: reason strings and custom errors, from calls and estimates.
  const reverter = await new ethers.ContractFactory(reverterArt.abi, reverterArt.bytecode, wallet).deploy();
  await reverter.waitForDeployment();
  const failed = await expectRpcError(reverter.fail(), /nope/, 'eth_call revert reason');
  assert.equal(failed.code, 'CALL_EXCEPTION');
  const custom = await expectRpcError(reverter.failCustom(), /Custom|0x/, 'custom error');
  assert.equal(custom.code, 'CALL_EXCEPTION');
  await expectRpcError(reverter.set.estimateGas(1000n), /too big/, 'estimateGas revert reason');
  const gas = await reverter.set.estimateGas(5n);
  assert.ok(gas > 21000n && gas < 100000n, `estimate ${gas}`);
  await (await reverter.set(5n)).wait();
  assert.equal(await reverter.value(), 5n);
  // A reverting transaction mined anyway has status 0.
  const bad = await reverter.set(1000n, { gasLimit: 100000n });
  await expectRpcError(bad.wait(), /CALL_EXCEPTION|reverted/, 'mined revert');
  const badReceipt = await provider.getTransactionReceipt(bad.hash);
  assert.equal(badReceipt.status, 0);

  console.log('reverts ok');
  // Value transfer and eth_sendTransaction through a node-held account.
  const before = await provider.getBalance(ACCOUNT1);
  const signer = await provider.getSigner(ACCOUNT2);
  const viaNode = await signer.sendTransaction({ to: ACCOUNT1, value: ethers.parseEther('1') });
  const viaNodeReceipt = await viaNode.wait();
  assert.equal(viaNodeReceipt.status, 1);
  assert.equal(await provider.getBalance(ACCOUNT1), before + ethers.parseEther('1'));

  console.log('eth_sendTransaction ok');
  // Signing with a node-held key: eth_sign (personal message) and EIP-712.
  const message = 'hello pel';
  const signature = await signer.signMessage(message);
  assert.equal(ethers.verifyMessage(message, signature), ACCOUNT2);
  const domain = { name: 'PEL', version: '1', chainId: 31337, verifyingContract: tokenAddress };
  const types = { Mail: [{ name: 'to', type: 'address' }, { name: 'contents', type: 'string' }] };
  const mail = { to: ACCOUNT1, contents: 'typed' };
  const typedSig = await signer.signTypedData(domain, types, mail);
  assert.equal(ethers.verifyTypedData(domain, types, mail, typedSig), ACCOUNT2);
  console.log('signing ok');
  // Bad input is refused with the standard codes; the node keeps serving.
  const raw = await expectRpcError(provider.send('eth_sendRawTransaction', ['0x1234']), /invalid/i, 'bad raw tx');
  assert.equal(raw.error?.code ?? raw.info?.error?.code, -32602);
  const stale = await wallet.signTransaction({ to: ACCOUNT1, value: 1n, nonce: 0, gasLimit: 21000n, maxFeePerGas: 10n ** 11n, maxPriorityFeePerGas: 1n, chainId: 31337n, type: 2 });
  await expectRpcError(provider.send('eth_sendRawTransaction', [stale]), /nonce too low/, 'stale nonce');
  const wrongChain = await wallet.signTransaction({ to: ACCOUNT1, value: 1n, nonce: 1000, gasLimit: 21000n, maxFeePerGas: 10n ** 11n, maxPriorityFeePerGas: 1n, chainId: 1n, type: 2 });
  await expectRpcError(provider.send('eth_sendRawTransaction', [wrongChain]), /chain id/, 'wrong chain id');
  const poor = ethers.Wallet.createRandom().connect(provider);
  await expectRpcError(poor.sendTransaction({ to: ACCOUNT1, value: 1n, gasLimit: 21000n, maxFeePerGas: 10n ** 10n, maxPriorityFeePerGas: 1n, nonce: 0, chainId: 31337n }), /insufficient funds/, 'insufficient funds');
  await expectRpcError(provider.send('eth_nope', []), /not found|Method/i, 'unknown method');
  assert.equal(await provider.getBlockNumber() > 0, true);

  // The block of a receipt, full and by hash.
  const block = await provider.getBlock(receipt.blockNumber, true);
  assert.ok(block.transactions.includes(transfer.hash));
  const byHash = await provider.getBlock(block.hash);
  assert.equal(byHash.number, block.number);

  const state = {
    token: tokenAddress,
    transferHash: transfer.hash,
    transferBlock: receipt.blockNumber,
    head: await provider.getBlockNumber(),
    headHash: (await provider.getBlock('latest')).hash,
    balance1: (await provider.getBalance(ACCOUNT1)).toString(),
    tokenBalance0: (await token.balanceOf(wallet.address)).toString(),
  };
  fs.writeFileSync(stateFile, JSON.stringify(state));
  provider.destroy();
  console.log('deploy phase passed', state);
}

async function restart() {
  const state = JSON.parse(fs.readFileSync(stateFile, 'utf8'));
  const provider = new ethers.JsonRpcProvider(url, undefined, { pollingInterval: 100, cacheTimeout: -1 });
  assert.ok((await provider.getBlockNumber()) >= state.head, 'head went backwards');
  assert.equal((await provider.getBlock(state.head)).hash, state.headHash);
  const receipt = await provider.getTransactionReceipt(state.transferHash);
  assert.ok(receipt, 'receipt lost');
  assert.equal(receipt.status, 1);
  assert.equal(receipt.blockNumber, state.transferBlock);
  assert.equal((await provider.getBalance(ACCOUNT1)).toString(), state.balance1);
  const { token: tokenArt } = compile();
  const token = new ethers.Contract(state.token, tokenArt.abi, provider);
  assert.equal((await token.balanceOf(new ethers.Wallet(KEY0).address)).toString(), state.tokenBalance0);
  // The chain goes on after the restart.
  const wallet = new ethers.Wallet(KEY0, provider);
  const more = await (await wallet.sendTransaction({ to: ACCOUNT1, value: 7n })).wait();
  assert.equal(more.status, 1);
  provider.destroy();
  console.log('restart phase passed');
}

const phase = process.argv[2];
try {
  if (phase === 'deploy') await deploy();
  else if (phase === 'restart') await restart();
  else throw new Error(`unknown phase ${phase}`);
  process.exit(0);
} catch (e) {
  console.error(e);
  process.exit(1);
}
