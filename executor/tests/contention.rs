//! Property tests: random blocks with heavy contention run in parallel must
//! produce exactly what the sequential executor produces (the same output, or
//! the same error).
//!
//! The state holds a handful of funded accounts and a few hand-assembled
//! contracts: a counter over a few shared slots, a reverting writer, a
//! self-destructing contract, a CREATE2 factory (repeated salts collide), a
//! balance reader that reads the block beneficiary (deferred fees), a
//! WETH-like vault and a router; and the benchmarks' ERC-20 token, whose
//! transfers between a few holders chain through their balances. The
//! beneficiary itself pays too, to accounts and contracts, from a balance
//! that some payments exceed without the block's fees.

#![allow(clippy::unwrap_used)] // tests unwrap: a panic is the failure report

use alloy_consensus::Header;
use alloy_primitives::{Address, Bytes, TxKind, B256, U256};
use pel_executor::{
    execute_block, revm::context::TxEnv, sequential::ExecOptions, BlockInput, BlockOutput,
    ChainConfig, CostModel, FallBack, Fork, Grouping, ParallelExecutor, PartitionPolicy,
    PreparedTx, Route,
};
use pel_state::{AccountInfo, InMemoryState};
use proptest::prelude::*;

const EOAS: u8 = 5;
const CANCUN: pel_executor::revm::primitives::hardfork::SpecId =
    pel_executor::revm::primitives::hardfork::SpecId::CANCUN;
const TIMESTAMP: u64 = 1_800_000_000;
const COINBASE: u8 = 0xcb;
const COUNTER: u8 = 0xc1;
const REVERTER: u8 = 0xc2;
const DESTRUCTOR: u8 = 0xc3;
const FACTORY: u8 = 0xc4;
const READER: u8 = 0xc5;
/// Reads the balances of the two accounts that only receive (address
/// `0xf1`, which does not exist before the block, and EOA 0).
const PAYEE_READER: u8 = 0xc6;
/// A WETH-like vault: empty calldata deposits the value; a word of 1
/// stores its own balance (`BALANCE(ADDRESS)`); any other word sends that
/// much to the caller, storing whether the transfer went through under the
/// caller's slot.
const VAULT: u8 = 0xc7;
/// A router: with calldata, deposits the call's value in the vault,
/// withdraws the amount of its first calldata word from the vault into
/// itself, then pays the caller the amount of its second word from its own
/// balance (which may not cover it); without, only takes the value.
const ROUTER: u8 = 0xc8;
/// Stores the vault's balance (`BALANCE`).
const VAULT_READER: u8 = 0xc9;
/// The benchmark ERC-20 token (benches/contracts/ERC20.sol, compiled for
/// Cancun, so it runs from Shanghai on): `transfer`, `transferFrom` and
/// `approve` between the EOAs, some beyond a balance or an allowance.
const TOKEN: u8 = 0xca;
/// ERC-20 `transfer(address,uint256)`.
const TOKEN_TRANSFER: [u8; 4] = [0xa9, 0x05, 0x9c, 0xbb];
/// ERC-20 `transferFrom(address,address,uint256)`.
const TOKEN_TRANSFER_FROM: [u8; 4] = [0x23, 0xb8, 0x72, 0xdd];
/// ERC-20 `approve(address,uint256)`.
const TOKEN_APPROVE: [u8; 4] = [0x09, 0x5e, 0xa7, 0xb3];
/// Its runtime bytecode.
const TOKEN_RUNTIME: &str = include_str!("../../benches/contracts/Token.runtime.hex");
/// What EOA `i` holds of the token before the block: `(i + 1)` times this.
const TOKEN_UNIT: u64 = 100;
/// What the vault holds before the block: less than some withdrawals ask.
const VAULT_BALANCE: u64 = 1_000_000_000_000_000;
/// What the router holds before the block.
const ROUTER_BALANCE: u64 = 100_000_000_000_000;

fn addr(n: u8) -> Address {
    Address::with_last_byte(n)
}

fn eoa(i: u8) -> Address {
    Address::with_last_byte(0x10 + i)
}

/// `value` as one big-endian calldata word.
fn word(value: u64) -> Bytes {
    U256::from(value).to_be_bytes::<32>().to_vec().into()
}

fn code(hex: &str) -> Bytes {
    alloy_primitives::hex::decode(hex.trim()).unwrap().into()
}

/// The slot of `mapping[key]` for a Solidity mapping at slot `slot`.
fn mapping_slot(key: Address, slot: U256) -> U256 {
    let mut buf = [0u8; 64];
    buf[12..32].copy_from_slice(key.as_slice());
    buf[32..].copy_from_slice(&slot.to_be_bytes::<32>());
    U256::from_be_bytes(alloy_primitives::keccak256(buf).0)
}

/// The token's `balanceOf[holder]` slot.
fn token_balance_slot(holder: Address) -> U256 {
    mapping_slot(holder, U256::ZERO)
}

/// The token's `allowance[owner][spender]` slot.
fn token_allowance_slot(owner: Address, spender: Address) -> U256 {
    mapping_slot(spender, mapping_slot(owner, U256::from(1)))
}

/// The token holder a generated index names: an EOA, or past them the
/// address `0xf2`, which holds nothing before the block.
fn token_holder(i: u8) -> Address {
    if i < EOAS {
        eoa(i)
    } else {
        addr(0xf2)
    }
}

/// Token call data: `selector`, then `holders` and `amount` as words.
fn token_call(selector: [u8; 4], holders: &[Address], amount: u64) -> Bytes {
    let mut data = selector.to_vec();
    for h in holders {
        data.extend_from_slice(&[0; 12]);
        data.extend_from_slice(h.as_slice());
    }
    data.extend_from_slice(&word(amount));
    data.into()
}

fn state() -> InMemoryState {
    let mut s = InMemoryState::new();
    for i in 0..EOAS {
        // Modest balances, so some transfers fail their balance check.
        let balance = U256::from(10u64.pow(15)) * U256::from(i as u64 + 1);
        s.insert_account(eoa(i), AccountInfo::with_balance(balance), []);
    }
    s.insert_account(
        addr(COINBASE),
        AccountInfo::with_balance(U256::from(COINBASE_BALANCE)),
        [],
    );
    // SSTORE(slot = calldata[0], SLOAD(slot) + 1)
    let counter = s.insert_code(code("600035805460010190550000"));
    // SSTORE(0, 1); REVERT(0, 0)
    let reverter = s.insert_code(code("600160005560006000fd"));
    // SELFDESTRUCT(coinbase)
    let destructor = s.insert_code(code(&format!("73{}ff", hex_addr(addr(COINBASE)))));
    let factory = s.insert_code(factory_code());
    // SSTORE(0, BALANCE(coinbase)); SSTORE(1, BALANCE(eoa 0))
    let reader = s.insert_code(code(
        &format!(
            "73{}3160005573{}31600155 00",
            hex_addr(addr(COINBASE)),
            hex_addr(eoa(0))
        )
        .replace(' ', ""),
    ));
    // SSTORE(0, BALANCE(0xf1)); SSTORE(1, BALANCE(eoa 0))
    let payee_reader = s.insert_code(code(
        &format!(
            "73{}3160005573{}31600155 00",
            hex_addr(addr(0xf1)),
            hex_addr(eoa(0))
        )
        .replace(' ', ""),
    ));
    let vault = s.insert_code(code(
        "60003580156022578060011460\
         1b5760008080808433\
         5af1335500\
         5b303160025500\
         5b00",
    ));
    let router = s.insert_code(code(
        &format!(
            "36 15 6059 57 \
             6000808080 34 73{v} 5af1 50 \
             6020 6000 6000 37 6000 6000 6020 6000 6000 73{v} 5af1 50 \
             6000808080 602035 33 5af1 50 00 \
             5b 00",
            v = hex_addr(addr(VAULT))
        )
        .replace(' ', ""),
    ));
    let vault_reader = s.insert_code(code(&format!("73{}3160005500", hex_addr(addr(VAULT)))));
    // The token: balances for every EOA; EOA 1 may move 150 of EOA 0's,
    // EOA 3 any amount of EOA 2's.
    let token = s.insert_code(code(TOKEN_RUNTIME));
    let mut token_storage: Vec<(U256, U256)> = (0..EOAS)
        .map(|i| {
            (
                token_balance_slot(eoa(i)),
                U256::from(TOKEN_UNIT * (u64::from(i) + 1)),
            )
        })
        .collect();
    token_storage.push((token_allowance_slot(eoa(0), eoa(1)), U256::from(150)));
    token_storage.push((token_allowance_slot(eoa(2), eoa(3)), U256::MAX));
    token_storage.push((
        U256::from(2),
        U256::from(TOKEN_UNIT * u64::from(EOAS) * (u64::from(EOAS) + 1) / 2),
    ));
    s.insert_account(
        addr(TOKEN),
        AccountInfo {
            balance: U256::ZERO,
            nonce: 1,
            code_hash: token,
        },
        token_storage,
    );
    // The system contracts, so the EIP-4788 and EIP-2935 calls before the
    // transactions and the EIP-7002 and EIP-7251 calls after them really run.
    for (address, code) in [
        (
            alloy_eips::eip4788::BEACON_ROOTS_ADDRESS,
            &alloy_eips::eip4788::BEACON_ROOTS_CODE,
        ),
        (
            alloy_eips::eip2935::HISTORY_STORAGE_ADDRESS,
            &alloy_eips::eip2935::HISTORY_STORAGE_CODE,
        ),
        (
            alloy_eips::eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_ADDRESS,
            &alloy_eips::eip7002::WITHDRAWAL_REQUEST_PREDEPLOY_CODE,
        ),
        (
            alloy_eips::eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_ADDRESS,
            &alloy_eips::eip7251::CONSOLIDATION_REQUEST_PREDEPLOY_CODE,
        ),
    ] {
        let hash = s.insert_code(code.clone());
        s.insert_account(
            address,
            AccountInfo {
                balance: U256::ZERO,
                nonce: 1,
                code_hash: hash,
            },
            [],
        );
    }
    // Child 0 exists before the block, with storage, so that a self-destruct
    // and a re-creation within the block must wipe it.
    let runtime = s.insert_code(child_runtime());
    s.insert_account(
        child(0),
        AccountInfo {
            balance: U256::from(3),
            nonce: 1,
            code_hash: runtime,
        },
        [(U256::ZERO, U256::from(5)), (U256::from(1), U256::from(9))],
    );
    for (a, hash, balance) in [
        (COUNTER, counter, 0u64),
        (REVERTER, reverter, 0),
        (DESTRUCTOR, destructor, 1_000),
        (FACTORY, factory, 0),
        (READER, reader, 0),
        (PAYEE_READER, payee_reader, 0),
        (VAULT, vault, VAULT_BALANCE),
        (ROUTER, router, ROUTER_BALANCE),
        (VAULT_READER, vault_reader, 0),
    ] {
        let info = AccountInfo {
            balance: U256::from(balance),
            nonce: 1,
            code_hash: hash,
        };
        let storage = [(U256::ZERO, U256::from(7)), (U256::from(1), U256::from(9))];
        s.insert_account(addr(a), info, storage);
    }
    s
}

/// Runtime of the factory's children: with empty calldata SELFDESTRUCT to
/// the beneficiary, otherwise SSTORE(1, SLOAD(1) + 1).
fn child_runtime() -> Bytes {
    code(
        &format!(
            "3615600f57 60015460010160015500 5b73{}ff",
            hex_addr(addr(COINBASE))
        )
        .replace(' ', ""),
    )
}

/// Init code of the children: SSTORE(0, SLOAD(0) + 1), then deploy the
/// runtime. A child re-created after a self-destruct starts from wiped storage.
fn child_init_code() -> Bytes {
    let runtime = child_runtime();
    assert_eq!(runtime.len(), 0x26);
    code(
        &format!(
            "600054600101600055 6026601560003960266000f3 {}",
            hex_addr_bytes(&runtime)
        )
        .replace(' ', ""),
    )
}

/// CODECOPY the child init code, then CREATE2(0, 0, len, calldata[0]).
fn factory_code() -> Bytes {
    let init = child_init_code();
    assert_eq!(init.len(), 0x3b);
    code(
        &format!(
            "603b601360003960003560 3b6000 6000f55000{}",
            hex_addr_bytes(&init)
        )
        .replace(' ', ""),
    )
}

fn hex_addr_bytes(b: &[u8]) -> String {
    alloy_primitives::hex::encode(b)
}

fn child(salt: u8) -> Address {
    addr(FACTORY).create2(
        B256::with_last_byte(salt),
        alloy_primitives::keccak256(child_init_code()),
    )
}

fn hex_addr(a: Address) -> String {
    alloy_primitives::hex::encode(a.as_slice())
}

/// What the beneficiary holds before the block: enough for a payment at
/// the lowest gas price, not at every price and value.
const COINBASE_BALANCE: u64 = 1_500_000;
/// The gas limit of the beneficiary's payments.
const COINBASE_PAYMENT_GAS: u64 = 50_000;
/// What the beneficiary's payments go to past the EOAs (then to an empty
/// account): itself, code that reads its balance, code that does not, code
/// that self-destructs to it.
const COINBASE_TARGETS: [u8; 4] = [COINBASE, READER, COUNTER, DESTRUCTOR];

/// The number `Op::CoinbasePays` gives `target` past the EOAs.
fn coinbase_target_index(target: u8) -> u8 {
    COINBASE_TARGETS.iter().position(|&a| a == target).unwrap() as u8
}

/// The sender index that stands for the beneficiary in a generated block.
const COINBASE_SENDER: u8 = u8::MAX;

/// One generated transaction, before nonces are assigned.
#[derive(Clone, Debug)]
enum Op {
    Transfer {
        from: u8,
        to: u8,
        value: u64,
    },
    Count {
        from: u8,
        slot: u8,
    },
    Revert {
        from: u8,
    },
    Destruct {
        from: u8,
    },
    Create2 {
        from: u8,
        salt: u8,
    },
    DestructChild {
        from: u8,
        salt: u8,
    },
    PokeChild {
        from: u8,
        salt: u8,
    },
    Read {
        from: u8,
    },
    /// Reads the balances of the accounts that only receive
    /// ([`PAYEE_READER`]).
    ReadPayees {
        from: u8,
    },
    PayCoinbase {
        from: u8,
        value: u64,
    },
    CountOutOfGas {
        from: u8,
        slot: u8,
    },
    Precompile {
        from: u8,
        which: u8,
        value: u64,
    },
    /// Pays a factory child, which may not exist yet, exist with code (it
    /// then self-destructs to the beneficiary), or be created by a lower
    /// transaction after this one first ran.
    PayChild {
        from: u8,
        salt: u8,
        value: u64,
    },
    /// Reads the beacon root the pre-block system call just stored.
    ReadBeaconRoot {
        from: u8,
    },
    /// The beneficiary pays (a pool's payout, a builder's payment to the
    /// proposer) an EOA, itself, a contract (see [`COINBASE_TARGETS`]) or a
    /// new address. Its balance is small: some payments pass their balance
    /// check only with the fees of the transactions before them.
    CoinbasePays {
        to: u8,
        value: u64,
    },
    /// Pays the vault (see [`VAULT`]).
    VaultDeposit {
        from: u8,
        value: u64,
    },
    /// Asks the vault for `amount` (at least 2), which it may not hold.
    VaultWithdraw {
        from: u8,
        amount: u64,
    },
    /// The vault stores its own balance.
    VaultSelfBalance {
        from: u8,
    },
    /// Through the router (see [`ROUTER`]).
    RouterSwap {
        from: u8,
        value: u64,
        back: u64,
        pay: u64,
    },
    /// Stores the vault's balance from outside it.
    ReadVault {
        from: u8,
    },
    /// The token's `transfer` to a holder ([`token_holder`]).
    TokenTransfer {
        from: u8,
        to: u8,
        amount: u64,
    },
    /// The token's `transferFrom`, `from` spending `owner`'s tokens.
    TokenTransferFrom {
        from: u8,
        owner: u8,
        to: u8,
        amount: u64,
    },
    /// The token's `approve`.
    TokenApprove {
        from: u8,
        spender: u8,
        amount: u64,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let from = 0..EOAS;
    prop_oneof![
        4 => (from.clone(), 0..EOAS + 3, 0u64..400_000_000_000_000).prop_map(|(from, to, value)| Op::Transfer { from, to, value }),
        4 => (from.clone(), 0u8..3).prop_map(|(from, slot)| Op::Count { from, slot }),
        1 => from.clone().prop_map(|from| Op::Revert { from }),
        1 => from.clone().prop_map(|from| Op::Destruct { from }),
        2 => (from.clone(), 0u8..3).prop_map(|(from, salt)| Op::Create2 { from, salt }),
        2 => (from.clone(), 0u8..3).prop_map(|(from, salt)| Op::DestructChild { from, salt }),
        2 => (from.clone(), 0u8..3).prop_map(|(from, salt)| Op::PokeChild { from, salt }),
        2 => from.clone().prop_map(|from| Op::Read { from }),
        1 => from.clone().prop_map(|from| Op::ReadPayees { from }),
        1 => (from.clone(), 0u64..1_000_000).prop_map(|(from, value)| Op::PayCoinbase { from, value }),
        1 => (from.clone(), 0u8..3).prop_map(|(from, slot)| Op::CountOutOfGas { from, slot }),
        1 => (from.clone(), 1u8..11, prop::sample::select(vec![0u64, 1, 1_000])).prop_map(|(from, which, value)| Op::Precompile { from, which, value }),
        1 => (from.clone(), 0u8..3, 0u64..3).prop_map(|(from, salt, value)| Op::PayChild { from, salt, value }),
        1 => from.clone().prop_map(|from| Op::ReadBeaconRoot { from }),
        2 => (0..EOAS + COINBASE_TARGETS.len() as u8 + 1, 0u64..1_000_000).prop_map(|(to, value)| Op::CoinbasePays { to, value }),
        2 => (from.clone(), 0u64..VAULT_BALANCE).prop_map(|(from, value)| Op::VaultDeposit { from, value }),
        2 => (from.clone(), 2u64..2 * VAULT_BALANCE).prop_map(|(from, amount)| Op::VaultWithdraw { from, amount }),
        1 => from.clone().prop_map(|from| Op::VaultSelfBalance { from }),
        2 => (from.clone(), 0u64..VAULT_BALANCE, 0u64..2 * VAULT_BALANCE, 0u64..2 * ROUTER_BALANCE).prop_map(|(from, value, back, pay)| Op::RouterSwap { from, value, back, pay }),
        1 => from.clone().prop_map(|from| Op::ReadVault { from }),
        3 => (from.clone(), 0..EOAS + 1, 0u64..3 * TOKEN_UNIT).prop_map(|(from, to, amount)| Op::TokenTransfer { from, to, amount }),
        1 => (from.clone(), 0..EOAS, 0..EOAS + 1, 0u64..3 * TOKEN_UNIT).prop_map(|(from, owner, to, amount)| Op::TokenTransferFrom { from, owner, to, amount }),
        1 => (from.clone(), 0..EOAS, 0u64..3 * TOKEN_UNIT).prop_map(|(from, spender, amount)| Op::TokenApprove { from, spender, amount }),
    ]
}

fn block(ops: &[Op], fork: Fork, gas_price: u128) -> BlockInput {
    block_with_withdrawals(ops, fork, gas_price, &[])
}

/// A block of `ops`; from Shanghai on it pays `withdrawals` (EOA index, gwei),
/// from Cancun on it carries a parent beacon root (the EIP-4788 system call
/// writes the beacon-roots contract before the first transaction).
fn block_with_withdrawals(
    ops: &[Op],
    fork: Fork,
    gas_price: u128,
    withdrawals: &[(u8, u64)],
) -> BlockInput {
    let mut nonces = [0u64; EOAS as usize];
    let mut coinbase_nonce = 0;
    let transactions = ops
        .iter()
        .enumerate()
        .map(|(i, op)| {
            let mut gas_limit = 200_000;
            let (from, to, value, data) = match *op {
                Op::Transfer { from, to, value } => {
                    // Past the EOAs: the beneficiary, then two addresses that
                    // do not exist before the block.
                    let to = match to.checked_sub(EOAS) {
                        None => eoa(to),
                        Some(0) => addr(COINBASE),
                        Some(k) => addr(0xf0 + k),
                    };
                    (from, to, value, Bytes::new())
                }
                Op::Count { from, slot } => (
                    from,
                    addr(COUNTER),
                    0,
                    B256::with_last_byte(slot).0.to_vec().into(),
                ),
                Op::Revert { from } => (from, addr(REVERTER), 0, Bytes::new()),
                Op::Destruct { from } => (from, addr(DESTRUCTOR), 0, Bytes::new()),
                Op::Create2 { from, salt } => (
                    from,
                    addr(FACTORY),
                    0,
                    B256::with_last_byte(salt).0.to_vec().into(),
                ),
                Op::DestructChild { from, salt } => (from, child(salt), 0, Bytes::new()),
                Op::PokeChild { from, salt } => (from, child(salt), 0, Bytes::from(vec![1u8])),
                Op::Read { from } => (from, addr(READER), 0, Bytes::new()),
                Op::ReadPayees { from } => (from, addr(PAYEE_READER), 0, Bytes::new()),
                Op::PayCoinbase { from, value } => (from, addr(COINBASE), value, Bytes::new()),
                Op::CountOutOfGas { from, slot } => {
                    // Enough for the intrinsic cost, not for the SSTORE.
                    gas_limit = 23_000;
                    (
                        from,
                        addr(COUNTER),
                        0,
                        B256::with_last_byte(slot).0.to_vec().into(),
                    )
                }
                Op::ReadBeaconRoot { from } => (
                    from,
                    alloy_eips::eip4788::BEACON_ROOTS_ADDRESS,
                    0,
                    U256::from(TIMESTAMP).to_be_bytes::<32>().to_vec().into(),
                ),
                Op::Precompile { from, which, value } => (
                    from,
                    Address::with_last_byte(which),
                    value,
                    Bytes::from(vec![which; 96]),
                ),
                Op::PayChild { from, salt, value } => (from, child(salt), value, Bytes::new()),
                Op::VaultDeposit { from, value } => (from, addr(VAULT), value, Bytes::new()),
                Op::VaultWithdraw { from, amount } => (from, addr(VAULT), 0, word(amount)),
                Op::VaultSelfBalance { from } => (from, addr(VAULT), 0, word(1)),
                Op::RouterSwap {
                    from,
                    value,
                    back,
                    pay,
                } => {
                    let mut data = word(back).to_vec();
                    data.extend_from_slice(&word(pay));
                    (from, addr(ROUTER), value, data.into())
                }
                Op::ReadVault { from } => (from, addr(VAULT_READER), 0, Bytes::new()),
                Op::TokenTransfer { from, to, amount } => (
                    from,
                    addr(TOKEN),
                    0,
                    token_call(TOKEN_TRANSFER, &[token_holder(to)], amount),
                ),
                Op::TokenTransferFrom {
                    from,
                    owner,
                    to,
                    amount,
                } => (
                    from,
                    addr(TOKEN),
                    0,
                    token_call(TOKEN_TRANSFER_FROM, &[eoa(owner), token_holder(to)], amount),
                ),
                Op::TokenApprove {
                    from,
                    spender,
                    amount,
                } => (
                    from,
                    addr(TOKEN),
                    0,
                    token_call(TOKEN_APPROVE, &[eoa(spender)], amount),
                ),
                Op::CoinbasePays { to, value } => {
                    gas_limit = COINBASE_PAYMENT_GAS;
                    let to = match to.checked_sub(EOAS) {
                        None => eoa(to),
                        Some(i) => COINBASE_TARGETS
                            .get(usize::from(i))
                            .map_or(addr(0xf1), |&a| addr(a)),
                    };
                    (COINBASE_SENDER, to, value, Bytes::new())
                }
            };
            let (sender, nonce) = match from {
                COINBASE_SENDER => (addr(COINBASE), &mut coinbase_nonce),
                from => (eoa(from), &mut nonces[from as usize]),
            };
            *nonce += 1;
            let nonce = *nonce - 1;
            let env = TxEnv {
                tx_type: 0,
                caller: sender,
                gas_limit,
                gas_price,
                kind: TxKind::Call(to),
                value: U256::from(value),
                data,
                nonce,
                chain_id: Some(1),
                ..TxEnv::default()
            };
            PreparedTx {
                hash: B256::with_last_byte(i as u8),
                tx_type: 0,
                sender,
                env,
            }
        })
        .collect();
    let london = fork >= Fork::London;
    BlockInput {
        header: Header {
            number: 20_000_000,
            timestamp: TIMESTAMP,
            beneficiary: addr(COINBASE),
            gas_limit: 30_000_000,
            base_fee_per_gas: london.then_some(7),
            excess_blob_gas: (fork >= Fork::Cancun).then_some(0),
            parent_beacon_block_root: (fork >= Fork::Cancun).then_some(B256::with_last_byte(0xbe)),
            parent_hash: B256::with_last_byte(0x9a),
            ..Header::default()
        },
        transactions,
        withdrawals: (fork >= Fork::Shanghai).then(|| {
            withdrawals
                .iter()
                .enumerate()
                .map(|(i, (to, gwei))| alloy_eips::eip4895::Withdrawal {
                    index: i as u64,
                    validator_index: i as u64,
                    address: eoa(*to),
                    amount: *gwei,
                })
                .collect()
        }),
        ommers: Vec::new(),
    }
}

fn run_sequential(block: &BlockInput, chain: &ChainConfig) -> Result<BlockOutput, String> {
    execute_block(state(), block, chain, ExecOptions::default()).map_err(|e| e.to_string())
}

fn run_parallel(
    executor: &ParallelExecutor,
    block: &BlockInput,
    chain: &ChainConfig,
) -> Result<BlockOutput, String> {
    executor
        .execute_block(state(), block, chain, ExecOptions::default())
        .map(|(output, _)| output)
        .map_err(|e| e.to_string())
}

/// 2 and 4 threads running every block to its end, and 2 threads giving up
/// at the first sign of contention, so that the fall-back (the rest of the
/// block in order, on top of the committed prefix) runs on contended blocks
/// from every point of the block; then the partitioned fast path tried on
/// every block, with its usual grouping and with a grouping by sender alone
/// that ignores shared targets, so that its conflict check must catch them.
fn executors() -> Vec<ParallelExecutor> {
    let eager_fallback = CostModel {
        fallback: Some(FallBack::EAGER),
        ..CostModel::always()
    };
    let partitioned = |grouping| CostModel {
        partition: Some(PartitionPolicy::always(grouping)),
        ..CostModel::always()
    };
    [
        (2, CostModel::always()),
        (4, CostModel::always()),
        (2, eager_fallback),
        (2, partitioned(Grouping::Keys)),
        (3, partitioned(Grouping::SenderOnly)),
    ]
    .into_iter()
    .map(|(t, cost_model)| {
        let mut e = ParallelExecutor::new(t).unwrap();
        e.cost_model = cost_model;
        e
    })
    .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

    #[test]
    fn parallel_equals_sequential_under_contention(
        ops in prop::collection::vec(op(), 1..40),
        fork in prop::sample::select(vec![Fork::Berlin, Fork::London, Fork::Shanghai, Fork::Cancun, Fork::Prague]),
        gas_price in 7u128..20,
        withdrawals in prop::collection::vec((0..EOAS, 0u64..5_000_000), 0..4),
    ) {
        let chain = ChainConfig::single_fork(1, fork);
        let block = block_with_withdrawals(&ops, fork, gas_price, &withdrawals);
        let sequential = run_sequential(&block, &chain);
        thread_local! { static EXECUTORS: Vec<ParallelExecutor> = executors(); }
        EXECUTORS.with(|executors| {
            for executor in executors {
                let parallel = run_parallel(executor, &block, &chain);
                prop_assert_eq!(
                    &parallel,
                    &sequential,
                    "{} threads, {:?}",
                    executor.threads(),
                    executor.cost_model
                );
            }
            Ok(())
        })?;
    }
}

/// Gives up to two transactions past the block's first quarter that wait
/// for no other (see `pel_executor::hints`), not sent by the beneficiary,
/// for which `heavy` says so, a gas limit above a third of the block's gas
/// limits, so that the Block-STM executor starts them early where few
/// transactions follow them (see `pel_executor::hints::early_starts`);
/// returns how many it made heavy.
fn make_heavy(block: &mut BlockInput, heavy: &[bool]) -> usize {
    const HEAVY_GAS: u64 = 10_000_000;
    let hints = pel_executor::hints::wait_hints(block);
    let n = block.transactions.len();
    let mut made = 0;
    let late = block
        .transactions
        .iter_mut()
        .zip(&hints)
        .enumerate()
        .skip(n.div_ceil(4));
    for (k, (tx, hints)) in late {
        let free = hints.iter().all(Option::is_none);
        if made < 2 && free && tx.sender != addr(COINBASE) && heavy.get(k) == Some(&true) {
            tx.env.gas_limit = HEAVY_GAS;
            made += 1;
        }
    }
    made
}

proptest! {
    // Most generated blocks have no transaction that waits for none past
    // their first quarter (five senders): they are rejected.
    #![proptest_config(ProptestConfig {
        cases: 400,
        max_global_rejects: 16_384,
        ..ProptestConfig::default()
    })]

    /// Transactions started early, before the lower ones they may depend
    /// on, still give exactly the sequential result.
    #[test]
    fn early_started_transactions_equal_sequential(
        ops in prop::collection::vec(op(), 4..40),
        fork in prop::sample::select(vec![Fork::London, Fork::Cancun, Fork::Prague]),
        heavy in prop::collection::vec(any::<bool>(), 40),
    ) {
        let chain = ChainConfig::single_fork(1, fork);
        let mut block = block(&ops, fork, 10);
        let made = make_heavy(&mut block, &heavy);
        prop_assume!(made > 0);
        let hints = pel_executor::hints::wait_hints(&block);
        let early = pel_executor::hints::early_starts(&block, &hints, block.gas_limits(), 2);
        prop_assume!(!early.is_empty());
        let sequential = run_sequential(&block, &chain);
        thread_local! { static EXECUTORS: Vec<ParallelExecutor> = executors(); }
        EXECUTORS.with(|executors| {
            for executor in executors {
                let parallel = run_parallel(executor, &block, &chain);
                prop_assert_eq!(&parallel, &sequential, "{} threads, {:?}", executor.threads(), executor.cost_model);
            }
            Ok(())
        })?;
    }
}

/// A late heavy transaction that reads the slot every lower one increments
/// is started early on a view without their writes: it must run again, and
/// the result is the sequential one. (Transfers keep the last increment
/// more than [`pel_executor::hints::CALL_SPAN`] below it, so that it does
/// not wait for that call to the same function.)
#[test]
fn an_early_start_that_read_too_soon_runs_again() {
    let chain = ChainConfig::single_fork(1, Fork::Cancun);
    let mut ops: Vec<Op> = (0..12)
        .map(|i| Op::Count {
            from: i % 4,
            slot: 1,
        })
        .collect();
    let span = pel_executor::hints::CALL_SPAN as u8;
    ops.extend((0..span).map(|i| Op::Transfer {
        from: i % 4,
        to: 5,
        value: 1,
    }));
    ops.push(Op::Count { from: 4, slot: 1 });
    let late = ops.len() - 1;
    let mut block = block(&ops, Fork::Cancun, 10);
    let mut heavy = vec![false; ops.len()];
    heavy[late] = true;
    assert_eq!(make_heavy(&mut block, &heavy), 1);
    let hints = pel_executor::hints::wait_hints(&block);
    assert_eq!(
        pel_executor::hints::early_starts(&block, &hints, block.gas_limits(), 2),
        vec![late]
    );
    let sequential = run_sequential(&block, &chain).unwrap();
    for executor in executors() {
        for _ in 0..20 {
            assert_eq!(
                run_parallel(&executor, &block, &chain).unwrap(),
                sequential,
                "{} threads, {:?}",
                executor.threads(),
                executor.cost_model
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    /// Block building (`fill`): with a block gas limit that cuts the block
    /// short, every executor ends it before the same transaction, the
    /// output equals an ordinary execution of that prefix, and the first
    /// transaction left out indeed no longer fits.
    #[test]
    fn filling_ends_the_block_where_gas_runs_out(
        ops in prop::collection::vec(op(), 1..40),
        fork in prop::sample::select(vec![Fork::London, Fork::Cancun, Fork::Prague]),
        gas_limit in 21_000u64..1_500_000,
    ) {
        let chain = ChainConfig::single_fork(1, fork);
        let mut block = block(&ops, fork, 10);
        block.header.gas_limit = gas_limit;
        let fill = ExecOptions { fill: true, ..ExecOptions::default() };
        let filled = execute_block(state(), &block, &chain, fill.clone())
            .map_err(|e| e.to_string());
        thread_local! { static EXECUTORS: Vec<ParallelExecutor> = executors(); }
        EXECUTORS.with(|executors| {
            for executor in executors {
                let parallel = executor
                    .execute_block(state(), &block, &chain, fill.clone())
                    .map(|(output, _)| output)
                    .map_err(|e| e.to_string());
                prop_assert_eq!(&parallel, &filled, "{} threads, {:?}", executor.threads(), executor.cost_model);
            }
            Ok(())
        })?;
        let Ok(filled) = filled else { return Ok(()) };
        let included = filled.receipts.len();
        let mut prefix = block.clone();
        prefix.transactions.truncate(included);
        prop_assert_eq!(run_sequential(&prefix, &chain), Ok(filled.clone()));
        if let Some(next) = block.transactions.get(included) {
            prop_assert!(next.env.gas_limit > gas_limit - filled.gas_used);
        }
    }
}

/// A transfer between two of the funded accounts.
fn pay(from: u8, to: u8, value: u64) -> Op {
    Op::Transfer { from, to, value }
}

/// The partitioned fast path runs where its groups are independent, and gives
/// up, leaving the block to Block-STM with the same result, where they are
/// not: two senders counting on one slot (split apart by a grouping by
/// sender alone), and a child created in one group and called in another.
#[test]
fn the_partitioned_path_runs_or_gives_up_with_the_same_result() {
    let chain = ChainConfig::single_fork(1, Fork::Cancun);
    let executor = |grouping| {
        let mut e = ParallelExecutor::new(2).unwrap();
        e.cost_model = CostModel {
            partition: Some(PartitionPolicy::always(grouping)),
            ..CostModel::always()
        };
        e
    };
    let cases = [
        (
            Grouping::Keys,
            vec![pay(0, 1, 10), pay(2, 3, 20), Op::Count { from: 4, slot: 0 }],
            true,
        ),
        (
            Grouping::SenderOnly,
            vec![
                Op::Count { from: 0, slot: 1 },
                Op::Count { from: 1, slot: 1 },
            ],
            false,
        ),
        (
            Grouping::Keys,
            vec![
                Op::Create2 { from: 0, salt: 1 },
                Op::PokeChild { from: 1, salt: 1 },
            ],
            false,
        ),
        (
            Grouping::Keys,
            vec![pay(0, 1, 10), Op::Read { from: 2 }],
            false,
        ),
        // The beneficiary's own payment runs in its group...
        (
            Grouping::Keys,
            vec![
                pay(0, 1, 10),
                Op::CoinbasePays {
                    to: 2,
                    value: 1_000,
                },
                pay(3, 4, 20),
                Op::CoinbasePays {
                    to: 2,
                    value: 1_000,
                },
            ],
            true,
        ),
        // ...but not when its balance check passes only with the fees
        // before it (1.5M of balance, 0.5M of gas and 1M of value)...
        (
            Grouping::Keys,
            vec![
                pay(0, 1, 10),
                Op::CoinbasePays {
                    to: 2,
                    value: 1_000_001,
                },
            ],
            false,
        ),
        // ...or when another group reads the beneficiary's balance.
        (
            Grouping::Keys,
            vec![
                Op::CoinbasePays {
                    to: 2,
                    value: 1_000,
                },
                Op::Read { from: 3 },
            ],
            false,
        ),
    ];
    for (grouping, ops, independent) in cases {
        let block = block(&ops, Fork::Cancun, 10);
        let sequential = run_sequential(&block, &chain).unwrap();
        let (parallel, stats) = executor(grouping)
            .execute_block(state(), &block, &chain, ExecOptions::default())
            .unwrap();
        assert_eq!(parallel, sequential, "{ops:?}");
        assert_eq!(stats.partitioned, independent, "{ops:?}: {stats:?}");
        assert_eq!(
            stats.partition_abandoned, !independent,
            "{ops:?}: {stats:?}"
        );
    }
}

/// A two-worker executor that tries the partitioned path on every block.
fn always_partitioning() -> ParallelExecutor {
    let mut executor = ParallelExecutor::new(2).unwrap();
    executor.cost_model = CostModel {
        partition: Some(PartitionPolicy::always(Grouping::Keys)),
        ..CostModel::always()
    };
    executor
}

/// Runs `block` on `state` with `executor`, checks that it equals the
/// sequential result and that the partitioned path ran (or, with
/// `partitioned` false, gave up); returns the result.
fn check_partitioned(
    executor: &ParallelExecutor,
    state: InMemoryState,
    block: &BlockInput,
    chain: &ChainConfig,
    partitioned: bool,
    case: &dyn std::fmt::Debug,
) -> BlockOutput {
    let sequential = execute_block(state.clone(), block, chain, ExecOptions::default()).unwrap();
    let (parallel, stats) = executor
        .execute_block(state, block, chain, ExecOptions::default())
        .unwrap();
    assert_eq!(parallel, sequential, "{case:?}");
    assert_eq!(
        (stats.partitioned, stats.partition_abandoned),
        (partitioned, !partitioned),
        "{case:?}: {stats:?}"
    );
    parallel
}

/// A payment by the beneficiary to an account with code is partitioned, and
/// given up when the code looks at the beneficiary (reads its balance, which
/// depends on the fees before it, or self-destructs to it).
#[test]
fn the_beneficiary_paying_a_contract_is_partitioned_until_the_code_looks_at_it() {
    let chain = ChainConfig::single_fork(1, Fork::Cancun);
    let executor = always_partitioning();
    // Targets as `Op::CoinbasePays` numbers them past the EOAs.
    for (to, looks) in [(COUNTER, false), (READER, true), (DESTRUCTOR, true)] {
        let to = EOAS + coinbase_target_index(to);
        // Not from EOA 0, whose balance the reader reads too.
        let ops = vec![pay(2, 3, 10), Op::CoinbasePays { to, value: 1 }];
        let block = block(&ops, Fork::Cancun, 10);
        check_partitioned(&executor, state(), &block, &chain, !looks, &to);
    }
}

/// Payments from several senders to an account that sends nothing (an
/// exchange's deposit address, existing or not) are split across bins, each
/// crediting it; the attempt is given up when code looks at its balance.
/// An account that also sends is no sink: keyed like any other, it joins its
/// payers into one group.
#[test]
fn payments_to_a_sink_are_partitioned_until_code_looks_at_it() {
    let chain = ChainConfig::single_fork(1, Fork::Cancun);
    let executor = always_partitioning();
    // EOA 0, and 0xf1 (past the EOAs and the beneficiary).
    for to in [0, EOAS + 1] {
        let payments: Vec<Op> = (1..9u8)
            .map(|k| pay(1 + k % 4, to, 1_000 + u64::from(k)))
            .collect();
        let looked = [payments.clone(), vec![Op::ReadPayees { from: 2 }]].concat();
        let sends = [payments.clone(), vec![pay(0, 3, 1)]].concat();
        let routed = executor.cost_model.route(
            &block(&payments, Fork::Cancun, 10),
            CANCUN,
            2,
            false,
            |_, _| pel_executor::partition::Target::Account,
        );
        let Some(Route::Partition(plan)) = routed else {
            panic!("{to}: {routed:?}");
        };
        assert_eq!((plan.bins.len(), plan.sinks.len()), (2, 1), "{to}");
        for (ops, partitioned) in [(payments, true), (looked, false), (sends, true)] {
            let block = block(&ops, Fork::Cancun, 10);
            check_partitioned(&executor, state(), &block, &chain, partitioned, &ops);
        }
    }
    // A precompile paid often is no sink (a payment to it runs it): its
    // payers' bins both change it, and the attempt is given up.
    let mut block = block(
        &(1..9u8)
            .map(|k| pay(1 + k % 4, 0, 1_000))
            .collect::<Vec<_>>(),
        Fork::Cancun,
        10,
    );
    for tx in &mut block.transactions {
        tx.env.kind = TxKind::Call(Address::with_last_byte(4));
    }
    check_partitioned(&executor, state(), &block, &chain, false, &"a precompile");
}

/// The beneficiary's plain payouts are split across bins, each starting from
/// its nonce before the payout and its balance less what the payouts before
/// it may cost (their values and gas limits). A payout to code stays in one
/// group; one whose code looks at the beneficiary gives the attempt up, and
/// so does a payout whose balance check fails on that bound, though it
/// passes in block order.
#[test]
fn the_beneficiarys_payouts_are_split_across_bins() {
    let chain = ChainConfig::single_fork(1, Fork::Cancun);
    let executor = always_partitioning();
    // Room for the bounds of a dozen payouts (50,000 gas at 10 wei each).
    let rich = || {
        let mut s = state();
        s.insert_account(
            addr(COINBASE),
            AccountInfo::with_balance(U256::from(10_000_000u64)),
            [],
        );
        s
    };
    let payouts: Vec<Op> = (0..8u8)
        .map(|k| Op::CoinbasePays {
            to: k % 4 + 1,
            value: 1_000 + u64::from(k),
        })
        .chain([pay(0, 1, 10)])
        .collect();
    let to = |target| EOAS + coinbase_target_index(target);
    let with = |extra: Op| [payouts.clone(), vec![extra]].concat();
    let routed = executor.cost_model.route(
        &block(&payouts, Fork::Cancun, 10),
        CANCUN,
        2,
        false,
        |_, _| pel_executor::partition::Target::Account,
    );
    let Some(Route::Partition(plan)) = routed else {
        panic!("{routed:?}");
    };
    assert!(plan.split_payouts && plan.bins.len() == 2, "{plan:?}");
    let cases = [
        (payouts.clone(), rich(), true),
        (
            with(Op::CoinbasePays {
                to: to(COUNTER),
                value: 1,
            }),
            rich(),
            true,
        ),
        (
            with(Op::CoinbasePays {
                to: to(READER),
                value: 1,
            }),
            rich(),
            false,
        ),
        // 1.5M of balance: the third payout's bound does not fit.
        ([&payouts[..3], &payouts[8..]].concat(), state(), false),
    ];
    for (ops, state, partitioned) in cases {
        let block = block(&ops, Fork::Cancun, 10);
        let out = check_partitioned(&executor, state, &block, &chain, partitioned, &ops);
        assert!(out.receipts.iter().all(|r| r.success), "{ops:?}");
    }
}

/// The generator produces what it claims: contended blocks that exercise each
/// feature (successes, reverts, creations, self-destructs, failures).
#[test]
fn generated_blocks_cover_the_features() {
    let chain = ChainConfig::single_fork(1, Fork::Cancun);
    let ops = vec![
        Op::Count { from: 0, slot: 1 },
        Op::Count { from: 1, slot: 1 },
        Op::Revert { from: 2 },
        Op::Create2 { from: 3, salt: 1 },
        Op::Create2 { from: 4, salt: 1 },
        Op::Destruct { from: 0 },
        Op::Read { from: 1 },
        Op::PayCoinbase { from: 2, value: 5 },
        Op::Transfer {
            from: 3,
            to: 0,
            value: 1,
        },
    ];
    let out = run_sequential(&block(&ops, Fork::Cancun, 10), &chain).unwrap();
    let status: Vec<bool> = out.receipts.iter().map(|r| r.success).collect();
    // Counter twice, revert fails, first CREATE2 succeeds, the second collides
    // (the factory call itself still succeeds), destruct, read, pay, transfer.
    assert_eq!(
        status,
        [true, true, false, true, true, true, true, true, true]
    );
    let counter = out.diff.accounts.get(&addr(COUNTER)).unwrap();
    assert_eq!(counter.storage.get(&U256::from(1)), Some(&U256::from(11)));
    // The reader saw the beneficiary's balance including the fees so far.
    let reader = out.diff.accounts.get(&addr(READER)).unwrap();
    assert!(reader
        .storage
        .get(&U256::ZERO)
        .is_some_and(|b| !b.is_zero()));
    // Before Cancun a child self-destructs for good; re-created, it starts from
    // wiped storage.
    let chain_shanghai = ChainConfig::single_fork(1, Fork::Shanghai);
    let ops = vec![
        Op::PokeChild { from: 0, salt: 0 },
        Op::DestructChild { from: 1, salt: 0 },
        Op::Create2 { from: 2, salt: 0 },
        Op::PokeChild { from: 3, salt: 0 },
    ];
    let out = run_sequential(&block(&ops, Fork::Shanghai, 10), &chain_shanghai).unwrap();
    let c = out.diff.accounts.get(&child(0)).unwrap();
    assert!(c.storage_cleared);
    assert!(c.info.is_some_and(|i| !i.has_no_code()));
    assert_eq!(c.storage.get(&U256::ZERO), Some(&U256::from(1)));
    assert_eq!(c.storage.get(&U256::from(1)), Some(&U256::from(1)));
    for executor in executors() {
        let parallel = run_parallel(&executor, &block(&ops, Fork::Shanghai, 10), &chain_shanghai);
        assert_eq!(parallel, Ok(out.clone()));
    }
    // Out of gas, precompiles, system calls and withdrawals (Prague runs all
    // four system calls).
    let chain_prague = ChainConfig::single_fork(1, Fork::Prague);
    let ops = vec![
        Op::CountOutOfGas { from: 0, slot: 0 },
        Op::Precompile {
            from: 1,
            which: 2,
            value: 0,
        },
        Op::Precompile {
            from: 2,
            which: 4,
            value: 1,
        },
        Op::Count { from: 3, slot: 0 },
        Op::ReadBeaconRoot { from: 4 },
    ];
    let prague = block_with_withdrawals(&ops, Fork::Prague, 10, &[(3, 1_000), (4, 0)]);
    let out = run_sequential(&prague, &chain_prague).unwrap();
    let status: Vec<bool> = out.receipts.iter().map(|r| r.success).collect();
    assert_eq!(status, [false, true, true, true, true]);
    assert!(out
        .diff
        .accounts
        .contains_key(&alloy_eips::eip4788::BEACON_ROOTS_ADDRESS));
    assert!(out
        .diff
        .accounts
        .contains_key(&alloy_eips::eip2935::HISTORY_STORAGE_ADDRESS));
    for executor in executors() {
        assert_eq!(
            run_parallel(&executor, &prague, &chain_prague),
            Ok(out.clone())
        );
    }
    // The vault: a deposit, a withdrawal it covers only with that deposit,
    // one it cannot cover, a deposit and a round trip through the router
    // (which pays the caller from its own balance), then its balance read
    // from inside and from outside.
    let vault_word = |a: Address| U256::from_be_slice(a.as_slice());
    let ops = vec![
        Op::VaultDeposit { from: 0, value: 5 },
        Op::VaultWithdraw {
            from: 1,
            amount: VAULT_BALANCE + 5,
        },
        Op::VaultWithdraw {
            from: 2,
            amount: 1_000,
        },
        Op::VaultDeposit {
            from: 3,
            value: 7_000,
        },
        Op::RouterSwap {
            from: 4,
            value: 100,
            back: 50,
            pay: 1_000,
        },
        Op::VaultSelfBalance { from: 0 },
        Op::ReadVault { from: 1 },
    ];
    let vault_block = block(&ops, Fork::Cancun, 10);
    let out = run_sequential(&vault_block, &chain).unwrap();
    let vault = out.diff.accounts.get(&addr(VAULT)).unwrap();
    assert_eq!(vault.info.map(|i| i.balance), Some(U256::from(7_050)));
    assert_eq!(vault.storage.get(&vault_word(eoa(1))), Some(&U256::from(1)));
    assert_eq!(vault.storage.get(&vault_word(eoa(2))), None);
    assert_eq!(
        vault.storage.get(&vault_word(addr(ROUTER))),
        Some(&U256::from(1))
    );
    assert_eq!(vault.storage.get(&U256::from(2)), Some(&U256::from(7_050)));
    let reader = out.diff.accounts.get(&addr(VAULT_READER)).unwrap();
    assert_eq!(reader.storage.get(&U256::ZERO), Some(&U256::from(7_050)));
    let router = out.diff.accounts.get(&addr(ROUTER)).unwrap();
    assert_eq!(
        router.info.map(|i| i.balance),
        Some(U256::from(ROUTER_BALANCE + 50 - 1_000))
    );
    for executor in executors() {
        assert_eq!(
            run_parallel(&executor, &vault_block, &chain),
            Ok(out.clone())
        );
    }
    // The token: transfers that chain through one holder, one beyond a
    // balance, a spend within an allowance and one beyond it, an approval
    // and the spend it allows.
    let ops = vec![
        Op::TokenTransfer {
            from: 0,
            to: 4,
            amount: 60,
        },
        Op::TokenTransfer {
            from: 4,
            to: 5,
            amount: 560,
        },
        Op::TokenTransfer {
            from: 1,
            to: 0,
            amount: 201,
        },
        Op::TokenTransferFrom {
            from: 1,
            owner: 0,
            to: 2,
            amount: 40,
        },
        Op::TokenTransferFrom {
            from: 1,
            owner: 0,
            to: 2,
            amount: 111,
        },
        Op::TokenApprove {
            from: 2,
            spender: 4,
            amount: 100,
        },
        Op::TokenTransferFrom {
            from: 4,
            owner: 2,
            to: 5,
            amount: 100,
        },
    ];
    let token_block = block(&ops, Fork::Cancun, 10);
    let out = run_sequential(&token_block, &chain).unwrap();
    let status: Vec<bool> = out.receipts.iter().map(|r| r.success).collect();
    assert_eq!(status, [true, true, false, true, false, true, true]);
    let token = out.diff.accounts.get(&addr(TOKEN)).unwrap();
    let balance = |a: Address| token.storage.get(&token_balance_slot(a)).copied();
    assert_eq!(balance(eoa(0)), Some(U256::ZERO));
    assert_eq!(balance(eoa(4)), Some(U256::ZERO));
    assert_eq!(balance(eoa(1)), None, "its failed transfer changed nothing");
    assert_eq!(balance(addr(0xf2)), Some(U256::from(660)));
    assert_eq!(balance(eoa(2)), Some(U256::from(240)));
    for executor in executors() {
        assert_eq!(
            run_parallel(&executor, &token_block, &chain),
            Ok(out.clone())
        );
    }
    // A transfer beyond the sender's balance makes the block invalid.
    let too_much = vec![Op::Transfer {
        from: 0,
        to: 1,
        value: 2_000_000_000_000_000,
    }];
    assert!(run_sequential(&block(&too_much, Fork::Cancun, 10), &chain).is_err());
    let executors = executors();
    assert_eq!(
        run_parallel(&executors[0], &block(&too_much, Fork::Cancun, 10), &chain),
        run_sequential(&block(&too_much, Fork::Cancun, 10), &chain)
    );
}

/// EIP-7702: an EOA delegates to the counter in a type-4 transaction that also
/// calls it; later transactions call the delegated EOA, which runs the counter
/// on its own storage. Parallel and sequential agree, and the counter counts.
#[test]
fn eip7702_delegation_in_parallel() {
    use alloy_eips::eip7702::Authorization;
    use alloy_primitives::Signature;
    use pel_executor::revm::context_interface::either::Either;

    let key = k256::ecdsa::SigningKey::from_slice(&[0x42; 32]).unwrap();
    let authority = Address::from_private_key(&key);
    let auth = Authorization {
        chain_id: U256::from(1),
        address: addr(COUNTER),
        nonce: 0,
    };
    let (sig, recid) = key
        .sign_prehash_recoverable(auth.signature_hash().as_slice())
        .unwrap();
    let signed = auth.into_signed(Signature::from_signature_and_parity(sig, recid.is_y_odd()));

    let chain = ChainConfig::single_fork(1, Fork::Prague);
    let mut block = block(
        &[
            Op::Count { from: 0, slot: 0 },
            Op::Count { from: 1, slot: 0 },
            Op::Count { from: 2, slot: 1 },
        ],
        Fork::Prague,
        10,
    );
    // Turn the first transaction into the delegating type-4 call and point the
    // others at the authority.
    let slot = |n: u8| -> Bytes { B256::with_last_byte(n).0.to_vec().into() };
    for (i, tx) in block.transactions.iter_mut().enumerate() {
        tx.env.kind = TxKind::Call(authority);
        tx.env.data = slot(if i == 2 { 1 } else { 0 });
    }
    let first = &mut block.transactions[0];
    first.tx_type = 4;
    first.env.tx_type = 4;
    first.env.gas_priority_fee = Some(1);
    first.env.authorization_list = vec![Either::Left(signed)];

    let mut pre = state();
    pre.insert_account(
        authority,
        AccountInfo::with_balance(U256::from(1u64) << 60),
        [],
    );
    let sequential = execute_block(&pre, &block, &chain, ExecOptions::default()).unwrap();
    assert!(sequential.receipts.iter().all(|r| r.success));
    let delegated = sequential.diff.accounts.get(&authority).unwrap();
    assert_eq!(delegated.storage.get(&U256::ZERO), Some(&U256::from(2)));
    assert_eq!(delegated.storage.get(&U256::from(1)), Some(&U256::from(1)));
    assert!(delegated.info.is_some_and(|i| !i.has_no_code()));
    for executor in executors() {
        let (parallel, _) = executor
            .execute_block(&pre, &block, &chain, ExecOptions::default())
            .unwrap();
        assert_eq!(parallel, sequential, "{} threads", executor.threads());
    }
}
