use stoat::prelude::*;

#[stoat::operator]
#[on_timer]
fn remind(#[key] user: &String, timer: Timer) -> String {
    format!("{user} {}", timer.time())
}

fn main() {}
