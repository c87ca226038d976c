//! The orders used by the bad-input tests (embedded and on Kafka): JSON values, and an operator
//! that takes the amount.

use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Order {
    pub id: u32,
    pub amount: i64,
}

/// The order's amount.
#[stoat::operator]
pub fn amount(order: Order) -> i64 {
    order.amount
}

/// A valid order with id `id` and amount `id * scale`, as JSON.
pub fn order_json(id: u32, scale: i64) -> Vec<u8> {
    serde_json::to_vec(&Order { id, amount: id as i64 * scale }).unwrap_or_default()
}

/// The orders topology: JSON orders from `input` (UTF-8 keys) to their amounts in
/// `<input>-amounts`, for app `app`.
pub fn topology(app: &str, input: &str) -> stoat::Topology {
    use stoat::codec::{Json, Utf8};
    let topology = stoat::Topology::new(app);
    topology
        .stream_with(input, Utf8, Json::<Order>::new())
        .process(amount {})
        .to(&format!("{input}-amounts"));
    topology
}
