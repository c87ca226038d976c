use stoat::prelude::*;

#[stoat::state]
struct Counts {
    per_key: Table<String, u64>,
}

#[stoat::operator]
async fn enrich(value: String, counts: &Counts) -> String {
    value
}

fn main() {}
