//! Chain configuration and the fork schedule.
//!
//! Before the Merge a fork activates at a block number; from Shanghai on, at a
//! timestamp. Mainnet's schedule is built in ([`ChainConfig::mainnet`]); other
//! chains (devnets, the official tests) supply their own.

use alloy_primitives::Address;
use revm::primitives::hardfork::SpecId;
use serde::{Deserialize, Serialize};

/// A named fork, as people and fixtures spell it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Fork {
    /// Frontier (block 0).
    Frontier,
    /// Homestead.
    Homestead,
    /// Tangerine Whistle (EIP-150).
    Tangerine,
    /// Spurious Dragon (EIP-155/158/161).
    SpuriousDragon,
    /// Byzantium.
    Byzantium,
    /// Constantinople and Petersburg, which mainnet activated together.
    Petersburg,
    /// Istanbul (Muir Glacier follows Istanbul rules).
    Istanbul,
    /// Berlin.
    Berlin,
    /// London (Arrow and Gray Glacier follow London rules).
    London,
    /// Paris, the Merge.
    Paris,
    /// Shanghai.
    Shanghai,
    /// Cancun.
    Cancun,
    /// Prague.
    Prague,
    /// Osaka.
    Osaka,
}

impl Fork {
    /// The revm spec that executes this fork.
    pub fn spec(self) -> SpecId {
        match self {
            Fork::Frontier => SpecId::FRONTIER,
            Fork::Homestead => SpecId::HOMESTEAD,
            Fork::Tangerine => SpecId::TANGERINE,
            Fork::SpuriousDragon => SpecId::SPURIOUS_DRAGON,
            Fork::Byzantium => SpecId::BYZANTIUM,
            Fork::Petersburg => SpecId::PETERSBURG,
            Fork::Istanbul => SpecId::ISTANBUL,
            Fork::Berlin => SpecId::BERLIN,
            Fork::London => SpecId::LONDON,
            Fork::Paris => SpecId::MERGE,
            Fork::Shanghai => SpecId::SHANGHAI,
            Fork::Cancun => SpecId::CANCUN,
            Fork::Prague => SpecId::PRAGUE,
            Fork::Osaka => SpecId::OSAKA,
        }
    }

    /// Display name.
    pub fn name(self) -> &'static str {
        match self {
            Fork::Frontier => "Frontier",
            Fork::Homestead => "Homestead",
            Fork::Tangerine => "Tangerine",
            Fork::SpuriousDragon => "SpuriousDragon",
            Fork::Byzantium => "Byzantium",
            Fork::Petersburg => "Petersburg",
            Fork::Istanbul => "Istanbul",
            Fork::Berlin => "Berlin",
            Fork::London => "London",
            Fork::Paris => "Paris",
            Fork::Shanghai => "Shanghai",
            Fork::Cancun => "Cancun",
            Fork::Prague => "Prague",
            Fork::Osaka => "Osaka",
        }
    }

    /// Parses the fork names used by the official tests and geth configs.
    /// Returns `None` for names PEL does not execute (e.g. `Constantinople` with
    /// EIP-1283, which mainnet never ran, or transition pseudo-forks).
    pub fn from_name(name: &str) -> Option<Fork> {
        Some(match name {
            "Frontier" => Fork::Frontier,
            "Homestead" => Fork::Homestead,
            "EIP150" | "Tangerine" | "TangerineWhistle" => Fork::Tangerine,
            "EIP158" | "SpuriousDragon" => Fork::SpuriousDragon,
            "Byzantium" => Fork::Byzantium,
            "ConstantinopleFix" | "Petersburg" => Fork::Petersburg,
            "Istanbul" | "MuirGlacier" => Fork::Istanbul,
            "Berlin" => Fork::Berlin,
            "London" | "ArrowGlacier" | "GrayGlacier" => Fork::London,
            "Merge" | "Paris" => Fork::Paris,
            "Shanghai" => Fork::Shanghai,
            "Cancun" => Fork::Cancun,
            "Prague" => Fork::Prague,
            "Osaka" => Fork::Osaka,
            _ => return None,
        })
    }

    /// Every fork, oldest first.
    pub const ALL: [Fork; 14] = [
        Fork::Frontier,
        Fork::Homestead,
        Fork::Tangerine,
        Fork::SpuriousDragon,
        Fork::Byzantium,
        Fork::Petersburg,
        Fork::Istanbul,
        Fork::Berlin,
        Fork::London,
        Fork::Paris,
        Fork::Shanghai,
        Fork::Cancun,
        Fork::Prague,
        Fork::Osaka,
    ];
}

impl std::fmt::Display for Fork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Blob parameters in force from a timestamp on (EIP-4844, EIP-7691, EIP-7892 BPO forks).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobParams {
    /// First timestamp these parameters apply to.
    pub timestamp: u64,
    /// Blob base fee update fraction.
    pub update_fraction: u64,
    /// Most blobs one block may carry.
    pub max_blobs_per_block: u64,
}

/// Everything execution needs to know about a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainConfig {
    /// EIP-155 chain id.
    pub chain_id: u64,
    /// Activation block of each number-scheduled fork (Frontier..Paris); a fork
    /// missing here never activates by number.
    pub blocks: Vec<(Fork, u64)>,
    /// Activation timestamp of each time-scheduled fork (Shanghai on).
    pub times: Vec<(Fork, u64)>,
    /// Blob parameter schedule, sorted by timestamp.
    pub blob_schedule: Vec<BlobParams>,
    /// The deposit contract whose logs are EIP-6110 deposit requests (Prague on).
    #[serde(default = "mainnet_deposit_contract")]
    pub deposit_contract: Address,
}

/// Mainnet's deposit contract (also the official tests' chains).
fn mainnet_deposit_contract() -> Address {
    alloy_eips::eip6110::MAINNET_DEPOSIT_CONTRACT_ADDRESS
}

impl ChainConfig {
    /// Ethereum mainnet.
    pub fn mainnet() -> Self {
        Self {
            chain_id: 1,
            blocks: vec![
                (Fork::Frontier, 0),
                (Fork::Homestead, 1_150_000),
                (Fork::Tangerine, 2_463_000),
                (Fork::SpuriousDragon, 2_675_000),
                (Fork::Byzantium, 4_370_000),
                (Fork::Petersburg, 7_280_000),
                (Fork::Istanbul, 9_069_000),
                (Fork::Berlin, 12_244_000),
                (Fork::London, 12_965_000),
                (Fork::Paris, 15_537_394),
            ],
            times: vec![
                (Fork::Shanghai, 1_681_338_455),
                (Fork::Cancun, 1_710_338_135),
                (Fork::Prague, 1_746_612_311),
                (Fork::Osaka, 1_764_798_551),
            ],
            blob_schedule: vec![
                BlobParams {
                    timestamp: 1_710_338_135,
                    update_fraction: 3_338_477,
                    max_blobs_per_block: 6,
                },
                BlobParams {
                    timestamp: 1_746_612_311,
                    update_fraction: 5_007_716,
                    max_blobs_per_block: 9,
                },
                // BPO1 and BPO2 (EIP-7892).
                BlobParams {
                    timestamp: 1_765_290_071,
                    update_fraction: 8_346_193,
                    max_blobs_per_block: 15,
                },
                BlobParams {
                    timestamp: 1_767_747_671,
                    update_fraction: 11_684_671,
                    max_blobs_per_block: 21,
                },
            ],
            deposit_contract: mainnet_deposit_contract(),
        }
    }

    /// A chain with every fork up to and including `fork` active from genesis.
    pub fn single_fork(chain_id: u64, fork: Fork) -> Self {
        let mut blocks = Vec::new();
        let mut times = Vec::new();
        for f in Fork::ALL.into_iter().filter(|f| *f <= fork) {
            if f <= Fork::Paris {
                blocks.push((f, 0));
            } else {
                times.push((f, 0));
            }
        }
        let fraction = if fork >= Fork::Prague {
            5_007_716
        } else {
            3_338_477
        };
        let max = if fork >= Fork::Prague { 9 } else { 6 };
        Self {
            chain_id,
            blocks,
            times,
            blob_schedule: vec![BlobParams {
                timestamp: 0,
                update_fraction: fraction,
                max_blobs_per_block: max,
            }],
            deposit_contract: mainnet_deposit_contract(),
        }
    }

    /// The fork in force for a block: by number up to Paris, then by timestamp.
    pub fn fork_at(&self, number: u64, timestamp: u64) -> Fork {
        let mut fork = Fork::Frontier;
        for (f, at) in &self.blocks {
            if number >= *at {
                fork = fork.max(*f);
            }
        }
        for (f, at) in &self.times {
            if timestamp >= *at {
                fork = fork.max(*f);
            }
        }
        fork
    }

    /// The revm spec for a block.
    pub fn spec_at(&self, number: u64, timestamp: u64) -> SpecId {
        self.fork_at(number, timestamp).spec()
    }

    /// Blob parameters in force at `timestamp`, if blobs exist yet.
    pub fn blob_params_at(&self, timestamp: u64) -> Option<BlobParams> {
        self.blob_schedule
            .iter()
            .rev()
            .find(|p| timestamp >= p.timestamp)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainnet_schedule_by_number_then_time() {
        let c = ChainConfig::mainnet();
        assert_eq!(c.fork_at(0, 0), Fork::Frontier);
        assert_eq!(c.fork_at(1_149_999, 0), Fork::Frontier);
        assert_eq!(c.fork_at(1_150_000, 0), Fork::Homestead);
        assert_eq!(c.fork_at(2_675_000, 0), Fork::SpuriousDragon);
        assert_eq!(c.fork_at(4_369_999, 0), Fork::SpuriousDragon);
        assert_eq!(c.fork_at(4_370_000, 0), Fork::Byzantium);
        assert_eq!(c.fork_at(7_279_999, 0), Fork::Byzantium);
        assert_eq!(c.fork_at(7_280_000, 0), Fork::Petersburg);
        assert_eq!(c.fork_at(9_200_000, 0), Fork::Istanbul);
        assert_eq!(c.fork_at(12_243_999, 0), Fork::Istanbul);
        assert_eq!(c.fork_at(12_244_000, 0), Fork::Berlin);
        assert_eq!(c.fork_at(15_537_393, 1_663_224_162), Fork::London);
        assert_eq!(c.fork_at(15_537_394, 1_663_224_179), Fork::Paris);
        // Block 17034869 is the last Paris block; 17034870 the first Shanghai one.
        assert_eq!(c.fork_at(17_034_869, 1_681_338_443), Fork::Paris);
        assert_eq!(c.fork_at(17_034_870, 1_681_338_455), Fork::Shanghai);
        assert_eq!(c.fork_at(19_426_587, 1_710_338_135), Fork::Cancun);
        assert_eq!(c.fork_at(22_431_084, 1_746_612_311), Fork::Prague);
        assert_eq!(c.fork_at(23_935_694, 1_764_798_551), Fork::Osaka);
        assert_eq!(c.spec_at(19_426_587, 1_710_338_135), SpecId::CANCUN);
    }

    #[test]
    fn blob_params_follow_schedule() {
        let c = ChainConfig::mainnet();
        assert!(c.blob_params_at(1_710_338_134).is_none());
        assert_eq!(
            c.blob_params_at(1_710_338_135).unwrap().update_fraction,
            3_338_477
        );
        assert_eq!(
            c.blob_params_at(1_746_612_311).unwrap().update_fraction,
            5_007_716
        );
    }

    #[test]
    fn fork_names_round_trip() {
        for f in Fork::ALL {
            assert_eq!(Fork::from_name(f.name()), Some(f));
        }
        assert_eq!(Fork::from_name("ConstantinopleFix"), Some(Fork::Petersburg));
        assert_eq!(Fork::from_name("EIP158"), Some(Fork::SpuriousDragon));
        assert_eq!(Fork::from_name("Constantinople"), None);
        let single = ChainConfig::single_fork(1, Fork::Cancun);
        assert_eq!(single.fork_at(0, 0), Fork::Cancun);
    }
}
