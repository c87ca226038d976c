//! The record types users see: [`Record`] (key, value, timestamp, headers) and [`KeyValue`], the
//! output of a re-keying operator.

/// Record headers: ordered `(name, bytes)` pairs, as in Kafka.
pub type Headers = Vec<(String, Vec<u8>)>;

/// A record with its key, value, timestamp (milliseconds since the Unix epoch) and headers.
///
/// An operator can take the whole record (`Record<K, V>` or `&Record<K, V>`) instead of its
/// value. It is not `Clone` on purpose: that keeps it apart from record values, so the compiler
/// can tell which an operator's parameter is (copy one with [`Record::duplicate`]).
#[derive(Debug, PartialEq, Eq, Default)]
pub struct Record<K, V> {
    /// The key.
    pub key: K,
    /// The value.
    pub value: V,
    /// Event time, milliseconds since the Unix epoch.
    pub timestamp: i64,
    /// Headers.
    pub headers: Headers,
}

impl<K, V> Record<K, V> {
    /// A record with timestamp 0 and no headers.
    pub fn new(key: K, value: V) -> Self {
        Record { key, value, timestamp: 0, headers: Headers::new() }
    }

    /// A copy of the record.
    pub fn duplicate(&self) -> Self
    where
        K: Clone,
        V: Clone,
    {
        Record {
            key: self.key.clone(),
            value: self.value.clone(),
            timestamp: self.timestamp,
            headers: self.headers.clone(),
        }
    }

    /// The same record with another timestamp.
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }
}

/// A key and a value. An operator that returns `KeyValue` (or a `Vec`/`Option`/iterator of it)
/// re-keys its output: each record is routed to the lane that owns its new key. It is not
/// `Clone` on purpose: that keeps it apart from record values, so the compiler reads
/// `Vec<KeyValue<K, V>>` (or an alias of it) as re-keying outputs, never as one value.
#[derive(Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct KeyValue<K, V> {
    /// The new key.
    pub key: K,
    /// The value.
    pub value: V,
}

impl<K, V> KeyValue<K, V> {
    /// A new pair.
    pub fn new(key: K, value: V) -> Self {
        KeyValue { key, value }
    }
}

impl<K, V> From<(K, V)> for KeyValue<K, V> {
    fn from((key, value): (K, V)) -> Self {
        KeyValue { key, value }
    }
}

/// Where a record inside the runtime came from: its source topic (by index), partition and
/// offset. Carried along every record so errors can name the input that caused them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Origin {
    pub source: u32,
    pub partition: u32,
    pub offset: u64,
    /// The stream time when the record was dispatched: the largest timestamp of the records
    /// dispatched so far (this one included) from the sources its records meet.
    pub stream_time: i64,
}

/// A record on its way through a lane.
#[derive(Debug)]
pub(crate) struct Envelope<K, V> {
    pub record: Record<K, V>,
    pub origin: Origin,
}

/// Wall-clock time in milliseconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
