//! `Option<T>`: a null key or value is `None`, anything else goes through `T`'s codec. A stream
//! of `Option<V>` sees tombstones; writing `None` writes one.

use super::{Codec, DefaultCodec};
use crate::error::{DecodeError, EncodeError};

/// The codec of `Option<T>` over `T`'s codec `C`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Nullable<C>(pub C);

impl<T: 'static, C: Codec<T>> Codec<Option<T>> for Nullable<C> {
    fn name(&self) -> &'static str {
        self.0.name()
    }
    fn encode(&self, value: &Option<T>) -> Result<Option<Vec<u8>>, EncodeError> {
        match value {
            Some(v) => self.0.encode(v),
            None => Ok(None),
        }
    }
    fn decode(&self, bytes: Option<&[u8]>) -> Result<Option<T>, DecodeError> {
        match bytes {
            Some(b) => self.0.decode(Some(b)).map(Some),
            None => Ok(None),
        }
    }
}

impl<T: DefaultCodec + 'static> DefaultCodec for Option<T> {
    type Codec = Nullable<T::Codec>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::Utf8;

    #[test]
    fn null_is_none_and_none_is_null() {
        let codec = Nullable(Utf8);
        assert_eq!(codec.decode(None).ok(), Some(None));
        assert_eq!(codec.decode(Some(b"x")).ok(), Some(Some("x".to_string())));
        assert_eq!(codec.encode(&None).ok(), Some(None));
        assert_eq!(codec.encode(&Some("y".to_string())).ok(), Some(Some(b"y".to_vec())));
        assert!(codec.decode(Some(&[0xff])).is_err(), "bad bytes are still an error");
    }
}
