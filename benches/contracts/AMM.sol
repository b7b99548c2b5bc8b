// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Pair
/// @notice Minimal constant-product pool used as a synthetic benchmark workload
///         for PEL. It never calls other contracts: token balances are kept as
///         internal ledgers, so a swap touches only this contract's storage
///         (the reserves and the caller's two ledger entries).
/// @dev `seed`, `deposit0` and `deposit1` have no access control on purpose.
///      Storage layout is relied upon by the Rust benches (see README.md),
///      so do not reorder the state variables.
contract Pair {
    uint256 public reserve0;                      // slot 0
    uint256 public reserve1;                      // slot 1
    mapping(address => uint256) public balance0;  // slot 2
    mapping(address => uint256) public balance1;  // slot 3

    event Swap(address indexed who, uint256 amountIn, uint256 amountOut);

    function seed(uint256 r0, uint256 r1) external {
        reserve0 = r0;
        reserve1 = r1;
    }

    function deposit0(address who, uint256 amount) external {
        balance0[who] += amount;
    }

    function deposit1(address who, uint256 amount) external {
        balance1[who] += amount;
    }

    /// @notice Sell `amountIn` of token0 (from the caller's internal balance0)
    ///         for token1 (credited to the caller's internal balance1).
    function swap0For1(uint256 amountIn) external returns (uint256 out) {
        uint256 bal = balance0[msg.sender];
        require(bal >= amountIn, "Pair: balance0 too low");
        uint256 r0 = reserve0;
        uint256 r1 = reserve1;
        out = _quote(amountIn, r0, r1);
        require(out > 0, "Pair: zero output");
        unchecked {
            balance0[msg.sender] = bal - amountIn;
        }
        reserve0 = r0 + amountIn;
        reserve1 = r1 - out;
        balance1[msg.sender] += out;
        emit Swap(msg.sender, amountIn, out);
    }

    /// @notice Sell `amountIn` of token1 (from the caller's internal balance1)
    ///         for token0 (credited to the caller's internal balance0).
    function swap1For0(uint256 amountIn) external returns (uint256 out) {
        uint256 bal = balance1[msg.sender];
        require(bal >= amountIn, "Pair: balance1 too low");
        uint256 r0 = reserve0;
        uint256 r1 = reserve1;
        out = _quote(amountIn, r1, r0);
        require(out > 0, "Pair: zero output");
        unchecked {
            balance1[msg.sender] = bal - amountIn;
        }
        reserve1 = r1 + amountIn;
        reserve0 = r0 - out;
        balance0[msg.sender] += out;
        emit Swap(msg.sender, amountIn, out);
    }

    /// @dev out = amountIn*997*reserveOut / (reserveIn*1000 + amountIn*997)
    function _quote(uint256 amountIn, uint256 reserveIn, uint256 reserveOut)
        private
        pure
        returns (uint256)
    {
        uint256 inWithFee = amountIn * 997;
        return (inWithFee * reserveOut) / (reserveIn * 1000 + inWithFee);
    }
}
