//! JSON-RPC error objects with the standard codes: -32602 invalid params,
//! -32000 server errors (rejected transactions, as geth), -32001 resource not
//! found, -32005 limit exceeded, 3 execution reverted (with the revert data).

use alloy_primitives::Bytes;
use jsonrpsee::types::ErrorObjectOwned;

/// Result of an RPC method.
pub type RpcResult<T> = Result<T, ErrorObjectOwned>;

/// -32602: the parameters are wrong.
pub fn invalid_params(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32602, message.into(), None::<()>)
}

/// -32000: the node refused or failed.
pub fn server(message: impl std::fmt::Display) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32000, message.to_string(), None::<()>)
}

/// -32001: the block, transaction or filter does not exist.
pub fn not_found(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32001, message.into(), None::<()>)
}

/// -32005: a configured limit was exceeded.
pub fn limit(message: impl Into<String>) -> ErrorObjectOwned {
    ErrorObjectOwned::owned(-32005, message.into(), None::<()>)
}

/// 3: execution reverted, with the revert data (and the decoded reason when it
/// is an `Error(string)`).
pub fn reverted(output: &Bytes) -> ErrorObjectOwned {
    let message = match decode_revert_reason(output) {
        Some(reason) => format!("execution reverted: {reason}"),
        None => "execution reverted".to_string(),
    };
    ErrorObjectOwned::owned(3, message, Some(output.to_string()))
}

/// The string of an `Error(string)` revert, if that is what `output` holds.
pub fn decode_revert_reason(output: &[u8]) -> Option<String> {
    // selector 0x08c379a0, offset (32), length (32), bytes
    if output.len() < 68 || output[..4] != [0x08, 0xc3, 0x79, 0xa0] {
        return None;
    }
    let len_word = &output[36..68];
    if len_word[..24].iter().any(|b| *b != 0) {
        return None;
    }
    let len = u64::from_be_bytes(len_word[24..].try_into().ok()?) as usize;
    let bytes = output.get(68..68usize.checked_add(len)?)?;
    String::from_utf8(bytes.to_vec()).ok()
}

impl From<crate::backend::NodeError> for ErrorObjectOwned {
    fn from(e: crate::backend::NodeError) -> Self {
        ErrorObjectOwned::owned(e.code, e.message, None::<()>)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::hex;

    #[test]
    fn decodes_error_string() {
        let data = hex!("08c379a0000000000000000000000000000000000000000000000000000000000000002000000000000000000000000000000000000000000000000000000000000000046e6f706500000000000000000000000000000000000000000000000000000000");
        assert_eq!(decode_revert_reason(&data).as_deref(), Some("nope"));
        assert_eq!(decode_revert_reason(&data[..40]), None);
    }
}
