package dev.stoat.bench;

import org.apache.kafka.streams.StreamsBuilder;

/** One benchmark workload: builds its topology from the input topic to the output topic. */
public interface Workload {
    void build(StreamsBuilder builder, String input, String output);
}
