use stoat::prelude::*;

#[stoat::operator]
fn double(value: u64) -> u64 {
    value * 2
}

fn main() {
    let topology = Topology::new("app");
    topology.stream::<(), String>("lines").process(double {}).to("out");
}
