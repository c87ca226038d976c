use stoat::prelude::*;

#[stoat::operator]
fn stamp(value: u64, ctx: &mut Context) -> u64 {
    value + ctx.offset()
}

fn main() {}
