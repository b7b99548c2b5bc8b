//! PEL JSON-RPC: the jsonrpsee server and its namespaces land here with the devnet node.
