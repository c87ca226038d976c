// The partition Kafka's Java clients pick for a key: murmur2 of the key bytes, as the default
// partitioner computes it (BuiltInPartitioner.partitionForKey). Reads one key per line from
// stdin, prints one partition per line. Run: java -cp '.kafka/libs/*' tests/kafka/Partitions.java N
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;

import org.apache.kafka.clients.producer.internals.BuiltInPartitioner;

public class Partitions {
    public static void main(String[] args) throws Exception {
        int partitions = Integer.parseInt(args[0]);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            byte[] key = line.getBytes(StandardCharsets.UTF_8);
            out.append(BuiltInPartitioner.partitionForKey(key, partitions)).append('\n');
        }
        System.out.print(out);
    }
}
