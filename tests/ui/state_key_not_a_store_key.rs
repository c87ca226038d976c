use stoat::prelude::*;

#[stoat::state]
struct Prices {
    by_price: Table<f64, String>,
}

fn main() {}
