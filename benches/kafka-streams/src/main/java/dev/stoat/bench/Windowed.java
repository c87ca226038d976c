package dev.stoat.bench;

import java.time.Duration;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;

/**
 * Workload (d): a 1-minute tumbling count per key with 10 s grace, emitted once when each window
 * closes; output key "user@window-start", value the count as decimal text.
 */
public final class Windowed implements Workload {
    @Override
    public void build(StreamsBuilder builder, String input, String output) {
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.String()))
            .groupByKey()
            .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofMinutes(1), Duration.ofSeconds(10)))
            .count()
            .suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
            .toStream()
            .map((w, n) -> KeyValue.pair(w.key() + "@" + w.window().start(), Long.toString(n)))
            .to(output, Produced.with(Serdes.String(), Serdes.String()));
    }
}
