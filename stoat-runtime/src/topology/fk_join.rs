//! Foreign-key table-table joins (Kafka Streams' `KTable#join(other, foreignKeyExtractor, ..)`,
//! KIP-213), without subscription and response topics.
//!
//! The right table is replicated: its source sends every record to every lane, so each lane
//! sees every update of it in dispatch order with its other input. Each lane keeps, in an index
//! store `(foreign key, key)`, the subscriptions of the left keys it owns. A left update then
//! looks its foreign key up on its own lane, and a right update finds, on every lane, the left
//! keys there that reference it. Both see exactly the updates dispatched before them, so what is
//! emitted does not depend on the number of lanes or on when a lane commits, and no stale
//! response has to be recognised and dropped (Kafka Streams sends a hash of the left value along
//! for that).
//!
//! What is emitted when follows Kafka Streams 4.4 with its cache off (its spurious tombstones
//! included); a right update emits the results of the left keys referencing it in the order of
//! their store-key encoding on each lane.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::aggregate::claim;
use super::replica::{Entry, LaneTable};
use super::table::{Change, Getter, KTable};
use super::{lock, Stream};
use crate::error::{BoxError, Panicked, Result};
use crate::lane::{lane_of, LaneCx, Push};
use crate::operator::{Call, Data, Key};
use crate::record::{Envelope, Record};
use crate::state::StoreKey;

/// Which rows a foreign-key join keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Inner,
    Left,
}

type Extractor<K, V, KO> = Arc<dyn Fn(&K, &V) -> Option<KO> + Send + Sync>;
/// The joined value of a left value and the right one (`None`: no row).
type Joiner<V, VO, R> = Arc<dyn Fn(V, Option<VO>) -> Option<R> + Send + Sync>;

/// The lane that owns an index entry: the lane of its left key.
fn subscriber_lane<KO, K: std::hash::Hash>(entry: &(KO, K), lanes: usize) -> usize {
    lane_of(&entry.1, lanes)
}

impl<K: Key + StoreKey, V: Data> KTable<K, V> {
    /// The inner join with `other` through a foreign key: each entry `(key, value)` joins the
    /// entry of `other` under `foreign_key(key, value)` (`None`: it joins nothing), giving
    /// `joiner(value, other_value)`. Returns the joined table's updates, keyed by this table's
    /// key (`None`: the key left it). `index` names the store that records which keys reference
    /// each foreign key. `other` must be a table read from a topic: its updates are applied on
    /// every lane.
    pub fn join_foreign_key<KO, VO, R>(
        &self,
        other: &KTable<KO, VO>,
        index: &'static str,
        foreign_key: impl Fn(&K, &V) -> Option<KO> + Send + Sync + 'static,
        joiner: impl Fn(V, VO) -> R + Send + Sync + 'static,
    ) -> Stream<K, Option<R>>
    where
        KO: Key + StoreKey,
        VO: Data,
        R: Data,
    {
        let joiner = move |v, o: Option<VO>| o.map(|o| joiner(v, o));
        self.foreign_key_join(other, index, Kind::Inner, Arc::new(foreign_key), Arc::new(joiner))
    }

    /// Like [`KTable::join_foreign_key`], but every entry is in the result, joined to `None`
    /// while its foreign key is `None` or missing from `other` (Kafka Streams' foreign-key
    /// `leftJoin`).
    pub fn left_join_foreign_key<KO, VO, R>(
        &self,
        other: &KTable<KO, VO>,
        index: &'static str,
        foreign_key: impl Fn(&K, &V) -> Option<KO> + Send + Sync + 'static,
        joiner: impl Fn(V, Option<VO>) -> R + Send + Sync + 'static,
    ) -> Stream<K, Option<R>>
    where
        KO: Key + StoreKey,
        VO: Data,
        R: Data,
    {
        let joiner = move |v, o| Some(joiner(v, o));
        self.foreign_key_join(other, index, Kind::Left, Arc::new(foreign_key), Arc::new(joiner))
    }

    fn foreign_key_join<KO, VO, R>(
        &self,
        other: &KTable<KO, VO>,
        index: &'static str,
        kind: Kind,
        foreign_key: Extractor<K, V, KO>,
        joiner: Joiner<V, VO, R>,
    ) -> Stream<K, Option<R>>
    where
        KO: Key + StoreKey,
        VO: Data,
        R: Data,
    {
        let what = match kind {
            Kind::Inner => "join_foreign_key",
            Kind::Left => "left_join_foreign_key",
        };
        let next = self.updates.derive::<K, Option<R>>(format!(
            "the output of `{what}` of tables `{}` and `{}`",
            self.store, other.store
        ));
        self.updates.meets(&other.updates);
        self.updates.feeds(&other.updates, &next);
        let Some(replication) = &other.replication else {
            lock(&self.updates.graph).errors.push(format!(
                "`{what}` of `{}` with `{}`: the other table must be read from a topic (`Topology::table`), because every lane follows its updates; filter or map its values in the joiner instead",
                self.store, other.store
            ));
            return next;
        };
        let (Some(left), Some(right)) = (self.getter.clone(), other.getter.clone()) else { return next };
        if !claim(&self.updates, index, what) {
            return next;
        }
        replication.broadcast.store(true, Ordering::Relaxed);
        let slot = {
            let mut graph = lock(&self.updates.graph);
            graph.states.push(LaneTable::<(KO, K), ()>::slot(
                index,
                "ForeignKeyIndex",
                1,
                subscriber_lane::<KO, K>,
            ));
            graph.states.len() - 1
        };
        let (out, j) = (Arc::clone(&next.outlet), Arc::clone(&joiner));
        self.updates.outlet.add(Arc::new(move |lanes| {
            Box::new(LeftUpdate {
                kind,
                index: slot,
                foreign_key: Arc::clone(&foreign_key),
                joiner: Arc::clone(&j),
                right: Arc::clone(&right),
                next: out.instantiate(lanes),
            })
        }));
        let out = Arc::clone(&next.outlet);
        replication.everywhere.outlet.add(Arc::new(move |lanes| {
            Box::new(RightUpdate {
                kind,
                index: slot,
                joiner: Arc::clone(&joiner),
                left: Arc::clone(&left),
                next: out.instantiate(lanes),
                buf: Vec::new(),
                _foreign: std::marker::PhantomData::<fn(KO)>,
            })
        }));
        next
    }
}

/// A left-table update, on the lane that owns its key: moves the key's subscription to its new
/// foreign key and emits the joined row.
struct LeftUpdate<K, V, KO, VO, R> {
    kind: Kind,
    index: usize,
    foreign_key: Extractor<K, V, KO>,
    joiner: Joiner<V, VO, R>,
    right: Getter<KO, VO>,
    next: Box<dyn Push<K, Option<R>>>,
}

impl<K, V, KO, VO, R> LeftUpdate<K, V, KO, VO, R>
where
    K: Key + StoreKey,
    V: Data,
    KO: Key + StoreKey,
    VO: Data,
    R: Data,
{
    /// The row to emit for one update, with its timestamp, if any.
    fn resolve(
        &self,
        call: &Call<'_>,
        lane: (usize, usize),
        key: &K,
        change: Change<V>,
        timestamp: i64,
    ) -> std::result::Result<Option<(Option<R>, i64)>, BoxError> {
        let extract = |v: &Option<V>| -> std::result::Result<Option<KO>, BoxError> {
            match v {
                Some(v) => Ok(Panicked::catch(|| (self.foreign_key)(key, v))?),
                None => Ok(None),
            }
        };
        let (old_fk, new_fk) = (extract(&change.old)?, extract(&change.new)?);
        if old_fk != new_fk {
            LaneTable::<(KO, K), ()>::write(call, self.index, lane, |index| {
                if let Some(old) = &old_fk {
                    index.delete(&(old.clone(), key.clone()))?;
                }
                if let Some(new) = &new_fk {
                    index.put((new.clone(), key.clone()), ())?;
                }
                Ok(())
            })?;
        }
        let lookup = |fk: &Option<KO>| -> std::result::Result<Option<Entry<VO>>, BoxError> {
            match fk {
                Some(fk) => (self.right)(call, fk),
                None => Ok(None),
            }
        };
        // A result's timestamp: the update's, or the right row's if that is later.
        let at = |row: &Option<Entry<VO>>| row.as_ref().map_or(timestamp, |r| r.timestamp.max(timestamp));
        let join = |v: V, row: Option<Entry<VO>>| -> std::result::Result<Option<R>, BoxError> {
            Ok(Panicked::catch(|| (self.joiner)(v, row.map(|r| r.value)))?)
        };
        let had = change.old.is_some();
        Ok(match (self.kind, change.new) {
            // Deleting an absent row emits nothing.
            (_, None) if !had => None,
            (Kind::Left, None) => Some((None, timestamp)),
            (Kind::Left, Some(v)) => {
                let row = lookup(&new_fk)?;
                let ts = at(&row);
                Some((join(v, row)?, ts))
            }
            // A deleted row, or one whose foreign key became `None`, leaves the result (a
            // tombstone even if it had not joined, as Kafka Streams).
            (Kind::Inner, None) => {
                old_fk.is_some().then(|| lookup(&old_fk)).transpose()?.map(|row| (None, at(&row)))
            }
            (Kind::Inner, Some(_)) if new_fk.is_none() => {
                old_fk.is_some().then(|| lookup(&old_fk)).transpose()?.map(|row| (None, at(&row)))
            }
            (Kind::Inner, Some(v)) => {
                let row = lookup(&new_fk)?;
                let ts = at(&row);
                match row {
                    Some(row) => Some((join(v, Some(row))?, ts)),
                    // A row that moved to a missing foreign key leaves the result.
                    None if old_fk.is_some() && old_fk != new_fk => Some((None, ts)),
                    None => None,
                }
            }
        })
    }
}

impl<K, V, KO, VO, R> Push<K, Change<V>> for LeftUpdate<K, V, KO, VO, R>
where
    K: Key + StoreKey,
    V: Data,
    KO: Key + StoreKey,
    VO: Data,
    R: Data,
{
    fn push(&mut self, env: Envelope<K, Change<V>>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let Record { key, value: change, timestamp, headers } = record;
        let lane = (cx.lane, cx.lanes());
        let resolved = self.resolve(&Call::on_states(&cx.states), lane, &key, change, timestamp);
        match resolved {
            Ok(Some((value, timestamp))) => {
                self.next.push(Envelope { record: Record { key, value, timestamp, headers }, origin }, cx)
            }
            Ok(None) => Ok(()),
            Err(e) => cx.operator_error("foreign-key join", origin, e),
        }
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        self.next.flush(cx)
    }
}

/// A right-table update, on every lane: emits the joined rows of the left keys this lane owns
/// that reference it, with the update's timestamp.
struct RightUpdate<K, V, KO, VO, R> {
    kind: Kind,
    index: usize,
    joiner: Joiner<V, VO, R>,
    left: Getter<K, V>,
    next: Box<dyn Push<K, Option<R>>>,
    buf: Vec<(K, Option<R>)>,
    _foreign: std::marker::PhantomData<fn(KO)>,
}

impl<K, V, KO, VO, R> Push<KO, Change<VO>> for RightUpdate<K, V, KO, VO, R>
where
    K: Key + StoreKey,
    V: Data,
    KO: Key + StoreKey,
    VO: Data,
    R: Data,
{
    fn push(&mut self, env: Envelope<KO, Change<VO>>, cx: &mut LaneCx) -> Result<()> {
        let Envelope { record, origin } = env;
        let Record { key: foreign, value: change, timestamp, headers } = record;
        let (lane, lanes) = (cx.lane, cx.lanes());
        let found = {
            let call = Call::on_states(&cx.states);
            let (kind, joiner, left, buf) = (self.kind, &self.joiner, &self.left, &mut self.buf);
            (|| -> std::result::Result<(), BoxError> {
                let subscribers = LaneTable::<(KO, K), ()>::read(&call, self.index, |t| t.prefix(&foreign))?;
                for ((_, key), ()) in subscribers {
                    if lane_of(&key, lanes) != lane {
                        continue;
                    }
                    let Some(row) = left(&call, &key)? else { continue };
                    let value = match (kind, &change.new) {
                        (Kind::Inner, None) => None,
                        (_, new) => Panicked::catch(|| joiner(row.value, new.clone()))?,
                    };
                    buf.push((key, value));
                }
                Ok(())
            })()
        };
        if let Err(e) = found {
            self.buf.clear();
            return cx.operator_error("foreign-key join", origin, e);
        }
        for (key, value) in self.buf.drain(..) {
            let record = Record { key, value, timestamp, headers: headers.clone() };
            self.next.push(Envelope { record, origin }, cx)?;
        }
        Ok(())
    }
    fn flush(&mut self, cx: &mut LaneCx) -> Result<()> {
        self.next.flush(cx)
    }
}
