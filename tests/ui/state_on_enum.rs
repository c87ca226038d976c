#[stoat::state]
enum Stores {
    One,
}

fn main() {}
