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

/// The encoded size of `value`, without building the encoding.
pub(crate) fn encoded_len<T: Serialize + ?Sized>(value: &T) -> Result<usize> {
    struct Counter(usize);
    impl bincode::enc::write::Writer for Counter {
        fn write(&mut self, bytes: &[u8]) -> Result<(), bincode::error::EncodeError> {
            self.0 += bytes.len();
            Ok(())
        }
    }
    let mut counter = Counter(0);
    bincode::serde::encode_into_writer(value, &mut counter, bincode::config::standard())
        .map_err(|e| Error::Storage(format!("encode: {e}")))?;
    Ok(counter.0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::{Command, PutRequest};

    #[test]
    fn encoded_len_matches_encoding_and_decode_rejects_garbage() {
        let command = Command::Put(PutRequest {
            key: b"key".to_vec(),
            value: vec![9; 300],
            ..PutRequest::default()
        });
        let bytes = encode(&command).expect("encode");
        assert_eq!(encoded_len(&command).expect("len"), bytes.len());
        assert_eq!(decode::<Command>(&bytes).expect("decode"), command);
        assert!(matches!(
            decode::<Command>(&bytes[..bytes.len() - 1]),
            Err(Error::Corrupt(_))
        ));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(matches!(
            decode::<Command>(&trailing),
            Err(Error::Corrupt(_))
        ));
    }
}
