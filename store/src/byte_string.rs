//! Serde for byte strings as bytes rather than as sequences of numbers:
//! `#[serde(with = "crate::byte_string")]` on a `Vec<u8>` field.
//!
//! serde treats a `Vec<u8>` as a sequence, so bincode encodes and decodes it one element at a
//! time, a call per byte; values and keys are most of what the Raft log, the peers' messages
//! and the keyspace carry. As bytes, bincode writes the same length and the same bytes in one
//! copy, so data stored or sent either way reads either way. Self-describing formats (JSON)
//! still write a sequence of numbers, and read one.

use serde::de::{self, SeqAccess};
use serde::{Deserializer, Serializer};

pub(crate) fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
    deserializer.deserialize_byte_buf(BytesVisitor)
}

struct BytesVisitor;

impl<'de> de::Visitor<'de> for BytesVisitor {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a byte string")
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
        Ok(bytes.to_vec())
    }

    fn visit_byte_buf<E: de::Error>(self, bytes: Vec<u8>) -> Result<Vec<u8>, E> {
        Ok(bytes)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        // The hint comes from the input: trust it only so far.
        let mut bytes = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(byte) = seq.next_element()? {
            bytes.push(byte);
        }
        Ok(bytes)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};

    use crate::codec;
    use crate::kv::KeyValue;

    /// `KeyValue` as it was encoded before its byte strings were bytes.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct AsSequences {
        key: Vec<u8>,
        create_revision: i64,
        mod_revision: i64,
        version: i64,
        value: Vec<u8>,
        lease: i64,
    }

    #[test]
    fn bincode_encodes_bytes_as_it_encoded_sequences() {
        let kv = KeyValue {
            key: b"/registry/pods/default/web-0".to_vec(),
            create_revision: 7,
            mod_revision: 300,
            version: 12,
            value: (0..=255).cycle().take(1000).collect(),
            lease: 1 << 40,
        };
        let old = AsSequences {
            key: kv.key.clone(),
            create_revision: kv.create_revision,
            mod_revision: kv.mod_revision,
            version: kv.version,
            value: kv.value.clone(),
            lease: kv.lease,
        };
        let encoded = codec::encode(&kv).unwrap();
        assert_eq!(encoded, codec::encode(&old).unwrap());
        assert_eq!(codec::decode::<AsSequences>(&encoded).unwrap(), old);
        assert_eq!(codec::decode::<KeyValue>(&encoded).unwrap(), kv);
    }

    #[test]
    fn json_keeps_byte_strings_as_arrays_of_numbers() {
        let kv = KeyValue {
            key: b"a".to_vec(),
            value: vec![0, 255],
            ..KeyValue::default()
        };
        let json = serde_json::to_string(&kv).unwrap();
        assert!(
            json.contains(r#""key":[97]"#) && json.contains(r#""value":[0,255]"#),
            "{json}"
        );
        assert_eq!(serde_json::from_str::<KeyValue>(&json).unwrap(), kv);
    }
}
