// Grants ACLs through Kafka's own Admin client, for the security tests: one binding per line of
// stdin, `PRINCIPAL RESOURCE_TYPE PATTERN_TYPE NAME OPERATION` (e.g. `User:stoat TOPIC LITERAL
// in READ`), all allowed from any host. Prints how many it created.
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.Properties;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.common.acl.AccessControlEntry;
import org.apache.kafka.common.acl.AclBinding;
import org.apache.kafka.common.acl.AclOperation;
import org.apache.kafka.common.acl.AclPermissionType;
import org.apache.kafka.common.resource.PatternType;
import org.apache.kafka.common.resource.ResourcePattern;
import org.apache.kafka.common.resource.ResourceType;

public class Acls {
    public static void main(String[] args) throws Exception {
        Properties props = new Properties();
        props.put("bootstrap.servers", args[0]);
        ArrayList<AclBinding> bindings = new ArrayList<>();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        for (String line; (line = in.readLine()) != null; ) {
            String[] f = line.trim().split("\\s+");
            if (f.length != 5) {
                continue;
            }
            ResourcePattern resource =
                    new ResourcePattern(ResourceType.fromString(f[1]), f[3], PatternType.fromString(f[2]));
            AccessControlEntry entry =
                    new AccessControlEntry(f[0], "*", AclOperation.fromString(f[4]), AclPermissionType.ALLOW);
            bindings.add(new AclBinding(resource, entry));
        }
        try (Admin admin = Admin.create(props)) {
            admin.createAcls(bindings).all().get();
        }
        System.out.println(bindings.size());
    }
}
