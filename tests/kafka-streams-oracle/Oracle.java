// What Kafka Streams 4.4 emits for one of the reference topologies, on the input given on stdin,
// under its TopologyTestDriver with the record cache off. tests/ks_oracle.rs runs the same input
// through stoat and compares.
//
// java -cp '.kafka/oracle-libs/*' tests/kafka-streams-oracle/Oracle.java TOPOLOGY < input
//
// Input lines: `topic<TAB>key<TAB>value<TAB>timestamp`, `\N` for a null key or value; the records
// are piped in that order. Output lines: the same, for every record of every output topic, in
// order per topic. Windowed keys are written `key@start/end`; counts and sums as decimal text.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.time.Duration;
import java.time.Instant;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TestInputTopic;
import org.apache.kafka.streams.TestOutputTopic;
import org.apache.kafka.streams.TopologyTestDriver;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.JoinWindows;
import org.apache.kafka.streams.kstream.StreamJoined;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.SessionWindows;
import org.apache.kafka.streams.kstream.SlidingWindows;
import org.apache.kafka.streams.kstream.Suppressed;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.test.TestRecord;

public class Oracle {
    static final Consumed<String, String> IN = Consumed.with(Serdes.String(), Serdes.String());
    static final Produced<String, String> OUT = Produced.with(Serdes.String(), Serdes.String());

    static String show(Windowed<String> w) {
        return w.key() + "@" + w.window().start() + "/" + w.window().end();
    }

    /** Builds the topology; returns its output topics. */
    static List<String> build(String name, StreamsBuilder b) {
        switch (name) {
            case "tumbling": {
                b.stream("clicks", IN).groupByKey()
                    .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), Duration.ofSeconds(5)))
                    .count().toStream()
                    .map((w, n) -> KeyValue.pair(show(w), n == null ? null : Long.toString(n)))
                    .to("window-counts", OUT);
                return List.of("window-counts");
            }
            case "tumbling_final": {
                b.stream("clicks", IN).groupByKey()
                    .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), Duration.ofSeconds(5)))
                    .count().suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
                    .toStream()
                    .map((w, n) -> KeyValue.pair(show(w), n == null ? null : Long.toString(n)))
                    .to("window-final", OUT);
                return List.of("window-final");
            }
            case "hopping": {
                b.stream("purchases", IN).groupByKey()
                    .windowedBy(TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), Duration.ofSeconds(2))
                        .advanceBy(Duration.ofSeconds(5)))
                    .aggregate(() -> 0L, (k, v, sum) -> sum + Long.parseLong(v),
                        org.apache.kafka.streams.kstream.Materialized.with(Serdes.String(), Serdes.Long()))
                    .toStream()
                    .map((w, n) -> KeyValue.pair(show(w), n == null ? null : Long.toString(n)))
                    .to("window-sums", OUT);
                return List.of("window-sums");
            }
            case "sliding": {
                b.stream("clicks", IN).groupByKey()
                    .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(Duration.ofSeconds(10), Duration.ofSeconds(5)))
                    .count().toStream()
                    .map((w, n) -> KeyValue.pair(show(w), n == null ? null : Long.toString(n)))
                    .to("sliding-counts", OUT);
                return List.of("sliding-counts");
            }
            case "sliding_final": {
                b.stream("clicks", IN).groupByKey()
                    .windowedBy(SlidingWindows.ofTimeDifferenceAndGrace(Duration.ofSeconds(10), Duration.ofSeconds(5)))
                    .count().suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
                    .toStream()
                    .map((w, n) -> KeyValue.pair(show(w), n == null ? null : Long.toString(n)))
                    .to("sliding-final", OUT);
                return List.of("sliding-final");
            }
            case "session_final": {
                b.stream("clicks", IN).groupByKey()
                    .windowedBy(SessionWindows.ofInactivityGapAndGrace(Duration.ofSeconds(5), Duration.ofSeconds(2)))
                    .count().suppress(Suppressed.untilWindowCloses(Suppressed.BufferConfig.unbounded()))
                    .toStream()
                    .map((w, n) -> KeyValue.pair(show(w), n == null ? null : Long.toString(n)))
                    .to("session-final", OUT);
                return List.of("session-final");
            }
            case "session": {
                b.stream("clicks", IN).groupByKey()
                    .windowedBy(SessionWindows.ofInactivityGapAndGrace(Duration.ofSeconds(5), Duration.ofSeconds(2)))
                    .count().toStream()
                    .map((w, n) -> KeyValue.pair(show(w), n == null ? null : Long.toString(n)))
                    .to("session-counts", OUT);
                return List.of("session-counts");
            }
            case "table_join": {
                var a = b.table("a", IN);
                var bt = b.table("b", IN);
                a.join(bt, (x, y) -> x + "|" + y).toStream().to("ab-inner", OUT);
                a.leftJoin(bt, (x, y) -> x + "|" + (y == null ? "-" : y)).toStream().to("ab-left", OUT);
                a.outerJoin(bt, (x, y) -> (x == null ? "-" : x) + "|" + (y == null ? "-" : y))
                    .toStream().to("ab-outer", OUT);
                return List.of("ab-inner", "ab-left", "ab-outer");
            }
            case "fk_join": {
                var orders = b.table("orders", IN);
                var products = b.table("products", IN);
                java.util.function.Function<String, String> fk = v -> {
                    String p = v.split("\\|", -1)[0];
                    return p.isEmpty() ? null : p;
                };
                orders.join(products, fk, (o, p) -> o + "|" + p).toStream().to("lines", OUT);
                orders.leftJoin(products, fk, (o, p) -> o + "|" + (p == null ? "-" : p)).toStream().to("lines-left", OUT);
                return List.of("lines", "lines-left");
            }
            case "table_aggregate": {
                b.table("accounts", IN)
                    .groupBy((k, v) -> KeyValue.pair(v.split("\\|")[0], Long.parseLong(v.split("\\|")[1])),
                        org.apache.kafka.streams.kstream.Grouped.with(Serdes.String(), Serdes.Long()))
                    .aggregate(() -> 0L, (k, v, sum) -> sum + v, (k, v, sum) -> sum - v,
                        org.apache.kafka.streams.kstream.Materialized.with(Serdes.String(), Serdes.Long()))
                    .toStream().mapValues(n -> n == null ? null : Long.toString(n)).to("region-totals", OUT);
                return List.of("region-totals");
            }
            case "stream_join": {
                var events = b.stream("events", IN);
                var l = events.filter((k, v) -> v.startsWith("L:")).mapValues(v -> v.substring(2));
                var r = events.filter((k, v) -> v.startsWith("R:")).mapValues(v -> v.substring(2));
                var w = JoinWindows.ofTimeDifferenceAndGrace(Duration.ofSeconds(5), Duration.ofSeconds(2));
                var with = StreamJoined.with(Serdes.String(), Serdes.String(), Serdes.String());
                l.join(r, (x, y) -> x + "+" + y, w, with).to("inner", OUT);
                l.leftJoin(r, (x, y) -> x + "+" + (y == null ? "-" : y), w, with).to("left", OUT);
                l.outerJoin(r, (x, y) -> (x == null ? "-" : x) + "+" + (y == null ? "-" : y), w, with)
                    .to("outer", OUT);
                return List.of("inner", "left", "outer");
            }
            default:
                throw new IllegalArgumentException("unknown topology " + name);
        }
    }

    public static void main(String[] args) throws Exception {
        StreamsBuilder builder = new StreamsBuilder();
        List<String> outputs = build(args[0], builder);
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, "oracle-" + args[0]);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, "unused:9092");
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        // Left/outer stream-stream joins check for closed windows on every record, not once a
        // second of wall clock (an internal setting Kafka's own tests use).
        p.put("__emit.interval.ms.kstreams.outer.join.spurious.results.fix__", 0L);
        p.put(StreamsConfig.STATE_DIR_CONFIG, java.nio.file.Files.createTempDirectory("oracle").toString());
        try (TopologyTestDriver driver = new TopologyTestDriver(builder.build(), p)) {
            Map<String, TestInputTopic<String, String>> inputs = new HashMap<>();
            BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
            String line;
            while ((line = in.readLine()) != null) {
                if (line.isEmpty()) continue;
                String[] f = line.split("\t", -1);
                TestInputTopic<String, String> topic = inputs.computeIfAbsent(f[0],
                    t -> driver.createInputTopic(t, new StringSerializer(), new StringSerializer()));
                String key = f[1].equals("\\N") ? null : f[1];
                String value = f[2].equals("\\N") ? null : f[2];
                topic.pipeInput(new TestRecord<>(key, value, Instant.ofEpochMilli(Long.parseLong(f[3]))));
            }
            StringBuilder out = new StringBuilder();
            for (String name : outputs) {
                TestOutputTopic<String, String> topic =
                    driver.createOutputTopic(name, new StringDeserializer(), new StringDeserializer());
                for (TestRecord<String, String> r : topic.readRecordsToList()) {
                    out.append(name).append('\t').append(r.key() == null ? "\\N" : r.key()).append('\t')
                        .append(r.value() == null ? "\\N" : r.value()).append('\t')
                        .append(r.timestamp()).append('\n');
                }
            }
            System.out.print(out);
        }
    }
}
