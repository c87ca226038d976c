//! Codecs turn keys and values into bytes at the edges of a topology (sources, sinks) and back.
//! Every type a topology reads or writes has a codec: chosen by type through [`DefaultCodec`], or
//! given explicitly (`Topology::stream_with`, `Stream::to_with`).

mod binary;
mod json;
mod nullable;
mod text;
mod windowed;

pub use binary::{Binary, FixedWidth};
pub use json::Json;
pub use nullable::Nullable;
pub use text::{RawBytes, Text, Unit, Utf8};
pub use windowed::{SessionWindowedCodec, TimeWindowed};

use crate::error::{DecodeError, EncodeError};

/// Encodes values of `T` to record bytes and decodes them back. `None` is a null key or value
/// (a Kafka record may have either).
pub trait Codec<T>: Send + Sync + 'static {
    /// A short name for error messages ("utf-8", "json", ...).
    fn name(&self) -> &'static str;
    /// Encodes `value`; `Ok(None)` writes a null.
    fn encode(&self, value: &T) -> Result<Option<Vec<u8>>, EncodeError>;
    /// Decodes `bytes` (`None` for a null).
    fn decode(&self, bytes: Option<&[u8]>) -> Result<T, DecodeError>;
}

impl<T: 'static> Codec<T> for Box<dyn Codec<T>> {
    fn name(&self) -> &'static str {
        (**self).name()
    }
    fn encode(&self, value: &T) -> Result<Option<Vec<u8>>, EncodeError> {
        (**self).encode(value)
    }
    fn decode(&self, bytes: Option<&[u8]>) -> Result<T, DecodeError> {
        (**self).decode(bytes)
    }
}

/// The codec a type gets when none is named, the encoding of Kafka's Java serdes: `String` is
/// UTF-8, `Vec<u8>` raw bytes, `()` a null, numbers and `bool` fixed-width big-endian
/// ([`Binary`]), `char` UTF-8, `Option<T>` a null or `T`'s encoding ([`Nullable`]). Other types name one, e.g. [`Json`]; decimal text is [`Text`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` has no default codec",
    label = "no default codec for `{Self}`",
    note = "declare the topic with codecs, e.g. `Topic::json(name)` for JSON values (keys keep their default codec) or `Topic::with_codecs`, and use it with `source` / `sink`; or name both codecs with `stream_with` / `to_with`"
)]
pub trait DefaultCodec: Sized {
    /// The codec.
    type Codec: Codec<Self> + Default;
}

pub(crate) fn null_error(codec: &'static str) -> DecodeError {
    DecodeError { codec, reason: "found a null where a value is required".into() }
}
