package dev.stoat.bench;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.net.URI;
import java.net.http.HttpClient;
import java.net.http.HttpRequest;
import java.net.http.HttpResponse;
import java.nio.charset.StandardCharsets;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;

/**
 * Workload (e): enrichment. Each record needs a 5 ms call to a remote service: the harness's local
 * HTTP service at STOAT_BENCH_REMOTE ({@code GET /score/KEY}), or, simulated, a 5 ms sleep. A
 * Kafka Streams processor can only make the call blocking, per record; the app runs one stream
 * thread per input partition. The output value is the input value, '|', and the answer.
 */
public final class Enrich implements Workload {
    private final boolean simulated;
    private final HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();

    Enrich(boolean simulated) {
        this.simulated = simulated;
    }

    private String score(String base, String key) {
        try {
            if (simulated) {
                Thread.sleep(5);
                return String.format("%016x", Stateless.fnv1a(key.getBytes(StandardCharsets.UTF_8)));
            }
            HttpRequest request = HttpRequest.newBuilder(URI.create(base + "/score/" + key)).GET().build();
            HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
            if (response.statusCode() != 200) {
                throw new IllegalStateException("the service answered " + response.statusCode());
            }
            return response.body();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException(e);
        }
    }

    @Override
    public void build(StreamsBuilder builder, String input, String output) {
        String base = System.getenv("STOAT_BENCH_REMOTE");
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.ByteArray()))
            .mapValues((key, value) -> {
                byte[] answer = ("|" + score(base, key)).getBytes(StandardCharsets.UTF_8);
                byte[] out = new byte[value.length + answer.length];
                System.arraycopy(value, 0, out, 0, value.length);
                System.arraycopy(answer, 0, out, value.length, answer.length);
                return out;
            })
            .to(output, Produced.with(Serdes.String(), Serdes.ByteArray()));
    }
}
