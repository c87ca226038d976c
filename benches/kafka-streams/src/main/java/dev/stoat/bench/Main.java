package dev.stoat.bench;

import java.util.Map;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;

import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;

/**
 * Runs one workload until SIGTERM.
 *
 * <pre>Main WORKLOAD BOOTSTRAP INPUT OUTPUT APP_ID GUARANTEE(eos|alo) COMMIT_MS CACHE_BYTES STATE_DIR</pre>
 */
public final class Main {
    static final Map<String, Workload> WORKLOADS = Map.of("stateless", new Stateless(), "wordcount", new WordCount(),
        "join", new Join(), "windowed", new Windowed(), "enrich", new Enrich(false), "enrich-sim", new Enrich(true));

    public static void main(String[] args) throws InterruptedException {
        if (args.length != 9 || !WORKLOADS.containsKey(args[0])) {
            System.err.println("usage: Main stateless|wordcount|join|windowed|enrich|enrich-sim BOOTSTRAP INPUT OUTPUT APP_ID eos|alo COMMIT_MS CACHE_BYTES STATE_DIR");
            System.exit(2);
        }
        Properties p = new Properties();
        p.put(StreamsConfig.APPLICATION_ID_CONFIG, args[4]);
        p.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args[1]);
        p.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG,
            args[5].equals("eos") ? StreamsConfig.EXACTLY_ONCE_V2 : StreamsConfig.AT_LEAST_ONCE);
        p.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, args[6]);
        p.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, args[7]);
        p.put(StreamsConfig.STATE_DIR_CONFIG, args[8]);
        p.put(StreamsConfig.consumerPrefix("auto.offset.reset"), "earliest");
        if (args[0].startsWith("enrich")) {
            // Blocking calls: as many stream threads as the input has partitions (4).
            p.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, 4);
        }
        StreamsBuilder builder = new StreamsBuilder();
        WORKLOADS.get(args[0]).build(builder, args[2], args[3]);
        KafkaStreams streams = new KafkaStreams(builder.build(), p);
        CountDownLatch done = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            printCommitLatency(streams);
            streams.close();
            done.countDown();
        }));
        streams.setUncaughtExceptionHandler(e -> {
            e.printStackTrace();
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        done.await();
    }

    /** The stream thread's commit latency (Kafka Streams' own metric, over its recent sample
     * windows), in the line format the harness reads (benches/harness/stoatbench/systems.py). */
    static void printCommitLatency(KafkaStreams streams) {
        double mean = Double.NaN, max = Double.NaN;
        for (var e : streams.metrics().entrySet()) {
            var name = e.getKey();
            if (!name.group().equals("stream-thread-metrics")) continue;
            Object v = e.getValue().metricValue();
            if (!(v instanceof Double d) || d.isNaN()) continue;
            if (name.name().equals("commit-latency-avg")) mean = d;
            if (name.name().equals("commit-latency-max")) max = d;
        }
        System.err.printf("stoat-bench: commit_ms_mean=%.3f commit_ms_max=%.3f%n", mean, max);
    }
}
