//! The plain codecs: UTF-8 strings, raw bytes, the unit (null) codec, and numbers and other
//! `FromStr + Display` types as text.

use std::fmt::Display;
use std::marker::PhantomData;
use std::str::FromStr;

use super::{null_error, Codec, DefaultCodec};
use crate::error::{DecodeError, EncodeError};

/// UTF-8 text as `String`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Utf8;

impl Codec<String> for Utf8 {
    fn name(&self) -> &'static str {
        "utf-8"
    }
    fn encode(&self, value: &String) -> Result<Option<Vec<u8>>, EncodeError> {
        Ok(Some(value.as_bytes().to_vec()))
    }
    fn decode(&self, bytes: Option<&[u8]>) -> Result<String, DecodeError> {
        let bytes = bytes.ok_or_else(|| null_error("utf-8"))?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => Err(DecodeError { codec: "utf-8", reason: e.to_string() }),
        }
    }
}

impl DefaultCodec for String {
    type Codec = Utf8;
}

/// Bytes as they are, as `Vec<u8>`.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawBytes;

impl Codec<Vec<u8>> for RawBytes {
    fn name(&self) -> &'static str {
        "bytes"
    }
    fn encode(&self, value: &Vec<u8>) -> Result<Option<Vec<u8>>, EncodeError> {
        Ok(Some(value.clone()))
    }
    fn decode(&self, bytes: Option<&[u8]>) -> Result<Vec<u8>, DecodeError> {
        bytes.map(<[u8]>::to_vec).ok_or_else(|| null_error("bytes"))
    }
}

impl DefaultCodec for Vec<u8> {
    type Codec = RawBytes;
}

/// `()`: writes a null and reads anything (a key or value the topology ignores).
#[derive(Clone, Copy, Debug, Default)]
pub struct Unit;

impl Codec<()> for Unit {
    fn name(&self) -> &'static str {
        "unit"
    }
    fn encode(&self, _: &()) -> Result<Option<Vec<u8>>, EncodeError> {
        Ok(None)
    }
    fn decode(&self, _: Option<&[u8]>) -> Result<(), DecodeError> {
        Ok(())
    }
}

impl DefaultCodec for () {
    type Codec = Unit;
}

/// A `FromStr + Display` value as UTF-8 text: numbers as decimal ASCII (`"42"`), `bool` as
/// `"true"`/`"false"`; readable with any console consumer.
#[derive(Debug)]
pub struct Text<T>(PhantomData<fn() -> T>);

impl<T> Default for Text<T> {
    fn default() -> Self {
        Text(PhantomData)
    }
}

impl<T> Text<T> {
    /// The codec.
    pub fn new() -> Self {
        Self::default()
    }
}

impl<T> Codec<T> for Text<T>
where
    T: FromStr + Display + 'static,
    T::Err: Display,
{
    fn name(&self) -> &'static str {
        "text"
    }
    fn encode(&self, value: &T) -> Result<Option<Vec<u8>>, EncodeError> {
        Ok(Some(value.to_string().into_bytes()))
    }
    fn decode(&self, bytes: Option<&[u8]>) -> Result<T, DecodeError> {
        let bytes = bytes.ok_or_else(|| null_error("text"))?;
        let text =
            std::str::from_utf8(bytes).map_err(|e| DecodeError { codec: "text", reason: e.to_string() })?;
        text.trim()
            .parse()
            .map_err(|e: T::Err| DecodeError { codec: "text", reason: format!("{e} (input {text:?})") })
    }
}

macro_rules! text_default {
    ($($t:ty)*) => {$(
        impl DefaultCodec for $t {
            type Codec = Text<$t>;
        }
    )*};
}
text_default!(char);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_rejects_invalid_bytes_and_nulls() {
        assert!(Utf8.decode(Some(&[0xff, 0xfe])).is_err());
        assert!(Utf8.decode(None).is_err());
        assert_eq!(Utf8.decode(Some("grüß".as_bytes())).ok().as_deref(), Some("grüß"));
    }

    #[test]
    fn text_round_trips_and_names_bad_input() {
        let c = Text::<u64>::new();
        let bytes = c.encode(&42).ok().flatten();
        assert_eq!(bytes.as_deref(), Some(&b"42"[..]));
        let err = c.decode(Some(b"4x2")).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("text") && err.contains("4x2"), "{err}");
    }
}
