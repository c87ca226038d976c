//! Numbers and booleans as Kafka's Java serdes write them: fixed width, big-endian
//! (`Serdes.Short/Integer/Long/Float/Double`, `Serdes.Boolean`: one byte, 1 or 0). They are the
//! default codecs of those types, so a Kafka Streams or Java consumer reads stoat's numbers with
//! its own deserializers, and stoat reads theirs. Unsigned types use the bits of the signed type
//! of the same width; 128-bit ones (no Java serde) 16 bytes.

use std::marker::PhantomData;

use super::{null_error, Codec, DefaultCodec};
use crate::error::{DecodeError, EncodeError};

/// A type with a fixed-width big-endian form.
pub trait FixedWidth: Sized + Send + Sync + 'static {
    /// Bytes in the encoding.
    const WIDTH: usize;
    /// The Java serde with the same encoding, for messages.
    const JAVA: &'static str;
    /// Appends the encoding.
    fn put(&self, out: &mut Vec<u8>);
    /// Reads `Self` from exactly `WIDTH` bytes.
    fn get(bytes: &[u8]) -> Option<Self>;
}

macro_rules! fixed_width {
    ($($t:ty => $java:literal),* $(,)?) => {$(
        impl FixedWidth for $t {
            const WIDTH: usize = std::mem::size_of::<$t>();
            const JAVA: &'static str = $java;
            fn put(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(&self.to_be_bytes());
            }
            fn get(bytes: &[u8]) -> Option<Self> {
                bytes.try_into().ok().map(<$t>::from_be_bytes)
            }
        }
        impl DefaultCodec for $t {
            type Codec = Binary<$t>;
        }
    )*};
}

fixed_width!(
    i16 => "Serdes.Short()", u16 => "Serdes.Short()",
    i32 => "Serdes.Integer()", u32 => "Serdes.Integer()",
    i64 => "Serdes.Long()", u64 => "Serdes.Long()",
    f32 => "Serdes.Float()", f64 => "Serdes.Double()",
    i8 => "one byte", u8 => "one byte",
    i128 => "16 bytes", u128 => "16 bytes",
    isize => "Serdes.Long() (on 64-bit targets)", usize => "Serdes.Long() (on 64-bit targets)",
);

impl FixedWidth for bool {
    const WIDTH: usize = 1;
    const JAVA: &'static str = "Serdes.Boolean()";
    fn put(&self, out: &mut Vec<u8>) {
        out.push(u8::from(*self));
    }
    fn get(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [0] => Some(false),
            [1] => Some(true),
            _ => None,
        }
    }
}

impl DefaultCodec for bool {
    type Codec = Binary<bool>;
}

/// The fixed-width big-endian codec of Kafka's Java serdes (see the module doc). For decimal
/// text, name the [`Text`](super::Text) codec instead.
#[derive(Debug)]
pub struct Binary<T>(PhantomData<fn() -> T>);

impl<T> Default for Binary<T> {
    fn default() -> Self {
        Binary(PhantomData)
    }
}

impl<T> Binary<T> {
    /// The codec.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T: FixedWidth> Codec<T> for Binary<T> {
    fn name(&self) -> &'static str {
        "binary"
    }
    fn encode(&self, value: &T) -> Result<Option<Vec<u8>>, EncodeError> {
        let mut out = Vec::with_capacity(T::WIDTH);
        value.put(&mut out);
        Ok(Some(out))
    }
    fn decode(&self, bytes: Option<&[u8]>) -> Result<T, DecodeError> {
        let bytes = bytes.ok_or_else(|| null_error("binary"))?;
        T::get(bytes).ok_or_else(|| {
            let mut reason = format!(
                "expected {} bytes as {} writes a `{}`, found {}",
                T::WIDTH,
                T::JAVA,
                std::any::type_name::<T>(),
                bytes.len()
            );
            if let Ok(text) = std::str::from_utf8(bytes) {
                if !text.is_empty() && text.trim().chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c))
                {
                    reason.push_str(&format!(
                        " (the bytes read as the text {text:?}: for decimal text, name the `Text` codec)"
                    ));
                }
            }
            DecodeError { codec: "binary", reason }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_big_endian_of_their_width() {
        let long = Binary::<i64>::new();
        assert_eq!(long.encode(&258).ok().flatten(), Some(vec![0, 0, 0, 0, 0, 0, 1, 2]));
        assert_eq!(long.decode(Some(&[0, 0, 0, 0, 0, 0, 1, 2])).ok(), Some(258));
        assert_eq!(Binary::<i32>::new().encode(&-1).ok().flatten(), Some(vec![0xff; 4]));
        assert_eq!(Binary::<u64>::new().decode(Some(&[0xff; 8])).ok(), Some(u64::MAX));
        assert_eq!(Binary::<f64>::new().encode(&1.5).ok().flatten(), Some(1.5f64.to_be_bytes().to_vec()));
        assert_eq!(Binary::<bool>::new().decode(Some(&[1])).ok(), Some(true));
        assert!(Binary::<bool>::new().decode(Some(&[2])).is_err());
    }

    #[test]
    fn a_wrong_width_names_the_java_serde_and_suggests_text_for_decimal_input() {
        let err = Binary::<u64>::new().decode(Some(b"42")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("8 bytes") && err.contains("Serdes.Long()") && err.contains("`Text`"), "{err}");
    }
}
