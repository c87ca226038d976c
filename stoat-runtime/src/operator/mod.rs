//! The operator model: what `#[stoat::operator]` generates code against.
//!
//! An operator is a plain function. Its first parameter (or a `#[key]` parameter, then it) is
//! the record it processes, recognised through [`Input`]/[`InputRef`]; every later parameter is
//! an *operator parameter* recognised through [`ParamRef`] (`&T`) or [`ParamMut`] (`&mut T`):
//! state structs, [`Context`], [`Keyed`] state, and whatever kinds come next, each a type
//! implementing the trait, not a case in the macro. What it returns is read through [`Output`].
//! The macro implements the sealed [`Operator`] trait for a marker type; the trait's hidden
//! methods are the lifecycle, which can grow (timers, barrier hooks, async calls) without
//! breaking user code, because no user implements it by hand.

mod asynchronous;
mod context;
mod input;
mod keyed;
mod output;
mod param;
pub(crate) mod resource;
mod table_view;
pub(crate) mod timers;

pub use asynchronous::{AsyncCall, AsyncSettings};
pub use context::{Call, Context};
pub use input::{Input, InputRef, Value, Whole};
pub use keyed::Keyed;
pub use output::{
    emit_all as emit_each, Each, Emit, EmitsLike, Emitter, Fallible, Many, Maybe, One, Output, Plain,
    Rekeyed, Same, Single, Stamped,
};
pub use param::{ParamMut, ParamRef, Registry};
pub use resource::{async_fetch, async_slot, AsyncParam, AsyncSlot, Res};
pub use table_view::TableView;
pub use timers::{TimeDomain, Timer, Timers};

/// Registers the timer store of the operator being registered (for `#[stoat::operator]`'s
/// expansion: the runtime's own access, not a parameter).
#[doc(hidden)]
pub fn register_timers<K: crate::state::StoreKey + Key>(
    registry: &mut Registry<'_>,
) -> Result<usize, String> {
    timers::register::<K>(registry, None)
}

use std::hash::Hash;

use crate::error::BoxError;
use crate::record::Record;

/// A type usable as a record key: it is hashed to pick the lane that owns it.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a record key",
    note = "record keys must be `Hash + Eq + Clone + Send + 'static`"
)]
pub trait Key: Hash + Eq + Clone + Send + 'static {}
impl<T: Hash + Eq + Clone + Send + 'static> Key for T {}

/// A type usable as a record value.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be a record value",
    note = "record values must be `Clone + Send + 'static`"
)]
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

#[doc(hidden)]
pub mod sealed {
    /// Only `#[stoat::operator]` implements [`Operator`](super::Operator).
    pub trait Sealed {}
}

/// A node that processes records with key `K` and value `V`, made by `#[stoat::operator]` from a
/// function (`M` is a marker the compiler infers: how the function takes its input and what its
/// return type emits). Pass it to [`Stream::process`](crate::topology::Stream::process).
///
/// The trait is sealed: its methods are how the runtime drives an operator, and they will grow
/// (timers, barrier hooks, async calls) without breaking code that uses operators.
#[diagnostic::on_unimplemented(
    message = "operator `{Self}` does not take records with key `{K}` and value `{V}`",
    label = "this stream carries key `{K}` and value `{V}`",
    note = "an operator's record parameters (its value, or `#[key]` key and value) must match the stream it is applied to"
)]
pub trait Operator<K, V, M>: sealed::Sealed + Send + Sync + 'static {
    /// The key of the records it emits.
    type OutKey: Key;
    /// The value of the records it emits.
    type OutValue: Data;
    /// What its parameters looked up when the topology was built (state slots).
    #[doc(hidden)]
    type Slots: Send + Sync + 'static;
    /// Its name, for errors, logs, metrics and its key-scoped store.
    const NAME: &'static str;
    /// The schema version of its key-scoped store (`#[stoat::operator(version = N)]`).
    #[doc(hidden)]
    const VERSION: u32 = 1;
    /// Whether its outputs may carry new keys (and so move to the lanes that own them).
    #[doc(hidden)]
    const REKEYS: bool;

    /// Declares what its parameters need (state slots, stores).
    #[doc(hidden)]
    fn register(&self, registry: &mut Registry<'_>) -> Result<Self::Slots, String>;

    /// Processes one record, writing outputs to `out`. An `Err` goes to the error policy.
    #[doc(hidden)]
    fn process(
        &self,
        slots: &Self::Slots,
        record: Record<K, V>,
        call: &Call<'_>,
        out: &mut Emitter<Self::OutKey, Self::OutValue>,
    ) -> Result<(), BoxError>;

    /// Whether it has an `#[on_timer]` method.
    #[doc(hidden)]
    const TIMERS: bool = false;

    /// `#[stoat::operator(expire_after = .., expire_on = ..)]`: after how long (ms) without a
    /// write, on which clock, a key's key-scoped state is deleted.
    #[doc(hidden)]
    const EXPIRY: Option<(i64, TimeDomain)> = None;

    /// The lane slot of its timers, if it has an `#[on_timer]` method or expiring state.
    #[doc(hidden)]
    fn timers(_slots: &Self::Slots) -> Option<usize> {
        None
    }

    /// `Some` for an async operator (`#[stoat::operator]` on an `async fn`): how it runs. The
    /// runtime then calls [`Operator::start`], never `process`.
    #[doc(hidden)]
    const ASYNC: Option<AsyncSettings> = None;

    /// Starts one call of an async operator on `record` (whose context is `context`).
    #[doc(hidden)]
    fn start(
        self: &std::sync::Arc<Self>,
        _slots: &Self::Slots,
        _record: Record<K, V>,
        _context: &Context,
    ) -> AsyncCall<Self::OutKey, Self::OutValue> {
        let name = Self::NAME;
        Box::pin(async move { Err(format!("operator `{name}` is not async").into()) })
    }

    /// Handles a timer of `key` that fired, writing outputs to `out`.
    #[doc(hidden)]
    fn fire(
        &self,
        _slots: &Self::Slots,
        _key: K,
        _timer: Timer,
        _call: &Call<'_>,
        _out: &mut Emitter<Self::OutKey, Self::OutValue>,
    ) -> Result<(), BoxError> {
        Ok(())
    }
}

/// Definition-site checks `#[stoat::operator]` emits, each spanned at the user's type, so a type
/// that cannot play its role is reported once, where it is written.
#[doc(hidden)]
pub mod check {
    use super::{Key, Output, ParamMut, ParamRef, Single};

    pub fn key<T: Key>() {}

    /// The parameter of an `#[on_timer]` method after the key: the timer that fired.
    #[diagnostic::on_unimplemented(
        message = "an `#[on_timer]` method takes the `Timer` that fired, not `{Self}`",
        label = "expected `Timer`",
        note = "write it `fn name(&self, #[key] key: &K, timer: Timer, ...)`"
    )]
    pub trait IsTimer {
        fn from_timer(timer: super::Timer) -> Self;
    }
    impl IsTimer for super::Timer {
        fn from_timer(timer: super::Timer) -> Self {
            timer
        }
    }
    pub fn param_ref<T: ?Sized + ParamRef<K>, K>() {}
    pub fn param_mut<T: ?Sized + ParamMut<K>, K>() {}
    pub fn output<T: Output<K, M>, K, M>() {}
    pub fn single<T: Single<K, M>, K, M>() {}
}
