// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

/// @title Token
/// @notice Minimal ERC-20 used as a synthetic benchmark workload for PEL.
/// @dev `mint` has no access control on purpose: this is a benchmark token.
///      Storage layout is relied upon by the Rust benches (see README.md),
///      so do not reorder the state variables.
contract Token {
    mapping(address => uint256) public balanceOf;                      // slot 0
    mapping(address => mapping(address => uint256)) public allowance;  // slot 1
    uint256 public totalSupply;                                        // slot 2

    event Transfer(address indexed from, address indexed to, uint256 value);
    event Approval(address indexed owner, address indexed spender, uint256 value);

    constructor() {}

    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    function approve(address spender, uint256 amount) external returns (bool) {
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            require(allowed >= amount, "Token: allowance too low");
            unchecked {
                allowance[from][msg.sender] = allowed - amount;
            }
        }
        _move(from, to, amount);
        return true;
    }

    function mint(address to, uint256 amount) external {
        totalSupply += amount;
        unchecked {
            // Cannot overflow: the sum of balances never exceeds totalSupply.
            balanceOf[to] += amount;
        }
        emit Transfer(address(0), to, amount);
    }

    function _move(address from, address to, uint256 amount) private {
        uint256 fromBal = balanceOf[from];
        require(fromBal >= amount, "Token: balance too low");
        unchecked {
            balanceOf[from] = fromBal - amount;
            balanceOf[to] += amount;
        }
        emit Transfer(from, to, amount);
    }
}
