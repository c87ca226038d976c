use stoat::prelude::*;

#[stoat::state]
struct A {
    a: Table<String, u64>,
}

#[stoat::state]
struct B {
    b: Table<String, u64>,
}

#[stoat::operator]
fn both(value: u64, a: &mut A, b: &mut B) -> u64 {
    value
}

fn main() {}
