//! Operator parameters after the record: [`ParamRef`] for those taken as `&T`, [`ParamMut`] for
//! `&mut T`. Each kind is a type implementing one of them (state structs, [`Context`],
//! [`Keyed`](super::Keyed)); the macro only writes `<T as ParamMut<K>>::fetch(...)`. When the
//! topology is built, [`Registry`] gives each parameter its slot; per record, `fetch` borrows it
//! from the lane.

use std::cell::{Ref, RefMut};

use super::context::{Call, Context};
use crate::error::BoxError;
use crate::state::StateSet;
use crate::topology::{SlotId, StateSlot};

/// What an operator's parameters need, declared once when the topology is built.
#[doc(hidden)]
pub struct Registry<'r> {
    pub(crate) states: &'r mut Vec<StateSlot>,
    pub(crate) operator: &'static str,
    pub(crate) version: u32,
    /// This operator's borrows: slot, mutable, what (for errors).
    borrowed: Vec<(usize, bool, String)>,
    /// Whether a parameter takes its timers.
    pub(crate) takes_timers: bool,
    /// What the topology provides to async operators.
    pub(crate) resources: &'r super::resource::Resources,
}

impl std::fmt::Debug for Registry<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").field("operator", &self.operator).finish_non_exhaustive()
    }
}

impl<'r> Registry<'r> {
    pub(crate) fn new(
        states: &'r mut Vec<StateSlot>,
        resources: &'r super::resource::Resources,
        operator: &'static str,
        version: u32,
    ) -> Self {
        Registry { states, operator, version, borrowed: Vec::new(), takes_timers: false, resources }
    }

    /// The operator being registered.
    pub fn operator(&self) -> &'static str {
        self.operator
    }

    /// Its store version (`#[stoat::operator(version = N)]`, default 1).
    pub fn version(&self) -> u32 {
        self.version
    }

    /// The lane slot for `id` (added on first use), borrowed by this operator.
    pub(crate) fn slot(
        &mut self,
        id: SlotId,
        make: impl FnOnce() -> StateSlot,
        mutable: bool,
        what: &str,
    ) -> Result<usize, String> {
        if let SlotId::Keyed(name, types) = id {
            let clash =
                self.states.iter().any(|s| matches!(s.id, SlotId::Keyed(n, t) if n == name && t != types));
            if clash {
                return Err(format!(
                    "two operators named `{name}` keep key-scoped state (`Keyed`) of different types; its store is named after the operator: rename one with `#[stoat::operator(name = \"...\")]`"
                ));
            }
        }
        let slot = match self.states.iter().position(|s| s.id == id) {
            Some(i) => i,
            None => {
                self.states.push(make());
                self.states.len() - 1
            }
        };
        self.borrow(slot, mutable, what)
    }

    /// The lane slot for `id` (added on first use), for the runtime's own use around the
    /// operator's calls (not a parameter's borrow).
    pub(crate) fn unborrowed_slot(&mut self, id: SlotId, make: impl FnOnce() -> StateSlot) -> usize {
        match self.states.iter().position(|s| s.id == id) {
            Some(i) => i,
            None => {
                self.states.push(make());
                self.states.len() - 1
            }
        }
    }

    /// Starts registering the parameters of another method of the operator (its timer
    /// method): borrows are checked per method, as the methods are never called at once.
    pub fn next_method(&mut self) {
        self.borrowed.clear();
    }

    /// Records this operator's borrow of `slot`; refuses a mutable borrow next to any other.
    fn borrow(&mut self, slot: usize, mutable: bool, what: &str) -> Result<usize, String> {
        if let Some((_, _, first)) = self.borrowed.iter().find(|(s, m, _)| *s == slot && (*m || mutable)) {
            return Err(format!(
                "operator `{}` takes `{first}` and `{what}`: one parameter may borrow a state mutably only if no other borrows it",
                self.operator
            ));
        }
        self.borrowed.push((slot, mutable, what.to_string()));
        Ok(slot)
    }
}

impl Registry<'_> {
    /// A slot the topology already has (a table an operator reads), the only one `matches`
    /// accepts, borrowed by this operator for reading.
    pub(crate) fn existing(
        &mut self,
        matches: impl Fn(&SlotId) -> bool,
        what: &str,
    ) -> Result<usize, String> {
        let found: Vec<usize> = (0..self.states.len()).filter(|&i| matches(&self.states[i].id)).collect();
        let names = |slots: &[usize]| -> Vec<String> {
            slots
                .iter()
                .flat_map(|&i| self.states[i].stores.iter().map(|s| format!("`{}`", s.name)))
                .collect()
        };
        let slot = match found.as_slice() {
            [slot] => *slot,
            [] => {
                return Err(format!(
                    "operator `{}` takes `{what}`, but the topology has no such table before it: declare the table (`Topology::table`, `to_table`, `global_table`) before `process`",
                    self.operator
                ))
            }
            several => {
                return Err(format!(
                    "operator `{}` takes `{what}`, but several tables have these types ({}): give their values distinct types",
                    self.operator,
                    names(several).join(", ")
                ))
            }
        };
        self.borrow(slot, false, what)
    }
}

/// A type an operator takes as `&Self` after its record: state structs, [`Context`].
#[diagnostic::on_unimplemented(
    message = "`&{Self}` is not an operator parameter",
    label = "not a state struct, `&Context`, `&TableView` or another operator parameter",
    note = "after its record, an operator takes `&S`/`&mut S` (a `#[stoat::state]` struct), `&Context`, `&mut Keyed<V>` or `&TableView<K, V>`"
)]
pub trait ParamRef<K> {
    /// What registration resolved (a slot index).
    type Slot: Send + Sync + 'static;
    /// A borrow of `Self` for one call.
    type Guard<'c>: std::ops::Deref<Target = Self>
    where
        Self: 'c;
    /// Declares what the parameter needs.
    fn register(registry: &mut Registry<'_>) -> Result<Self::Slot, String>;
    /// Borrows the parameter for one call on the record with key `key`.
    fn fetch<'c>(slot: &'c Self::Slot, call: &Call<'c>, key: &K) -> Result<Self::Guard<'c>, BoxError>;
}

/// A type an operator takes as `&mut Self` after its record: state structs,
/// [`Keyed`](super::Keyed).
#[diagnostic::on_unimplemented(
    message = "`&mut {Self}` is not an operator parameter",
    label = "not a state struct or `Keyed<V>`",
    note = "after its record, an operator takes `&S`/`&mut S` (a `#[stoat::state]` struct), `&Context`, `&mut Keyed<V>` or `&TableView<K, V>`"
)]
pub trait ParamMut<K> {
    /// What registration resolved (a slot index).
    type Slot: Send + Sync + 'static;
    /// A mutable borrow of `Self` for one call.
    type Guard<'c>: std::ops::DerefMut<Target = Self>
    where
        Self: 'c;
    /// Declares what the parameter needs.
    fn register(registry: &mut Registry<'_>) -> Result<Self::Slot, String>;
    /// Borrows the parameter for one call on the record with key `key`.
    fn fetch<'c>(slot: &'c Self::Slot, call: &Call<'c>, key: &K) -> Result<Self::Guard<'c>, BoxError>;
}

fn wrong_slot<S>(operator_slot: usize) -> BoxError {
    format!("state slot {operator_slot} does not hold a `{}`", std::any::type_name::<S>()).into()
}

impl<K, S: StateSet> ParamRef<K> for S {
    type Slot = usize;
    type Guard<'c> = Ref<'c, S>;
    fn register(registry: &mut Registry<'_>) -> Result<usize, String> {
        registry.slot(SlotId::of::<S>(), StateSlot::of::<S>, false, std::any::type_name::<S>())
    }
    fn fetch<'c>(slot: &'c usize, call: &Call<'c>, _: &K) -> Result<Ref<'c, S>, BoxError> {
        let state = call.borrow(*slot)?;
        Ref::filter_map(state, |s| s.as_any().downcast_ref::<S>()).map_err(|_| wrong_slot::<S>(*slot))
    }
}

impl<K, S: StateSet> ParamMut<K> for S {
    type Slot = usize;
    type Guard<'c> = RefMut<'c, S>;
    fn register(registry: &mut Registry<'_>) -> Result<usize, String> {
        registry.slot(SlotId::of::<S>(), StateSlot::of::<S>, true, std::any::type_name::<S>())
    }
    fn fetch<'c>(slot: &'c usize, call: &Call<'c>, _: &K) -> Result<RefMut<'c, S>, BoxError> {
        let state = call.borrow_mut(*slot)?;
        RefMut::filter_map(state, |s| s.as_any_mut().downcast_mut::<S>()).map_err(|_| wrong_slot::<S>(*slot))
    }
}

impl<K> ParamRef<K> for Context {
    type Slot = ();
    type Guard<'c> = &'c Context;
    fn register(_: &mut Registry<'_>) -> Result<(), String> {
        Ok(())
    }
    fn fetch<'c>(_: &'c (), call: &Call<'c>, _: &K) -> Result<&'c Context, BoxError> {
        Ok(call.context)
    }
}
