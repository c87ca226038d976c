//! How store keys lie in LMDB: behind one tag byte. LMDB refuses empty keys, while an empty key
//! is an ordinary Kafka key (`""`, no bytes, the unit key `()`); with the tag every key is at least
//! one byte, and keys sort exactly as their encodings do. The tag is added and removed at the
//! LMDB boundary only ([`Tagged`], the key codec of every store's database): changelogs and
//! everything above LMDB see the plain encodings.

use std::borrow::Cow;

use heed::types::Bytes;
use heed::{BoxedError, BytesDecode, BytesEncode, Database};

/// The byte in front of every store key.
pub(crate) const TAG: u8 = 0;

/// The marker, in the state directory's metadata, of stores whose keys are tagged.
pub(crate) const LAYOUT_KEY: &[u8] = b"key-layout";
pub(crate) const LAYOUT: &[u8] = b"tagged-1";

/// A store's database: tagged keys, raw values.
pub(crate) type StoreDb = Database<Tagged, Bytes>;

/// The key codec that adds and removes the tag.
pub(crate) enum Tagged {}

impl<'a> BytesEncode<'a> for Tagged {
    type EItem = [u8];

    fn bytes_encode(item: &'a [u8]) -> Result<Cow<'a, [u8]>, BoxedError> {
        let mut tagged = Vec::with_capacity(item.len() + 1);
        tagged.push(TAG);
        tagged.extend_from_slice(item);
        Ok(Cow::Owned(tagged))
    }
}

impl<'a> BytesDecode<'a> for Tagged {
    type DItem = &'a [u8];

    fn bytes_decode(bytes: &'a [u8]) -> Result<&'a [u8], BoxedError> {
        match bytes.split_first() {
            Some((&TAG, key)) => Ok(key),
            _ => Err("a store key without its tag byte".into()),
        }
    }
}

/// `key` with its tag, in `out` (cleared first): for lookups that reuse a buffer.
pub(crate) fn tag_into(out: &mut Vec<u8>, encode: impl FnOnce(&mut Vec<u8>)) {
    out.clear();
    out.push(TAG);
    encode(out);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_keep_the_order_and_make_empty_keys_storable() {
        let keys: [&[u8]; 4] = [b"", b"\0", b"a", b"ab"];
        let tagged: Vec<Vec<u8>> =
            keys.iter().map(|k| Tagged::bytes_encode(k).map(Cow::into_owned).unwrap_or_default()).collect();
        assert!(tagged.iter().all(|t| !t.is_empty()));
        assert!(tagged.windows(2).all(|w| w[0] < w[1]), "{tagged:?}");
        for (k, t) in keys.iter().zip(&tagged) {
            assert_eq!(Tagged::bytes_decode(t).ok(), Some(*k));
        }
        assert!(Tagged::bytes_decode(b"").is_err());
        assert!(Tagged::bytes_decode(b"\x01a").is_err(), "an untagged key is refused");
    }
}
