// Kafka's own serdes on values stoat encoded: reads lines `TYPE VALUE HEX` (HEX: stoat's bytes),
// deserializes HEX with the Java deserializer of TYPE, and prints `JAVA_VALUE JAVA_HEX` per line
// (JAVA_HEX: what the Java serializer writes for VALUE).
// Run: java -cp '.kafka/libs/*' tests/kafka/JavaSerdes.java < lines
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;

public class JavaSerdes {
    @SuppressWarnings("unchecked")
    static <T> String roundTrip(Serde<T> serde, Object value, byte[] stoat) {
        T decoded = serde.deserializer().deserialize("t", stoat);
        byte[] java = serde.serializer().serialize("t", (T) value);
        return decoded + " " + HexFormat.of().formatHex(java);
    }

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        StringBuilder out = new StringBuilder();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            String[] f = line.split(" ");
            byte[] stoat = HexFormat.of().parseHex(f[2]);
            String result = switch (f[0]) {
                case "long" -> roundTrip(Serdes.Long(), Long.parseLong(f[1]), stoat);
                case "int" -> roundTrip(Serdes.Integer(), Integer.parseInt(f[1]), stoat);
                case "short" -> roundTrip(Serdes.Short(), Short.parseShort(f[1]), stoat);
                case "double" -> roundTrip(Serdes.Double(), Double.parseDouble(f[1]), stoat);
                case "float" -> roundTrip(Serdes.Float(), Float.parseFloat(f[1]), stoat);
                case "boolean" -> roundTrip(Serdes.Boolean(), Boolean.parseBoolean(f[1]), stoat);
                case "string" -> roundTrip(Serdes.String(), f[1], stoat);
                default -> throw new IllegalArgumentException("unknown type " + f[0]);
            };
            out.append(result).append('\n');
        }
        System.out.print(out);
    }
}
