//! [`Topic`]: a topic's name with its key and value types and codecs, declared once and used
//! wherever the topic is read or written: the topology's sources and sinks, the test driver's
//! inputs and outputs, the embedded log's producer. The types are then written in one place.

use std::borrow::Cow;
use std::marker::PhantomData;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::codec::{Codec, DefaultCodec, Json};

type MakeCodec<T> = fn() -> Box<dyn Codec<T>>;

fn default_codec<T: DefaultCodec + 'static>() -> Box<dyn Codec<T>>
where
    T::Codec: Codec<T>,
{
    Box::new(T::Codec::default())
}

fn json_codec<T: Serialize + DeserializeOwned + 'static>() -> Box<dyn Codec<T>> {
    Box::new(Json::<T>::new())
}

/// A topic whose records have keys `K` and values `V`, with the codecs that read and write them.
///
/// `const ORDERS: Topic<String, Order> = Topic::json("orders");` (UTF-8 keys, JSON values) is
/// read with `topology.source(&ORDERS)`, piped with `driver.input_topic(&ORDERS)`; see the book's
/// Testing chapter for a compiled example.
pub struct Topic<K, V> {
    name: Cow<'static, str>,
    key: MakeCodec<K>,
    value: MakeCodec<V>,
    _types: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for Topic<K, V> {
    fn clone(&self) -> Self {
        Topic { name: self.name.clone(), key: self.key, value: self.value, _types: PhantomData }
    }
}

impl<K, V> std::fmt::Debug for Topic<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("name", &self.name)
            .field("key", &std::any::type_name::<K>())
            .field("value", &std::any::type_name::<V>())
            .finish()
    }
}

impl<K: DefaultCodec + 'static, V: DefaultCodec + 'static> Topic<K, V> {
    /// The topic `name`, with the types' default codecs.
    pub const fn new(name: &'static str) -> Self {
        Topic::with_codecs(name, default_codec::<K>, default_codec::<V>)
    }
}

impl<K: DefaultCodec + 'static, V: Serialize + DeserializeOwned + 'static> Topic<K, V> {
    /// The topic `name`, with the key's default codec and JSON values.
    pub const fn json(name: &'static str) -> Self {
        Topic::with_codecs(name, default_codec::<K>, json_codec::<V>)
    }
}

impl<K, V> Topic<K, V> {
    /// The topic `name` with the given codecs (functions making them, so a `Topic` can be a
    /// `const`): `Topic::with_codecs("raw", || Box::new(Unit), || Box::new(RawBytes))`.
    pub const fn with_codecs(name: &'static str, key: MakeCodec<K>, value: MakeCodec<V>) -> Self {
        Topic { name: Cow::Borrowed(name), key, value, _types: PhantomData }
    }

    /// The same topic types and codecs under another name (one known only at run time).
    pub fn renamed(&self, name: impl Into<String>) -> Self {
        Topic { name: Cow::Owned(name.into()), key: self.key, value: self.value, _types: PhantomData }
    }

    /// The topic's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A key codec.
    pub fn key_codec(&self) -> Box<dyn Codec<K>> {
        (self.key)()
    }

    /// A value codec.
    pub fn value_codec(&self) -> Box<dyn Codec<V>> {
        (self.value)()
    }
}
