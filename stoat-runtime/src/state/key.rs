//! Order-preserving key encodings: LMDB sorts keys by their bytes, so a store key's bytes must sort
//! like the key itself for range scans to mean what they say. Integers are big-endian (signed ones
//! with the sign bit flipped); strings and bytes are written as they are when they end the key, and
//! escaped and terminated when a tuple component follows them.

/// A type usable as a state store key.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a state store key",
    label = "not a store key",
    note = "store keys need an order-preserving encoding: strings, byte vectors, integers, bool, `()` and tuples of those"
)]
pub trait StoreKey:
    Sized + Clone + Eq + std::hash::Hash + Send + serde::Serialize + serde::de::DeserializeOwned + 'static
{
    /// Appends the key's bytes, as the last component of a key.
    fn encode_key(&self, out: &mut Vec<u8>);
    /// Appends the key's bytes, followed by other components (self-delimiting).
    fn encode_nested(&self, out: &mut Vec<u8>) {
        self.encode_key(out)
    }
    /// Reads a key that ends at the end of `bytes`.
    fn decode_key(bytes: &[u8]) -> Result<Self, String>;
    /// Reads a self-delimited key from the front of `bytes`, advancing it.
    fn decode_nested(bytes: &mut &[u8]) -> Result<Self, String>;
    /// The bytes a prefix scan given as JSON looks for (the HTTP store endpoints): text for
    /// `String` keys, bytes for `Vec<u8>` keys, the first component of a tuple key. Other keys
    /// have no prefixes.
    fn prefix_from_json(_prefix: &serde_json::Value) -> Result<Vec<u8>, String> {
        Err("prefix scans need string, byte or tuple keys".into())
    }
}

/// A key's bytes as a store writes them (also the order in which per-lane indexes keep keys).
pub(crate) fn key_bytes<K: StoreKey>(key: &K) -> Vec<u8> {
    let mut out = Vec::new();
    key.encode_key(&mut out);
    out
}

fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Result<&'a [u8], String> {
    if bytes.len() < n {
        return Err(format!("key is truncated: need {n} bytes, have {}", bytes.len()));
    }
    let (head, tail) = bytes.split_at(n);
    *bytes = tail;
    Ok(head)
}

fn exact<T: StoreKey>(bytes: &[u8]) -> Result<T, String> {
    let mut rest = bytes;
    let v = T::decode_nested(&mut rest)?;
    if rest.is_empty() {
        Ok(v)
    } else {
        Err(format!("{} trailing bytes after key", rest.len()))
    }
}

macro_rules! unsigned_key {
    ($($t:ty)*) => {$(
        impl StoreKey for $t {
            fn encode_key(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            fn decode_key(bytes: &[u8]) -> Result<Self, String> {
                exact(bytes)
            }
            fn decode_nested(bytes: &mut &[u8]) -> Result<Self, String> {
                let raw = take(bytes, std::mem::size_of::<$t>())?;
                let mut buf = [0u8; std::mem::size_of::<$t>()];
                buf.copy_from_slice(raw);
                Ok(<$t>::from_be_bytes(buf))
            }
        }
    )*};
}
unsigned_key!(u8 u16 u32 u64 u128);

macro_rules! signed_key {
    ($($t:ty => $u:ty),*) => {$(
        impl StoreKey for $t {
            fn encode_key(&self, out: &mut Vec<u8>) {
                let flipped = (*self as $u) ^ (1 << (<$u>::BITS - 1));
                out.extend_from_slice(&flipped.to_be_bytes());
            }
            fn decode_key(bytes: &[u8]) -> Result<Self, String> {
                exact(bytes)
            }
            fn decode_nested(bytes: &mut &[u8]) -> Result<Self, String> {
                let u = <$u as StoreKey>::decode_nested(bytes)?;
                Ok((u ^ (1 << (<$u>::BITS - 1))) as $t)
            }
        }
    )*};
}
signed_key!(i8 => u8, i16 => u16, i32 => u32, i64 => u64, i128 => u128);

impl StoreKey for bool {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, String> {
        exact(bytes)
    }
    fn decode_nested(bytes: &mut &[u8]) -> Result<Self, String> {
        match take(bytes, 1)?[0] {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("invalid bool byte {b}")),
        }
    }
}

impl StoreKey for () {
    fn encode_key(&self, _: &mut Vec<u8>) {}
    fn decode_key(bytes: &[u8]) -> Result<Self, String> {
        exact(bytes)
    }
    fn decode_nested(_: &mut &[u8]) -> Result<Self, String> {
        Ok(())
    }
}

/// Escapes 0x00 as 0x00 0xFF and terminates with 0x00 0x01, which keeps byte order.
fn encode_escaped(raw: &[u8], out: &mut Vec<u8>) {
    for &b in raw {
        out.push(b);
        if b == 0 {
            out.push(0xff);
        }
    }
    out.extend_from_slice(&[0, 1]);
}

fn decode_escaped(bytes: &mut &[u8]) -> Result<Vec<u8>, String> {
    let mut raw = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == 0 {
            match bytes.get(i + 1) {
                Some(0xff) => {
                    raw.push(0);
                    i += 2;
                    continue;
                }
                Some(1) => {
                    *bytes = &bytes[i + 2..];
                    return Ok(raw);
                }
                _ => return Err("invalid escape in key".into()),
            }
        }
        raw.push(b);
        i += 1;
    }
    Err("unterminated key component".into())
}

impl StoreKey for Vec<u8> {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn encode_nested(&self, out: &mut Vec<u8>) {
        encode_escaped(self, out)
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, String> {
        Ok(bytes.to_vec())
    }
    fn decode_nested(bytes: &mut &[u8]) -> Result<Self, String> {
        decode_escaped(bytes)
    }
    fn prefix_from_json(prefix: &serde_json::Value) -> Result<Vec<u8>, String> {
        serde_json::from_value(prefix.clone())
            .map_err(|e| format!("a byte-key prefix is an array of bytes: {e}"))
    }
}

impl StoreKey for String {
    fn encode_key(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn encode_nested(&self, out: &mut Vec<u8>) {
        encode_escaped(self.as_bytes(), out)
    }
    fn decode_key(bytes: &[u8]) -> Result<Self, String> {
        String::from_utf8(bytes.to_vec()).map_err(|e| e.to_string())
    }
    fn decode_nested(bytes: &mut &[u8]) -> Result<Self, String> {
        String::from_utf8(decode_escaped(bytes)?).map_err(|e| e.to_string())
    }
    fn prefix_from_json(prefix: &serde_json::Value) -> Result<Vec<u8>, String> {
        match prefix {
            serde_json::Value::String(text) => Ok(text.as_bytes().to_vec()),
            other => Err(format!("a string-key prefix is a string, not {other}")),
        }
    }
}

/// The first type of a tuple key's components.
macro_rules! tuple_first {
    ($first:ident $($rest:ident)*) => {
        $first
    };
}

/// A tuple key's prefix: its first component, given as JSON.
fn first_component<F: serde::de::DeserializeOwned>(
    prefix: &serde_json::Value,
    encode: impl FnOnce(&F) -> Vec<u8>,
) -> Result<Vec<u8>, String> {
    let first: F = serde_json::from_value(prefix.clone())
        .map_err(|e| format!("a tuple-key prefix is the key's first component: {e}"))?;
    Ok(encode(&first))
}

macro_rules! tuple_key {
    ($($name:ident)+ ; $last:ident) => {
        impl<$($name: StoreKey,)+ $last: StoreKey> StoreKey for ($($name,)+ $last,) {
            #[allow(non_snake_case)]
            fn encode_key(&self, out: &mut Vec<u8>) {
                let ($($name,)+ $last,) = self;
                $($name.encode_nested(out);)+
                $last.encode_key(out);
            }
            #[allow(non_snake_case)]
            fn encode_nested(&self, out: &mut Vec<u8>) {
                let ($($name,)+ $last,) = self;
                $($name.encode_nested(out);)+
                $last.encode_nested(out);
            }
            fn decode_key(bytes: &[u8]) -> Result<Self, String> {
                let mut rest = bytes;
                Ok(($($name::decode_nested(&mut rest)?,)+ $last::decode_key(rest)?,))
            }
            fn prefix_from_json(prefix: &serde_json::Value) -> Result<Vec<u8>, String> {
                first_component(prefix, |first: &tuple_first!($($name)+)| {
                    let mut out = Vec::new();
                    first.encode_nested(&mut out);
                    out
                })
            }
            fn decode_nested(bytes: &mut &[u8]) -> Result<Self, String> {
                Ok(($($name::decode_nested(bytes)?,)+ $last::decode_nested(bytes)?,))
            }
        }
    };
}
tuple_key!(A; B);
tuple_key!(A B; C);
tuple_key!(A B C; D);

/// A borrowed form of a store key that can be looked up without building the owned key:
/// `str` for `String` keys, `[u8]` for `Vec<u8>` keys, and every [`StoreKey`] itself.
pub trait KeyRef {
    /// Appends the same bytes the owned key's [`StoreKey::encode_key`] writes.
    fn encode_key_ref(&self, out: &mut Vec<u8>);
}

impl<T: StoreKey> KeyRef for T {
    fn encode_key_ref(&self, out: &mut Vec<u8>) {
        self.encode_key(out)
    }
}

impl KeyRef for str {
    fn encode_key_ref(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl KeyRef for [u8] {
    fn encode_key_ref(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

/// A prefix of store keys of type `K`, for [`Table::prefix`](super::Table::prefix): a `str` for
/// `String` keys, a byte slice for `Vec<u8>` keys, the first component of a tuple key.
pub trait KeyPrefix<K> {
    /// Appends the prefix's bytes.
    fn encode_prefix(&self, out: &mut Vec<u8>);
}

impl KeyPrefix<String> for str {
    fn encode_prefix(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
}

impl KeyPrefix<Vec<u8>> for [u8] {
    fn encode_prefix(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
}

impl<A: StoreKey, B: StoreKey> KeyPrefix<(A, B)> for A {
    fn encode_prefix(&self, out: &mut Vec<u8>) {
        self.encode_nested(out);
    }
}

impl<A: StoreKey, B: StoreKey, C: StoreKey> KeyPrefix<(A, B, C)> for A {
    fn encode_prefix(&self, out: &mut Vec<u8>) {
        self.encode_nested(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc<K: StoreKey>(k: &K) -> Vec<u8> {
        let mut v = Vec::new();
        k.encode_key(&mut v);
        v
    }

    #[test]
    fn encodings_sort_like_the_keys() {
        let ints = [-300i64, -1, 0, 1, 2, 255, 256, i64::MAX, i64::MIN];
        let mut by_value = ints.to_vec();
        by_value.sort();
        let mut by_bytes = ints.to_vec();
        by_bytes.sort_by_key(enc);
        assert_eq!(by_value, by_bytes);

        let pairs = [
            ("a".to_string(), 2u32),
            ("a\0b".to_string(), 1),
            ("".to_string(), 9),
            ("ab".to_string(), 0),
            ("a".to_string(), 1),
        ];
        let mut by_value = pairs.to_vec();
        by_value.sort();
        let mut by_bytes = pairs.to_vec();
        by_bytes.sort_by_key(enc);
        assert_eq!(by_value, by_bytes);
    }

    #[test]
    fn keys_round_trip() {
        let k = ("x\0y".to_string(), -5i32, vec![0u8, 1, 0]);
        assert_eq!(<(String, i32, Vec<u8>)>::decode_key(&enc(&k)), Ok(k));
        assert_eq!(String::decode_key(&enc(&"grüße".to_string())), Ok("grüße".to_string()));
        assert!(u32::decode_key(&[1, 2]).is_err());
    }
}
