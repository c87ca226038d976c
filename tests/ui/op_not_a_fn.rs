#[stoat::operator]
struct NotAFunction;

fn main() {}
