//! The one place bincode is called.
//!
//! bincode is pinned at 2.x and unmaintained (3.0.0 is a tombstone release), so every
//! encode and decode in the crate goes through these two functions; swapping the format
//! later means changing this file only.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::error::{Error, Result};

/// Encodes `value` in bincode's standard configuration.
pub(crate) fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| Error::Storage(format!("encode: {e}")))
}

/// Decodes bytes written by [`encode`]; bytes that do not decode are corruption.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T> {
    let (value, used) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|e| Error::Corrupt(format!("decode: {e}")))?;
    if used != bytes.len() {
        return Err(Error::Corrupt(format!(
            "decode: {} trailing bytes",
            bytes.len() - used
        )));
    }
    Ok(value)
}
