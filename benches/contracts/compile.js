#!/usr/bin/env node
// Compiles ERC20.sol and AMM.sol with solc-js (standard JSON API) and writes:
//   Token.runtime.hex, Pair.runtime.hex  deployed bytecode, hex, no 0x, trailing newline
//   selectors.json                       4-byte selectors of every external function
//   storage-layout.json                  solc storageLayout for each contract
//
// Usage: node compile.js
//   SOLC_PATH overrides the solc module path (default /tmp/solc/node_modules/solc).
'use strict';

const fs = require('fs');
const path = require('path');

const solcPath = process.env.SOLC_PATH || '/tmp/solc/node_modules/solc';
const solc = require(solcPath);

const here = __dirname;
const sources = ['ERC20.sol', 'AMM.sol'];
const wanted = { 'ERC20.sol': 'Token', 'AMM.sol': 'Pair' };

const input = {
  language: 'Solidity',
  sources: Object.fromEntries(
    sources.map((f) => [f, { content: fs.readFileSync(path.join(here, f), 'utf8') }])
  ),
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: 'cancun',
    outputSelection: {
      '*': {
        '*': ['abi', 'evm.deployedBytecode.object', 'evm.methodIdentifiers', 'storageLayout'],
      },
    },
  },
};

const output = JSON.parse(solc.compile(JSON.stringify(input)));

let failed = false;
for (const err of output.errors || []) {
  console.error(err.formattedMessage || err.message);
  if (err.severity === 'error') failed = true;
}
if (failed) process.exit(1);

const selectors = {};
const layouts = {};
for (const [file, name] of Object.entries(wanted)) {
  const c = output.contracts && output.contracts[file] && output.contracts[file][name];
  if (!c) {
    console.error(`missing contract ${file}:${name} in solc output`);
    process.exit(1);
  }
  const code = c.evm.deployedBytecode.object;
  if (!code || !/^[0-9a-f]+$/.test(code)) {
    console.error(`bad or empty deployed bytecode for ${name}`);
    process.exit(1);
  }
  fs.writeFileSync(path.join(here, `${name}.runtime.hex`), code + '\n');

  // methodIdentifiers lists every external/public function: signature -> selector.
  const ids = c.evm.methodIdentifiers;
  selectors[name] = Object.fromEntries(Object.keys(ids).sort().map((k) => [k, ids[k]]));

  layouts[name] = c.storageLayout;
  console.log(`${name}: ${code.length / 2} bytes runtime code`);
}

fs.writeFileSync(path.join(here, 'selectors.json'), JSON.stringify(selectors, null, 2) + '\n');
fs.writeFileSync(path.join(here, 'storage-layout.json'), JSON.stringify(layouts, null, 2) + '\n');
console.log(`solc ${solc.version()}`);
