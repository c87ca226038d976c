package dev.stoat.bench;

import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;

/**
 * Workload (a): a stateless transform of 1 KB values. Keeps a record unless the FNV-1a hash of its
 * value is divisible by 10 (about 90 % kept), and maps the value to its ASCII upper case followed
 * by ':' and the hash in hex.
 */
public final class Stateless implements Workload {
    static long fnv1a(byte[] bytes) {
        long h = 0xcbf29ce484222325L;
        for (byte b : bytes) {
            h ^= (b & 0xff);
            h *= 0x100000001b3L;
        }
        return h;
    }

    static byte[] transform(byte[] value) {
        String hex = Long.toHexString(fnv1a(value));
        byte[] out = new byte[value.length + 1 + hex.length()];
        for (int i = 0; i < value.length; i++) {
            byte b = value[i];
            out[i] = (b >= 'a' && b <= 'z') ? (byte) (b - 32) : b;
        }
        out[value.length] = ':';
        for (int i = 0; i < hex.length(); i++) {
            out[value.length + 1 + i] = (byte) hex.charAt(i);
        }
        return out;
    }

    @Override
    public void build(StreamsBuilder builder, String input, String output) {
        builder.stream(input, Consumed.with(Serdes.String(), Serdes.ByteArray()))
            .filter((k, v) -> Long.remainderUnsigned(fnv1a(v), 10) != 0)
            .mapValues(Stateless::transform)
            .to(output, Produced.with(Serdes.String(), Serdes.ByteArray()));
    }
}
