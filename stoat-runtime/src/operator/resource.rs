//! Shared resources for async operators: an HTTP client, a connection pool, a model. The
//! topology holds one of each type ([`Topology::provide`](crate::topology::Topology::provide));
//! an async operator takes it as `&Res<T>`, a cheap handle every in-flight call holds its own
//! clone of. [`AsyncParam`] is the role of an async operator's parameters after its record:
//! resources and [`Context`], never state (a call that awaits must not hold a lane's state).

use std::any::{Any, TypeId};
use std::sync::Arc;

use super::context::Context;
use super::param::Registry;

/// A shared resource an async operator takes as `&Res<T>` (provided to the topology with
/// [`Topology::provide`](crate::topology::Topology::provide)). It dereferences to `T`.
pub struct Res<T: ?Sized>(Arc<T>);

impl<T: ?Sized> Clone for Res<T> {
    fn clone(&self) -> Self {
        Res(Arc::clone(&self.0))
    }
}

impl<T: ?Sized> std::ops::Deref for Res<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T: ?Sized> std::fmt::Debug for Res<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Res<{}>", std::any::type_name::<T>())
    }
}

impl<T> Res<T> {
    /// A handle on `value` (for calling an async operator function by hand in tests).
    pub fn new(value: T) -> Self {
        Res(Arc::new(value))
    }
}

/// The resources a topology provides, by type.
#[derive(Clone, Default)]
pub(crate) struct Resources {
    by_type: Vec<(TypeId, Arc<dyn Any + Send + Sync>)>,
}

impl Resources {
    /// Provides `value`; returns false if one of its type was provided already.
    pub fn insert<T: Send + Sync + 'static>(&mut self, value: T) -> bool {
        let id = TypeId::of::<T>();
        if self.by_type.iter().any(|(t, _)| *t == id) {
            return false;
        }
        self.by_type.push((id, Arc::new(value)));
        true
    }

    fn get<T: Send + Sync + 'static>(&self) -> Option<Res<T>> {
        let id = TypeId::of::<T>();
        let (_, any) = self.by_type.iter().find(|(t, _)| *t == id)?;
        Arc::clone(any).downcast::<T>().ok().map(Res)
    }
}

/// A type an async operator takes as `&Self` after its record: [`Res<T>`] and [`Context`]. Each
/// call gets its own, so a call that awaits borrows nothing of the lane.
#[diagnostic::on_unimplemented(
    message = "`&{Self}` is not a parameter of an async operator",
    label = "not `&Res<T>` or `&Context`",
    note = "an async operator takes shared resources (`&Res<T>`, provided with `Topology::provide`) and `&Context`; it cannot hold state across `.await`: keep state in a synchronous operator before or after it"
)]
pub trait AsyncParam: Sized + Send + 'static {
    /// What registration resolved.
    type Slot: Send + Sync + 'static;
    /// Declares what the parameter needs.
    fn register(registry: &mut Registry<'_>) -> Result<Self::Slot, String>;
    /// The parameter for one call on a record with this context.
    fn fetch(slot: &Self::Slot, context: &Context) -> Self;
}

impl<T: Send + Sync + 'static> AsyncParam for Res<T> {
    type Slot = Res<T>;
    fn register(registry: &mut Registry<'_>) -> Result<Res<T>, String> {
        registry.resources.get::<T>().ok_or_else(|| {
            format!(
                "operator `{}` takes `&Res<{}>`, but the topology provides none: call `topology.provide(value)` before `process`",
                registry.operator,
                std::any::type_name::<T>()
            )
        })
    }
    fn fetch(slot: &Res<T>, _: &Context) -> Self {
        slot.clone()
    }
}

impl AsyncParam for Context {
    type Slot = ();
    fn register(_: &mut Registry<'_>) -> Result<(), String> {
        Ok(())
    }
    fn fetch(_: &(), context: &Context) -> Self {
        context.clone()
    }
}

/// What registration resolved for an async operator's parameter `T`: how each call gets its
/// own. (A type of its own, so that the operator's slots name `T` without requiring it to be a
/// parameter: a misused type is reported once, where it is written.)
#[doc(hidden)]
pub struct AsyncSlot<T>(Box<dyn Fn(&Context) -> T + Send + Sync>);

impl<T> std::fmt::Debug for AsyncSlot<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AsyncSlot<{}>", std::any::type_name::<T>())
    }
}

/// Declares an async operator's parameter `T`.
#[doc(hidden)]
pub fn async_slot<T: AsyncParam>(registry: &mut Registry<'_>) -> Result<AsyncSlot<T>, String> {
    let slot = T::register(registry)?;
    Ok(AsyncSlot(Box::new(move |context| T::fetch(&slot, context))))
}

/// An async operator's parameter `T` for one call.
#[doc(hidden)]
pub fn async_fetch<T: AsyncParam>(slot: &AsyncSlot<T>, context: &Context) -> T {
    (slot.0)(context)
}
