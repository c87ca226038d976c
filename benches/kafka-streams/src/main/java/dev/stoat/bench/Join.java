package dev.stoat.bench;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.GlobalKTable;
import org.apache.kafka.streams.kstream.Produced;

/**
 * Workload (c): orders keyed by order id (value "customer|amount|padding") enriched with their
 * customer from a table of 100K customers ("INPUT-customers", value "name|tier"): each output is
 * the order's value, '|', the customer's. The orders are not partitioned by customer, so the
 * table is a GlobalKTable joined through a key selector (the alternative is a repartition topic).
 */
public final class Join implements Workload {
    static String customerOf(String order) {
        int bar = order.indexOf('|');
        return bar < 0 ? order : order.substring(0, bar);
    }

    @Override
    public void build(StreamsBuilder builder, String input, String output) {
        GlobalKTable<String, String> customers =
            builder.globalTable(input + "-customers", Consumed.with(Serdes.String(), Serdes.String()));
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
            .join(customers, (orderId, order) -> customerOf(order), (order, customer) -> order + "|" + customer)
            .to(output, Produced.with(Serdes.String(), Serdes.String()));
    }
}
