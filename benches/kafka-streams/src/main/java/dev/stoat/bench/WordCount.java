package dev.stoat.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.Produced;

/**
 * Workload (b): word count. Splits lines into lowercase words (maximal runs of letters or digits),
 * re-keys by word (a repartition topic), counts, and writes each count as decimal text.
 */
public final class WordCount implements Workload {
    static List<String> words(String line) {
        List<String> out = new ArrayList<>();
        int start = -1;
        for (int i = 0; i <= line.length(); i++) {
            boolean word = i < line.length() && Character.isLetterOrDigit(line.charAt(i));
            if (word && start < 0) {
                start = i;
            } else if (!word && start >= 0) {
                out.add(line.substring(start, i).toLowerCase(Locale.ROOT));
                start = -1;
            }
        }
        return out;
    }

    @Override
    public void build(StreamsBuilder builder, String input, String output) {
        builder.stream(input, Consumed.with(Serdes.ByteArray(), Serdes.String()))
            .flatMapValues(WordCount::words)
            .groupBy((k, word) -> word, Grouped.with(Serdes.String(), Serdes.String()))
            .count()
            .toStream()
            .mapValues(n -> Long.toString(n))
            .to(output, Produced.with(Serdes.String(), Serdes.String()));
    }
}
