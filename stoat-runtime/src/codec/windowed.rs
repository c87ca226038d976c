//! The encoding of windowed keys, as Kafka Streams' serializers write them. A time window: the
//! key's own bytes followed by the window's start as 8 big-endian bytes; the end is not written,
//! so reading one back needs the window size (`TimeWindowed::new(inner, size)`), as with Kafka
//! Streams' `TimeWindowedDeserializer`. A session: the key's bytes, then end and start.

use std::time::Duration;

use super::{Codec, DefaultCodec};
use crate::error::{DecodeError, EncodeError};
use crate::topology::{SessionWindowed, Window, Windowed};

/// The codec of [`Windowed`] keys: `inner`'s encoding of the key, then the window start.
#[derive(Clone, Debug, Default)]
pub struct TimeWindowed<C> {
    inner: C,
    /// The window size in ms, to decode the end (`None`: decoding is refused).
    size: Option<i64>,
}

impl<C> TimeWindowed<C> {
    /// A codec for windows of `size` (needed to decode; encoding does not use it).
    pub fn new(inner: C, size: Duration) -> Self {
        TimeWindowed { inner, size: Some(i64::try_from(size.as_millis()).unwrap_or(i64::MAX)) }
    }
}

impl<K, C: Codec<K>> Codec<Windowed<K>> for TimeWindowed<C> {
    fn name(&self) -> &'static str {
        "time-windowed"
    }
    fn encode(&self, value: &Windowed<K>) -> Result<Option<Vec<u8>>, EncodeError> {
        let mut bytes = self.inner.encode(&value.key)?.unwrap_or_default();
        bytes.extend_from_slice(&value.window.start.to_be_bytes());
        Ok(Some(bytes))
    }
    fn decode(&self, bytes: Option<&[u8]>) -> Result<Windowed<K>, DecodeError> {
        let fail = |reason: String| DecodeError { codec: "time-windowed", reason };
        let bytes = bytes.ok_or_else(|| fail("a windowed key cannot be null".into()))?;
        let size = self.size.ok_or_else(|| {
            fail("a time-windowed key does not carry its window's end: read it with `TimeWindowed::new(codec, size)`".into())
        })?;
        let split = bytes
            .len()
            .checked_sub(8)
            .ok_or_else(|| fail(format!("{} bytes are too few for a windowed key", bytes.len())))?;
        let (key, start) = bytes.split_at(split);
        let mut raw = [0u8; 8];
        raw.copy_from_slice(start);
        let start = i64::from_be_bytes(raw);
        let key = self.inner.decode(Some(key))?;
        Ok(Windowed { key, window: Window { start, end: start.saturating_add(size) } })
    }
}

impl<K: DefaultCodec> DefaultCodec for Windowed<K> {
    type Codec = TimeWindowed<K::Codec>;
}

/// The codec of [`SessionWindowed`] keys, as Kafka Streams' `SessionWindowedSerializer` writes
/// them: `inner`'s encoding of the key, then the session's end and start as 8 big-endian bytes
/// each.
#[derive(Clone, Debug, Default)]
pub struct SessionWindowedCodec<C> {
    inner: C,
}

impl<C> SessionWindowedCodec<C> {
    /// A codec for session keys whose keys `inner` encodes.
    pub fn new(inner: C) -> Self {
        SessionWindowedCodec { inner }
    }
}

impl<K, C: Codec<K>> Codec<SessionWindowed<K>> for SessionWindowedCodec<C> {
    fn name(&self) -> &'static str {
        "session-windowed"
    }
    fn encode(&self, value: &SessionWindowed<K>) -> Result<Option<Vec<u8>>, EncodeError> {
        let mut bytes = self.inner.encode(&value.key)?.unwrap_or_default();
        bytes.extend_from_slice(&value.window.end.to_be_bytes());
        bytes.extend_from_slice(&value.window.start.to_be_bytes());
        Ok(Some(bytes))
    }
    fn decode(&self, bytes: Option<&[u8]>) -> Result<SessionWindowed<K>, DecodeError> {
        let fail = |reason: String| DecodeError { codec: "session-windowed", reason };
        let bytes = bytes.ok_or_else(|| fail("a session key cannot be null".into()))?;
        let split = bytes
            .len()
            .checked_sub(16)
            .ok_or_else(|| fail(format!("{} bytes are too few for a session key", bytes.len())))?;
        let (key, times) = bytes.split_at(split);
        let (end, start) = times.split_at(8);
        let long = |b: &[u8]| {
            let mut raw = [0u8; 8];
            raw.copy_from_slice(b);
            i64::from_be_bytes(raw)
        };
        let key = self.inner.decode(Some(key))?;
        Ok(SessionWindowed { key, window: Window { start: long(start), end: long(end) } })
    }
}

impl<K: DefaultCodec> DefaultCodec for SessionWindowed<K> {
    type Codec = SessionWindowedCodec<K::Codec>;
}
