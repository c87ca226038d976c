//! Workload (c): orders keyed by order id (value `customer|amount|padding`) enriched with their
//! customer from a table of 100K customers (`<input>-customers`, value `name|tier`): each output
//! is the order's value, `|`, the customer's. The table is a global table (read to its end
//! before the orders, like Kafka Streams' `GlobalKTable` in `Join.java`), joined through a key
//! selector: no re-keying of the orders and no repartition topic.

use stoat::prelude::*;

/// The customer id an order names (its value up to the first `|`).
fn customer_of(order: &str) -> String {
    order.split('|').next().unwrap_or_default().to_string()
}

pub fn topology(app: &str, input: &str, output: &str) -> Topology {
    let topology = Topology::new(app);
    let customers = topology.global_table(
        &Topic::<String, String>::new("customers").renamed(format!("{input}-customers")),
        "customers",
    );
    topology
        .stream::<String, String>(input)
        .join_global(
            &customers,
            |_, order| customer_of(order),
            |order, customer| format!("{order}|{customer}"),
        )
        .to(output);
    topology
}
