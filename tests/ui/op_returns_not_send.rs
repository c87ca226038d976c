use stoat::prelude::*;

#[stoat::operator]
fn shared(value: u64) -> std::rc::Rc<u64> {
    std::rc::Rc::new(value)
}

fn main() {}
