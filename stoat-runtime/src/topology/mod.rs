//! The topology builder: sources, operators and sinks wired into a typed graph. A [`Stream<K, V>`]
//! only accepts nodes that take `K` and `V`, so a mis-wired topology does not compile. Building
//! yields a [`Program`]: per-lane pipeline factories the runtime instantiates on every lane.

mod aggregate;
mod async_op;
mod cogroup;
pub mod describe;
mod fk_join;
mod global;
mod nodes;
mod program;
mod replica;
mod schedule;
mod session;
mod sliding;
mod source;
mod stateless;
mod stream_join;
mod table;
mod table_join;
mod topic;
mod waiting;
mod window;

pub use aggregate::Grouped;
pub use cogroup::Cogrouped;
pub use global::GlobalTable;
pub(crate) use nodes::call_operator;
pub use program::Program;
pub(crate) use program::{ErasedState, SlotId, StateSlot};
pub(crate) use replica::{Entry, HoldsCopy, LaneTable};
pub use schedule::Schedule;
pub use session::{SessionGrouped, SessionWindowed, SessionWindows};
pub use sliding::{SlidingGrouped, SlidingWindows};
pub(crate) use source::{Added, Batcher, SourceDecoder};
pub use stateless::Split;
pub use stream_join::JoinWindows;
pub use table::{GroupedTable, KTable};
pub use topic::Topic;
pub use window::{BufferFull, TimeWindows, Window, Windowed, WindowedGrouped};

use std::marker::PhantomData;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard};

use nodes::{Discard, Fanout, OpNode, RekeyNode, SinkNode};
use source::TypedSource;

use crate::codec::{Codec, DefaultCodec};
use crate::error::{Error, Result};
use crate::lane::{Push, Root, RootOf};
use crate::operator::{Data, Key, Operator, Registry};

type Factory<K, V> = Arc<dyn Fn(usize) -> Box<dyn Push<K, V>> + Send + Sync>;
type RootFactory = Arc<dyn Fn(usize) -> Box<dyn Root> + Send + Sync>;

/// The consumers of one stream: instantiated per lane once the topology is complete.
struct Outlet<K, V> {
    consumers: Mutex<Vec<Factory<K, V>>>,
}

impl<K: Data + Key, V: Data> Outlet<K, V> {
    fn new() -> Arc<Self> {
        Arc::new(Outlet { consumers: Mutex::new(Vec::new()) })
    }

    fn add(&self, f: Factory<K, V>) {
        self.consumers.lock().unwrap_or_else(|p| p.into_inner()).push(f);
    }
}

/// What the topology checks of every stream when it is built: whether anything consumes it.
trait Consumed: Send + Sync {
    fn consumers(&self) -> usize;
}

impl<K: Send + 'static, V: Send + 'static> Consumed for Outlet<K, V> {
    fn consumers(&self) -> usize {
        self.consumers.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

impl<K: Data + Key, V: Data> Outlet<K, V> {
    fn instantiate(&self, lanes: usize) -> Box<dyn Push<K, V>> {
        let consumers = self.consumers.lock().unwrap_or_else(|p| p.into_inner());
        match consumers.len() {
            0 => Box::new(Discard(PhantomData)),
            1 => consumers[0](lanes),
            _ => Box::new(Fanout { outs: consumers.iter().map(|f| f(lanes)).collect() }),
        }
    }
}

#[derive(Default)]
struct Graph {
    sources: Vec<(Arc<dyn SourceDecoder>, RootFactory)>,
    points: Vec<RootFactory>,
    states: Vec<StateSlot>,
    /// Stores claimed by aggregations (each folds into its own).
    aggregations: Vec<&'static str>,
    sinks: Vec<String>,
    errors: Vec<String>,
    /// Every stream, described, to find those that go nowhere.
    streams: Vec<(String, Arc<dyn Consumed>)>,
    /// Pairs of sources whose records meet in one node.
    meetings: Vec<(usize, usize)>,
    /// Whether a node acts when an epoch ends (windows emitted when they close).
    epoch_end: bool,
    /// Whether an operator has timers (epochs then end even without input).
    timers: bool,
    /// How many scheduled sources it has.
    schedules: usize,
    /// What it provides to async operators.
    resources: crate::operator::resource::Resources,
    /// Its picture, for people.
    described: describe::Description,
}

/// The `source` of a stream that comes from no topic (a schedule's).
const NO_SOURCE: usize = usize::MAX;

/// A topology under construction. Start streams with [`Topology::stream`], then build it into a
/// [`Program`] (the runtime does that for you).
#[derive(Clone)]
pub struct Topology {
    app: String,
    graph: Arc<Mutex<Graph>>,
}

impl std::fmt::Debug for Topology {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topology").field("app", &self.app).finish_non_exhaustive()
    }
}

fn lock(graph: &Mutex<Graph>) -> MutexGuard<'_, Graph> {
    graph.lock().unwrap_or_else(|p| p.into_inner())
}

impl Topology {
    /// A new topology for the application `app` (its id: consumer group, state, transactions).
    pub fn new(app: impl Into<String>) -> Self {
        Topology { app: app.into(), graph: Arc::default() }
    }

    /// The application id.
    pub fn app(&self) -> &str {
        &self.app
    }

    /// Provides `value` to async operators, which take it as `&Res<T>` (an HTTP client, a
    /// connection pool): one value of each type, shared by every lane and call.
    pub fn provide<T: Send + Sync + 'static>(&self, value: T) -> &Self {
        let mut graph = lock(&self.graph);
        if !graph.resources.insert(value) {
            graph.errors.push(format!(
                "the topology is provided a `{}` twice; provide one value of each type",
                std::any::type_name::<T>()
            ));
        }
        drop(graph);
        self
    }

    /// A stream of the records of `topic`, decoded with the types' default codecs.
    pub fn stream<K, V>(&self, topic: &str) -> Stream<K, V>
    where
        K: Key + DefaultCodec,
        V: Data + DefaultCodec,
    {
        self.stream_with(topic, K::Codec::default(), V::Codec::default())
    }

    /// A stream of the records of `topic`, decoded with its codecs.
    pub fn source<K: Key, V: Data>(&self, topic: &Topic<K, V>) -> Stream<K, V> {
        self.stream_with(topic.name(), topic.key_codec(), topic.value_codec())
    }

    /// A stream of the records of `topic`, decoded with the given codecs.
    pub fn stream_with<K: Key, V: Data>(
        &self,
        topic: &str,
        key_codec: impl Codec<K>,
        value_codec: impl Codec<V>,
    ) -> Stream<K, V> {
        self.source_of(topic, key_codec, value_codec, Arc::default(), false, None)
    }

    /// A stream of the records of `topic` whose timestamps (event time, which windows and
    /// stream time go by) are `timestamp(key, value, kafka_timestamp)`, e.g. a time field of
    /// the value (Kafka Streams' `TimestampExtractor`).
    pub fn source_with_timestamps<K: Key, V: Data>(
        &self,
        topic: &Topic<K, V>,
        timestamp: impl Fn(&K, &V, i64) -> i64 + Send + Sync + 'static,
    ) -> Stream<K, V> {
        let extract: source::TimestampFn<K, V> = Arc::new(timestamp);
        self.source_of(
            topic.name(),
            topic.key_codec(),
            topic.value_codec(),
            Arc::default(),
            false,
            Some(extract),
        )
    }

    /// A source of `topic`; while `broadcast` is set (it may be set until the topology is
    /// built), each record goes to every lane; with `bootstrap`, the topic is read to its end
    /// at start before any other; `timestamps` makes each record's timestamp.
    fn source_of<K: Key, V: Data>(
        &self,
        topic: &str,
        key_codec: impl Codec<K>,
        value_codec: impl Codec<V>,
        broadcast: Arc<AtomicBool>,
        bootstrap: bool,
        timestamps: Option<source::TimestampFn<K, V>>,
    ) -> Stream<K, V> {
        let outlet = Outlet::<K, V>::new();
        let mut graph = lock(&self.graph);
        graph
            .streams
            .push((format!("the stream of topic `{topic}`"), Arc::clone(&outlet) as Arc<dyn Consumed>));
        if graph.sources.iter().any(|(s, _)| s.topic() == topic) {
            graph
                .errors
                .push(format!("topic `{topic}` is read by two sources; reuse the first stream instead"));
        }
        let decoder = Arc::new(TypedSource::<K, V> {
            topic: topic.to_string(),
            key_codec: Arc::new(key_codec),
            value_codec: Arc::new(value_codec),
            broadcast,
            bootstrap,
            timestamps,
        });
        let root_outlet = Arc::clone(&outlet);
        let root: RootFactory = Arc::new(move |lanes| Box::new(RootOf::new(root_outlet.instantiate(lanes))));
        graph.sources.push((decoder, root));
        let source = graph.sources.len() - 1;
        let node = graph.described.add(describe::NodeKind::Source, format!("topic `{topic}`"), Vec::new());
        drop(graph);
        Stream { graph: Arc::clone(&self.graph), outlet, node, source, _types: PhantomData }
    }

    /// Checks the topology and compiles it.
    pub fn build(&self) -> Result<Program> {
        let graph = lock(&self.graph);
        let fail = |reason: String| Error::Topology { app: self.app.clone(), reason };
        if let Some(e) = graph.errors.first() {
            return Err(fail(e.clone()));
        }
        if graph.sources.is_empty() && graph.schedules == 0 {
            return Err(fail("it reads no topic; start a stream with `Topology::stream`".into()));
        }
        let mut stores: Vec<crate::state::StoreSpec> = Vec::new();
        for slot in &graph.states {
            for spec in &slot.stores {
                if let Some(other) = stores.iter().find(|s| s.name == spec.name) {
                    return Err(fail(format!(
                        "state store `{}` is declared by both `{}` and `{}`; store names must be unique (rename one with #[store(name = \"...\")])",
                        spec.name, other.owner, spec.owner
                    )));
                }
                let valid = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '.';
                if spec.name.is_empty() || !spec.name.chars().all(valid) {
                    return Err(fail(format!(
                        "state store name `{}` (declared by `{}`) may hold only ASCII letters, digits, `_` and `.`: it names the changelog topic `{}-{}-changelog`, and without `-` in store names no two apps' stores share one",
                        spec.name, spec.owner, self.app, spec.name
                    )));
                }
                stores.push(spec.clone());
            }
        }
        for (source, _) in &graph.sources {
            if graph.sinks.iter().any(|s| s == source.topic()) {
                return Err(fail(format!(
                    "topic `{}` is both read and written; a topology may not feed itself through a topic",
                    source.topic()
                )));
            }
        }
        let unconsumed: Vec<String> =
            graph.streams.iter().filter(|(_, s)| s.consumers() == 0).map(|(what, _)| what.clone()).collect();
        for what in &unconsumed {
            tracing::warn!(app = %self.app, "{what} goes nowhere: its records are dropped; write them with `.to(topic)`");
        }
        Ok(Program {
            app: self.app.clone(),
            unconsumed,
            sources: graph.sources.iter().map(|(s, _)| Arc::clone(s)).collect(),
            source_roots: graph.sources.iter().map(|(_, r)| Arc::clone(r)).collect(),
            point_roots: graph.points.clone(),
            states: graph.states.clone(),
            stores,
            sinks: graph.sinks.clone(),
            source_groups: source_groups(graph.sources.len(), &graph.meetings),
            epoch_end: graph.epoch_end,
            timers: graph.timers,
            description: graph.described.clone(),
        })
    }
}

/// The stream-time group of every source: sources whose records meet in a node (directly or
/// through others) share one group, as the partitions of a Kafka Streams task share its stream
/// time.
fn source_groups(sources: usize, meetings: &[(usize, usize)]) -> Vec<usize> {
    let mut group: Vec<usize> = (0..sources).collect();
    fn find(group: &mut [usize], mut i: usize) -> usize {
        while group[i] != i {
            group[i] = group[group[i]];
            i = group[i];
        }
        i
    }
    for &(a, b) in meetings {
        let (ra, rb) = (find(&mut group, a), find(&mut group, b));
        group[ra.max(rb)] = ra.min(rb);
    }
    (0..sources).map(|i| find(&mut group, i)).collect()
}

/// A typed stream of records with keys `K` and values `V`. Each method adds a node and returns the
/// stream of its outputs; a stream can feed several nodes (each gets every record).
pub struct Stream<K, V> {
    graph: Arc<Mutex<Graph>>,
    outlet: Arc<Outlet<K, V>>,
    /// Its node in the topology's description.
    node: usize,
    /// A source upstream of it (the index of its first one).
    source: usize,
    _types: PhantomData<fn(K, V)>,
}

impl<K, V> std::fmt::Debug for Stream<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("key", &std::any::type_name::<K>())
            .field("value", &std::any::type_name::<V>())
            .finish()
    }
}

impl<K: Key, V: Data> Stream<K, V> {
    /// Another handle on this stream (the same outlet).
    fn alias(&self) -> Stream<K, V> {
        Stream {
            graph: Arc::clone(&self.graph),
            outlet: Arc::clone(&self.outlet),
            node: self.node,
            source: self.source,
            _types: PhantomData,
        }
    }

    /// A stream the topology does not require anyone to consume (a table's changes).
    fn internal<K2: Key, V2: Data>(&self) -> Stream<K2, V2> {
        Stream {
            graph: Arc::clone(&self.graph),
            outlet: Outlet::new(),
            node: self.node,
            source: self.source,
            _types: PhantomData,
        }
    }

    fn derive<K2: Key, V2: Data>(&self, what: String) -> Stream<K2, V2> {
        let outlet = Outlet::new();
        let mut graph = lock(&self.graph);
        let node = graph.described.add(describe::NodeKind::Operator, what.clone(), vec![self.node]);
        graph.streams.push((what, Arc::clone(&outlet) as Arc<dyn Consumed>));
        drop(graph);
        Stream { graph: Arc::clone(&self.graph), outlet, node, source: self.source, _types: PhantomData }
    }

    /// Draws `other` as another input of `next` (a join's, merge's or cogroup's other side).
    fn feeds<K2, V2, K3, V3>(&self, other: &Stream<K2, V2>, next: &Stream<K3, V3>) {
        lock(&self.graph).described.link(other.node, next.node);
    }

    /// Records that this stream's records and `other`'s meet in one node (a merge, a join, a
    /// cogroup): their sources then share one stream time.
    fn meets<K2, V2>(&self, other: &Stream<K2, V2>) {
        if self.source != NO_SOURCE && other.source != NO_SOURCE {
            lock(&self.graph).meetings.push((self.source, other.source));
        }
    }

    /// Registers a re-key point whose records continue into `next`; returns its index.
    fn rekey_point<K2: Key, V2: Data>(&self, next: &Stream<K2, V2>) -> usize {
        let outlet = Arc::clone(&next.outlet);
        let root: RootFactory = Arc::new(move |lanes| Box::new(RootOf::new(outlet.instantiate(lanes))));
        let mut graph = lock(&self.graph);
        graph.points.push(root);
        graph.described.rekeyed(next.node);
        graph.points.len() - 1
    }

    /// Runs each record through an operator made with `#[stoat::operator]` (`name {}` for an
    /// operator function `name`, or the value of an operator type). If it re-keys (emits
    /// `KeyValue`s or `Emit`s), its outputs move to the lanes owning their new keys.
    ///
    /// An async operator (`#[stoat::operator]` on an `async fn`) runs as its attributes say
    /// (in-flight calls per lane, timeout, retries); [`Stream::process_with`] sets that per use.
    pub fn process<O: Operator<K, V, M>, M: 'static>(&self, op: O) -> Stream<O::OutKey, O::OutValue> {
        self.process_as(op, O::ASYNC)
    }

    /// Runs each record through an async operator with these settings (instead of those of
    /// its `#[stoat::operator(..)]` attribute).
    pub fn process_with<O: Operator<K, V, M>, M: 'static>(
        &self,
        op: O,
        settings: crate::operator::AsyncSettings,
    ) -> Stream<O::OutKey, O::OutValue> {
        if O::ASYNC.is_none() {
            lock(&self.graph).errors.push(format!(
                "operator `{}` is not async: `process_with` sets how an async operator (an `async fn`) runs; use `process`",
                O::NAME
            ));
        }
        self.process_as(op, Some(settings))
    }

    fn process_as<O: Operator<K, V, M>, M: 'static>(
        &self,
        op: O,
        settings: Option<crate::operator::AsyncSettings>,
    ) -> Stream<O::OutKey, O::OutValue> {
        let next = self.derive::<O::OutKey, O::OutValue>(format!("the output of operator `{}`", O::NAME));
        let slots = {
            let mut graph = lock(&self.graph);
            let Graph { states, resources, .. } = &mut *graph;
            let mut registry = Registry::new(states, resources, O::NAME, O::VERSION);
            match op.register(&mut registry) {
                Ok(_) if registry.takes_timers && !O::TIMERS => {
                    graph.errors.push(format!(
                        "operator `{}` takes `Timers` but has no `#[on_timer]` method for them to call: write it as `#[stoat::operator] impl YourType {{ fn process(&self, ..) ..; #[on_timer] fn fire(&self, #[key] key: &K, timer: Timer, ..) .. }}`",
                        O::NAME
                    ));
                    None
                }
                Ok(slots) => Some(Arc::new(slots)),
                Err(e) => {
                    graph.errors.push(e);
                    None
                }
            }
        };
        let Some(slots) = slots else { return next };
        if let (Some(settings), true) = (settings, O::ASYNC.is_some()) {
            self.process_async(Arc::new(op), slots, settings, &next);
            return next;
        }
        // With `expire_after`: the operator's key-scoped stores, which a key's expiry clears.
        let expiring: Vec<usize> = {
            let graph = lock(&self.graph);
            let timers = O::timers(&slots);
            (0..graph.states.len())
                .filter(|&i| {
                    Some(i) != timers
                        && matches!(graph.states[i].id, SlotId::Keyed(name, _) if name == O::NAME)
                })
                .collect()
        };
        if O::EXPIRY.is_some() && expiring.is_empty() {
            lock(&self.graph).errors.push(format!(
                "operator `{}` has `expire_after`, but no key-scoped state (`&mut Keyed<V>`) to expire",
                O::NAME
            ));
            return next;
        }
        let expiring = Arc::new(expiring);
        if O::TIMERS || O::EXPIRY.is_some() {
            // Due timers fire when epochs end, which they then do with input or without.
            let mut graph = lock(&self.graph);
            graph.epoch_end = true;
            graph.timers = true;
        }
        let op = Arc::new(op);
        let point = O::REKEYS.then(|| self.rekey_point(&next));
        let outlet = Arc::clone(&next.outlet);
        let source = self.source;
        self.outlet.add(Arc::new(move |lanes| {
            let downstream: Box<dyn Push<O::OutKey, O::OutValue>> = match point {
                Some(p) => Box::new(RekeyNode::new(p)),
                None => outlet.instantiate(lanes),
            };
            Box::new(OpNode::new(
                Arc::clone(&op),
                Arc::clone(&slots),
                (source, Arc::clone(&expiring)),
                downstream,
            ))
        }));
        next
    }

    /// Wires an async operator: its node hands records to the lane's calls, whose results
    /// enter the lane again at a point of their own (and move on to the lanes owning their keys
    /// if it re-keys).
    fn process_async<O: Operator<K, V, M>, M: 'static>(
        &self,
        op: Arc<O>,
        slots: Arc<O::Slots>,
        settings: crate::operator::AsyncSettings,
        next: &Stream<O::OutKey, O::OutValue>,
    ) {
        if let Some(reason) = settings.invalid() {
            lock(&self.graph).errors.push(format!("async operator `{}`: {reason}", O::NAME));
            return;
        }
        let rekey = O::REKEYS.then(|| self.rekey_point(next));
        let outlet = Arc::clone(&next.outlet);
        let downstream = move |lanes| -> Box<dyn Push<O::OutKey, O::OutValue>> {
            match rekey {
                Some(p) => Box::new(RekeyNode::new(p)),
                None => outlet.instantiate(lanes),
            }
        };
        let root: RootFactory =
            Arc::new(move |lanes| Box::new(async_op::CallsRoot::new(O::NAME, downstream(lanes))));
        let point = {
            let mut graph = lock(&self.graph);
            graph.points.push(root);
            graph.points.len() - 1
        };
        let limit = settings.limit.map(|n| Arc::new(tokio::sync::Semaphore::new(n)));
        let calls = Arc::new(async_op::Calls { op, slots, settings, limit, _types: PhantomData });
        self.outlet.add(Arc::new(move |_| Box::new(async_op::CallsNode::new(Arc::clone(&calls), point))));
    }

    /// Writes the records to `topic` with the types' default codecs.
    pub fn to(&self, topic: &str)
    where
        K: DefaultCodec,
        V: DefaultCodec,
    {
        self.to_with(topic, K::Codec::default(), V::Codec::default())
    }

    /// Writes the records to `topic` with its codecs.
    pub fn sink(&self, topic: &Topic<K, V>) {
        self.to_with(topic.name(), topic.key_codec(), topic.value_codec())
    }

    /// Writes the records to `topic` with the given codecs.
    pub fn to_with(&self, topic: &str, key_codec: impl Codec<K>, value_codec: impl Codec<V>) {
        let topic: Arc<str> = Arc::from(topic);
        let mut graph = lock(&self.graph);
        graph.sinks.push(topic.to_string());
        graph.described.add(describe::NodeKind::Sink, format!("topic `{topic}`"), vec![self.node]);
        drop(graph);
        let (kc, vc): (Arc<dyn Codec<K>>, Arc<dyn Codec<V>>) = (Arc::new(key_codec), Arc::new(value_codec));
        self.outlet.add(Arc::new(move |_| {
            Box::new(SinkNode {
                topic: Arc::clone(&topic),
                key_codec: Arc::clone(&kc),
                value_codec: Arc::clone(&vc),
            })
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::StoreError;
    use crate::state::{StateEnv, StateSet, StoreDelta, StoreSpec};

    /// A hand-written state set (the macro refuses such a name at compile time already).
    struct Dashed;

    impl StateSet for Dashed {
        fn stores() -> Vec<StoreSpec> {
            vec![StoreSpec {
                name: "b-c",
                kind: "table",
                key_type: "u64",
                value_type: "u64",
                owner: "Dashed",
                declared: "Table<u64, u64>",
                version: 1,
                json: crate::state::JsonCodec::of::<u64, u64>(),
            }]
        }
        fn open(_: &StateEnv) -> Result<Self, StoreError> {
            Ok(Dashed)
        }
        fn end_batch(&mut self) {}
        fn seal(&mut self, _: &mut Vec<StoreDelta>) -> Result<(), StoreError> {
            Ok(())
        }
        fn discard(&mut self) {}
    }

    #[test]
    fn store_names_with_a_dash_are_refused_so_changelog_names_cannot_collide() {
        // App `a` + store `b-c` and app `a-b` + store `c` would share `a-b-c-changelog`.
        let topology = Topology::new("a");
        let stream = topology.stream::<(), u64>("in");
        lock(&stream.graph).states.push(StateSlot::of::<Dashed>());
        let err = topology.build().err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("`b-c`") && err.contains("a-b-c-changelog"), "{err}");
    }
}
