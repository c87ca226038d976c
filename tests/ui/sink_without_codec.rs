use stoat::prelude::*;

#[derive(Clone)]
struct Order {
    id: u64,
}

#[stoat::operator]
fn to_order(id: u64) -> Order {
    Order { id }
}

fn main() {
    let topology = Topology::new("app");
    topology.stream::<(), u64>("ids").process(to_order {}).to("orders");
}
