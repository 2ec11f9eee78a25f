// The entrypoint of the development Kafka image for the one-node cluster (hack/images.sh node).
// DEVELOPMENT ONLY: one broker, PLAINTEXT, no authentication.
//
//   broker         writes server.properties into the data volume, formats the storage on the
//                  first start, runs the broker (KRaft combined mode) in this JVM and answers
//                  HTTP readiness on KAFKA_HEALTH_PORT (/ready: the broker serves metadata).
//   create-topics  waits for the broker at BOOTSTRAP_SERVERS and creates TOPICS (idempotent),
//                  raising the partition count of a topic that has fewer than PARTITIONS.
//
// Why its own entrypoint: the cached Kafka jars are the broker's classpath only (kafka_2.13
// and its dependencies): the distribution's shell scripts and the kafka-tools module, where
// TopicCommand lives, are not there. The Admin API of kafka-clients does what the Job needs.
// Why in-process readiness: a bare open port comes before the broker serves requests, and
// starting a JVM per probe would cost a core's worth of CPU on a two-core node.
package orderpipeline.node;

import com.sun.net.httpserver.HttpServer;
import java.io.IOException;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.net.Socket;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Base64;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.UUID;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.DescribeClusterOptions;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.common.errors.TopicExistsException;

public final class NodeKafka {
    private NodeKafka() {}

    public static void main(String[] args) throws Exception {
        String mode = args.length > 0 ? args[0] : "broker";
        switch (mode) {
            case "broker" -> broker();
            case "create-topics" -> System.exit(createTopics());
            default -> {
                System.err.println("usage: kafka-node [broker|create-topics]");
                System.exit(2);
            }
        }
    }

    static void log(String message) {
        System.err.println("[kafka-node] " + message);
    }

    static String env(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isBlank() ? fallback : value.trim();
    }

    // -- broker -------------------------------------------------------------------------------

    // Settings are KAFKA_* variables but never KAFKA_PORT, KAFKA_SERVICE_HOST and the like:
    // Kubernetes' service links define those in every pod of a namespace with a Service
    // named `kafka` (the manifests turn service links off anyway).
    static void broker() throws Exception {
        Path dir = Path.of(env("KAFKA_DATA_DIR", "/var/lib/kafka"));
        Path data = dir.resolve("data");
        Path props = dir.resolve("server.properties");
        int port = Integer.parseInt(env("KAFKA_LISTEN_PORT", "9092"));
        int controllerPort = Integer.parseInt(env("KAFKA_CONTROLLER_PORT", "9093"));
        int internalPort = Integer.parseInt(env("KAFKA_INTERNAL_PORT", "9094"));
        int healthPort = Integer.parseInt(env("KAFKA_HEALTH_PORT", "8080"));
        String listen = env("KAFKA_LISTEN_ADDRESS", "0.0.0.0");
        // Clients reach the broker through the Service `kafka` of the pod's namespace; the
        // fully qualified name works from every namespace.
        String namespace = env("POD_NAMESPACE", "default");
        String advertised = env("KAFKA_ADVERTISED_HOST", "kafka." + namespace + ".svc.cluster.local");

        Map<String, String> config = new LinkedHashMap<>();
        config.put("process.roles", "broker,controller");
        config.put("node.id", "1");
        // The controller and the broker's own listener stay on loopback: nobody else needs them.
        config.put("controller.quorum.voters", "1@127.0.0.1:" + controllerPort);
        config.put("controller.listener.names", "CONTROLLER");
        config.put(
                "listeners",
                "PLAINTEXT://" + listen + ":" + port
                        + ",INTERNAL://127.0.0.1:" + internalPort
                        + ",CONTROLLER://127.0.0.1:" + controllerPort);
        // INTERNAL is what this pod itself (the readiness check) reaches: it is advertised as
        // loopback, so the check does not depend on cluster DNS or on the Service, whose
        // endpoints only list this pod once it is ready.
        config.put(
                "advertised.listeners",
                "PLAINTEXT://" + advertised + ":" + port + ",INTERNAL://127.0.0.1:" + internalPort);
        config.put(
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT");
        config.put("inter.broker.listener.name", "INTERNAL");
        config.put("log.dirs", data.toString());
        // One broker: every internal topic with one replica.
        config.put("offsets.topic.replication.factor", "1");
        config.put("offsets.topic.num.partitions", "10");
        config.put("transaction.state.log.replication.factor", "1");
        config.put("transaction.state.log.min.isr", "1");
        config.put("share.coordinator.state.topic.replication.factor", "1");
        config.put("share.coordinator.state.topic.min.isr", "1");
        config.put("default.replication.factor", "1");
        config.put("min.insync.replicas", "1");
        // A topic a client asks for before the topics Job made it still gets the pipeline's
        // partition count.
        config.put("num.partitions", "3");
        config.put("auto.create.topics.enable", "true");
        config.put("group.initial.rebalance.delay.ms", "0");
        // Two cores on the node: fewer threads than the defaults.
        config.put("num.network.threads", "2");
        config.put("num.io.threads", "2");
        config.put("background.threads", "4");
        // The log cleaner's dedupe buffer takes 128 MiB of heap by default; the heap is small.
        config.put("log.cleaner.dedupe.buffer.size", "8388608");
        config.put("message.max.bytes", "2097152");
        // KAFKA_CFG_LOG_RETENTION_HOURS=1 sets log.retention.hours=1 (after the defaults above).
        new TreeMap<>(System.getenv()).forEach((name, value) -> {
            if (name.startsWith("KAFKA_CFG_") && name.length() > "KAFKA_CFG_".length()) {
                String key = name.substring("KAFKA_CFG_".length()).toLowerCase(Locale.ROOT).replace('_', '.');
                config.put(key, value);
            }
        });

        Files.createDirectories(data);
        StringBuilder text = new StringBuilder("# Written by kafka-node at every start.\n");
        config.forEach((key, value) -> text.append(key).append('=').append(value).append('\n'));
        Files.writeString(props, text.toString());
        Files.setPosixFilePermissions(props, PosixFilePermissions.fromString("rw-------"));

        if (!Files.exists(data.resolve("meta.properties"))) {
            format(props, env("KAFKA_CLUSTER_ID", clusterId()));
        }
        startHealth(healthPort, internalPort);
        log("starting the broker: PLAINTEXT " + listen + ":" + port + " advertised as "
                + advertised + ":" + port + ", readiness on :" + healthPort + "/ready");
        // The broker runs in this JVM; it exits the JVM itself when it stops.
        Class.forName("kafka.Kafka")
                .getMethod("main", String[].class)
                .invoke(null, (Object) new String[] {props.toString()});
    }

    /** Kafka's Uuid text form: 16 random bytes, URL-safe base64, unpadded, never "-" first. */
    static String clusterId() {
        while (true) {
            UUID uuid = UUID.randomUUID();
            ByteBuffer bytes = ByteBuffer.allocate(16);
            bytes.putLong(uuid.getMostSignificantBits()).putLong(uuid.getLeastSignificantBits());
            String id = Base64.getUrlEncoder().withoutPadding().encodeToString(bytes.array());
            // StorageTool's argument parser would read a leading "-" as an option.
            if (!id.startsWith("-")) {
                return id;
            }
        }
    }

    /** StorageTool in a child JVM: its main() exits the JVM, so it cannot run in this one. */
    static void format(Path props, String clusterId) throws IOException, InterruptedException {
        String java = ProcessHandle.current().info().command().orElse("java");
        List<String> command = new ArrayList<>(List.of(java, "-Xmx128m", "-XX:-UsePerfData"));
        String log4j = System.getProperty("log4j2.configurationFile");
        if (log4j != null) {
            command.add("-Dlog4j2.configurationFile=" + log4j);
        }
        command.addAll(List.of(
                "-cp", System.getProperty("java.class.path"),
                "kafka.tools.StorageTool", "format", "-t", clusterId, "-c", props.toString()));
        log("formatting the storage (first start), cluster id " + clusterId);
        Process process = new ProcessBuilder(command).inheritIO().start();
        int code = process.waitFor();
        if (code != 0) {
            throw new IllegalStateException("kafka.tools.StorageTool format exited with " + code);
        }
    }

    static void startHealth(int healthPort, int internalPort) throws IOException {
        Map<String, Object> adminConfig = new HashMap<>();
        adminConfig.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, "127.0.0.1:" + internalPort);
        adminConfig.put(AdminClientConfig.CLIENT_ID_CONFIG, "kafka-node-readiness");
        adminConfig.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 3000);
        adminConfig.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 3000);
        Admin[] admin = {null};

        HttpServer server = HttpServer.create(new InetSocketAddress(healthPort), 8);
        server.createContext("/ready", exchange -> {
            String problem;
            synchronized (admin) {
                problem = readiness(internalPort, admin, adminConfig);
            }
            byte[] body = ((problem == null ? "ok" : problem) + "\n").getBytes(StandardCharsets.UTF_8);
            exchange.getResponseHeaders().set("Content-Type", "text/plain");
            exchange.sendResponseHeaders(problem == null ? 200 : 503, body.length);
            try (OutputStream out = exchange.getResponseBody()) {
                out.write(body);
            }
        });
        server.setExecutor(null); // one thread: probes come one at a time
        server.start();
    }

    /** null when the broker answers metadata on its internal listener, else why not. */
    static String readiness(int internalPort, Admin[] admin, Map<String, Object> adminConfig) {
        // A refused connection needs no Admin client (whose retries would fill the log).
        try (Socket socket = new Socket()) {
            socket.connect(new InetSocketAddress("127.0.0.1", internalPort), 1000);
        } catch (IOException e) {
            return "broker not listening yet";
        }
        try {
            if (admin[0] == null) {
                admin[0] = Admin.create(adminConfig);
            }
            int brokers = admin[0].describeCluster(new DescribeClusterOptions().timeoutMs(3000))
                    .nodes().get(4, TimeUnit.SECONDS).size();
            // A fenced broker is not in the metadata yet: it cannot take partitions.
            return brokers > 0 ? null : "no unfenced broker in the metadata yet";
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return "interrupted";
        } catch (ExecutionException | TimeoutException | RuntimeException e) {
            return "broker not serving metadata: " + e;
        }
    }

    // -- create-topics ------------------------------------------------------------------------

    static int createTopics() throws Exception {
        String bootstrap = env("BOOTSTRAP_SERVERS", "kafka:9092");
        List<String> topics = List.of(env("TOPICS", "").split("[\\s,]+")).stream()
                .filter(t -> !t.isEmpty()).toList();
        int partitions = Integer.parseInt(env("PARTITIONS", "3"));
        short replication = Short.parseShort(env("REPLICATION_FACTOR", "1"));
        long deadline = System.nanoTime() + TimeUnit.SECONDS.toNanos(Long.parseLong(env("WAIT_SECONDS", "900")));
        if (topics.isEmpty()) {
            log("TOPICS is empty: nothing to do");
            return 2;
        }

        Properties config = new Properties();
        config.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        config.put(AdminClientConfig.CLIENT_ID_CONFIG, "kafka-node-create-topics");
        config.put(AdminClientConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 3000);
        config.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        Admin admin = Admin.create(config);
        try {
            while (true) {
                try {
                    admin.describeCluster(new DescribeClusterOptions().timeoutMs(10000))
                            .nodes().get(11, TimeUnit.SECONDS);
                    break;
                } catch (ExecutionException | TimeoutException e) {
                    if (System.nanoTime() > deadline) {
                        log("the broker at " + bootstrap + " did not answer in time");
                        return 1;
                    }
                    log("waiting for the broker at " + bootstrap);
                    Thread.sleep(3000);
                }
            }

            Set<String> existing = admin.listTopics().names().get(30, TimeUnit.SECONDS);
            List<NewTopic> missing = topics.stream().filter(t -> !existing.contains(t))
                    .map(t -> new NewTopic(t, partitions, replication)).toList();
            for (var entry : admin.createTopics(missing).values().entrySet()) {
                try {
                    entry.getValue().get(60, TimeUnit.SECONDS);
                    log("created " + entry.getKey());
                } catch (ExecutionException e) {
                    // A producer's auto-creation or another run of this Job got there first.
                    if (!(e.getCause() instanceof TopicExistsException)) {
                        throw e;
                    }
                }
            }

            Map<String, TopicDescription> described =
                    admin.describeTopics(topics).allTopicNames().get(30, TimeUnit.SECONDS);
            Map<String, NewPartitions> grow = new HashMap<>();
            described.forEach((name, description) -> {
                if (description.partitions().size() < partitions) {
                    grow.put(name, NewPartitions.increaseTo(partitions));
                }
            });
            if (!grow.isEmpty()) {
                admin.createPartitions(grow).all().get(60, TimeUnit.SECONDS);
                log("raised to " + partitions + " partitions: " + grow.keySet());
                described = admin.describeTopics(topics).allTopicNames().get(30, TimeUnit.SECONDS);
            }
            for (String topic : topics) {
                System.out.println(topic + " partitions=" + described.get(topic).partitions().size());
            }
        } finally {
            // Without a bound, close() waits for calls still retrying against a broker
            // that never came.
            admin.close(Duration.ofSeconds(5));
        }
        return 0;
    }
}
