use stoat::prelude::*;

/// A key type without `Hash`: lanes are picked by hashing the key.
#[derive(Clone, PartialEq, Eq)]
struct CustomerId(String);

#[stoat::operator]
fn tag(#[key] customer: &CustomerId, value: u64) -> u64 {
    value + customer.0.len() as u64
}

fn main() {}
