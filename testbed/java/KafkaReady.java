// kelp test bed: readiness probe for a Kafka broker (3.9 and 4.x).
// Polls with the Admin API inside one JVM until the cluster reports a live broker and answers a
// metadata (list topics) request, or until the deadline. Exit 0 = ready, 1 = not ready.
// usage: java -cp 'classes:lib/*' KafkaReady BOOTSTRAP TIMEOUT_SECONDS [BROKER_PID]
// With BROKER_PID it gives up as soon as that process is gone.
import java.util.Collection;
import java.util.Optional;
import java.util.Properties;
import java.util.concurrent.TimeUnit;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.common.Node;

public final class KafkaReady {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(args[1]));
        Optional<ProcessHandle> broker = args.length > 2 ? ProcessHandle.of(Long.parseLong(args[2])) : Optional.empty();
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.CLIENT_ID_CONFIG, "kelp-testbed-ready");
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, "3000");
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, "5000");
        p.put(AdminClientConfig.RETRY_BACKOFF_MS_CONFIG, "200");
        String last = "no attempt";
        try (Admin admin = Admin.create(p)) {
            while (System.nanoTime() < deadline) {
                if (broker.isPresent() && !broker.get().isAlive()) {
                    System.out.println("not ready: broker process " + args[2] + " is gone");
                    System.exit(1);
                }
                try {
                    Collection<Node> nodes = admin.describeCluster().nodes().get(5, TimeUnit.SECONDS);
                    if (nodes.isEmpty()) {
                        last = "no live broker yet";
                    } else {
                        int topics = admin.listTopics().names().get(5, TimeUnit.SECONDS).size();
                        System.out.println("ready: brokers=" + nodes + " topics=" + topics);
                        return;
                    }
                } catch (Exception e) {
                    last = e.toString();
                }
                Thread.sleep(500);
            }
        }
        System.out.println("not ready: " + last);
        System.exit(1);
    }
}
