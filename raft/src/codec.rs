//! The one wire and disk format: bincode 2 with its standard configuration, through serde.
//!
//! bincode is unmaintained (3.0.0 is a tombstone release), so every call goes through here: if
//! the format has to change, this file is the only one that does.

use serde::de::DeserializeOwned;
use serde::Serialize;

/// Bytes that could not be encoded or decoded.
#[derive(Debug, Clone, thiserror::Error)]
#[error("codec: {0}")]
pub struct CodecError(String);

/// Encodes `value` (log entries, vote, RPC bodies, snapshot files).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CodecError> {
    bincode::serde::encode_to_vec(value, bincode::config::standard())
        .map_err(|e| CodecError(e.to_string()))
}

/// Decodes what [`encode`] wrote; trailing bytes are an error, as they mean a format mismatch.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, CodecError> {
    let (value, read) = bincode::serde::decode_from_slice(bytes, bincode::config::standard())
        .map_err(|e| CodecError(e.to_string()))?;
    if read != bytes.len() {
        return Err(CodecError(format!("{} trailing bytes", bytes.len() - read)));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_trailing_bytes() {
        let vote = openraft::Vote::<u64>::new(3, 7);
        let bytes = encode(&vote).unwrap();
        assert_eq!(decode::<openraft::Vote<u64>>(&bytes).unwrap(), vote);
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode::<openraft::Vote<u64>>(&longer).is_err());
    }
}
