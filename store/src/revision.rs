//! Revisions and their on-disk encoding.
//!
//! A revision is big-endian on disk so that sled's lexicographic byte order is revision order:
//! a range scan over the event log walks history oldest first.

use crate::error::{Error, Result};

/// One write's position in history: `main` is the command's revision, `sub` its index
/// among the writes of that command (0 for a plain put or delete).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Revision {
    /// The command's revision, as clients see it.
    pub main: i64,
    /// The write's index inside its command (transactions, lease revocations).
    pub sub: i64,
}

/// Length of an encoded [`Revision`].
pub const REVISION_LEN: usize = 16;

impl Revision {
    /// A revision.
    pub fn new(main: i64, sub: i64) -> Revision {
        Revision { main, sub }
    }

    /// Big-endian bytes; revisions are never negative, so unsigned order is numeric order.
    pub fn to_bytes(self) -> [u8; REVISION_LEN] {
        let mut out = [0u8; REVISION_LEN];
        out[..8].copy_from_slice(&(self.main as u64).to_be_bytes());
        out[8..].copy_from_slice(&(self.sub as u64).to_be_bytes());
        out
    }

    /// Decodes [`Revision::to_bytes`]; anything else is corruption.
    pub fn from_bytes(bytes: &[u8]) -> Result<Revision> {
        if bytes.len() != REVISION_LEN {
            return Err(Error::Corrupt(format!(
                "revision of {} bytes, expected {REVISION_LEN}",
                bytes.len()
            )));
        }
        let mut main = [0u8; 8];
        let mut sub = [0u8; 8];
        main.copy_from_slice(&bytes[..8]);
        sub.copy_from_slice(&bytes[8..]);
        Ok(Revision {
            main: u64::from_be_bytes(main) as i64,
            sub: u64::from_be_bytes(sub) as i64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_order_is_revision_order() {
        let revs = [
            Revision::new(1, 0),
            Revision::new(1, 1),
            Revision::new(2, 0),
            Revision::new(256, 0),
            Revision::new(256, 300),
        ];
        for pair in revs.windows(2) {
            assert!(pair[0].to_bytes() < pair[1].to_bytes());
        }
        for rev in revs {
            assert_eq!(Revision::from_bytes(&rev.to_bytes()), Ok(rev));
        }
        assert!(Revision::from_bytes(&[1, 2, 3]).is_err());
    }
}
