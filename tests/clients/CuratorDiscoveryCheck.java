// Curator's service discovery (curator-x-discovery) beside conclave's `discovery` module under one
// base path (the layout: instance <id> of service <name> is the node BASE/<name>/<id>, its data
// the instance as JSON). Used by tests/it/discovery/interop.rs, which runs the Rust side beside
// a run of this program and checks what it printed.
//
// Usage: java -cp <curator and discovery classpath>:. CuratorDiscoveryCheck HOSTS BASE OP...
//
// BASE is a path of the whole tree (no chroot). The program starts a ServiceDiscovery<Map> on
// BASE (default serializer: JsonInstanceSerializer(Map.class)), then runs the OPs in order, on
// one session, all about the service "api":
//
//   session              prints "session 0x<the session id in hex>"
//   register:ID:PORT     registers the instance ID: address 10.0.0.5, port PORT, sslPort
//                        PORT + 1, payload a LinkedHashMap {weight: 3, zone: "eu"}, uriSpec
//                        "{scheme}://{address}:{port}/api", registrationTimeUTC 1700000000000,
//                        DYNAMIC. Prints "registered<TAB><instance>" and "json<TAB><the
//                        serializer's bytes, as UTF-8>".
//   query:MS:IDS         polls queryForInstances("api") (every 5 ms) until its ids are exactly
//                        IDS (comma-separated, empty for none). Prints "query<TAB><instance>"
//                        per instance (sorted by id), then "query-done <count>"; or after MS ms
//                        "timeout query <ids seen>" and exits 3.
//   provider:MS:N:IDS    starts a ServiceProvider (RoundRobinStrategy), waits as `query` until
//                        getAllInstances() (the enabled instances) has exactly the ids IDS, then
//                        picks N times: "pick<TAB><instance>" each; closes it.
//   cache                starts a ServiceCache of "api" with a listener that records the ids it
//                        holds after every change (and once at the start).
//   cachesee:MS:IDS      waits as `query` until the cache holds exactly IDS; prints
//                        "cache<TAB><instance>" per instance, then "cache-done <count>" (or
//                        "timeout cache <ids>" and exits 3).
//   history              prints "history <ids>|<ids>|..." : what the cache's listener recorded,
//                        consecutive repeats left out, each entry the ids comma-separated.
//   handover:TAG         hands the turn to the Rust side: creates the ephemeral BASE-TAG-ready,
//                        waits (at most 30 s) until the Rust side has created BASE-TAG-go.
//   unregister:ID        unregisterService(the instance ID registered above); "unregistered ID"
//
// <instance> is every field of a ServiceInstance as decoded, TAB-separated KEY=VALUE: name, id,
// address, port, sslPort (null when absent), payloadClass (the payload's Java class, or null),
// payload (the payload as plain JSON), registrationTimeUTC, serviceType, uriParts (the uriSpec's
// parts as JSON, or null), uri (buildUriSpec()), enabled.
//
// Prints "ok done" at the end (after closing everything); exits 1 (with a stack trace) when a
// step fails.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeSet;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.curator.x.discovery.ServiceCache;
import org.apache.curator.x.discovery.ServiceDiscovery;
import org.apache.curator.x.discovery.ServiceDiscoveryBuilder;
import org.apache.curator.x.discovery.ServiceInstance;
import org.apache.curator.x.discovery.ServiceProvider;
import org.apache.curator.x.discovery.ServiceType;
import org.apache.curator.x.discovery.UriSpec;
import org.apache.curator.x.discovery.details.JsonInstanceSerializer;
import org.apache.curator.x.discovery.details.ServiceCacheListener;
import org.apache.curator.x.discovery.strategies.RoundRobinStrategy;
import org.apache.zookeeper.CreateMode;

@SuppressWarnings({"rawtypes", "unchecked"})
public class CuratorDiscoveryCheck extends CuratorSupport {
    /** The service every op is about. */
    static final String SERVICE = "api";
    /** Plain JSON, for printing payloads and URI parts. */
    static final ObjectMapper JSON = new ObjectMapper();

    /** A timeout of a waiting op: exit 3. */
    static class Timeout extends Exception {
    }

    /** Runs the check; a wait that timed out exits 3, any other failure 1 with its stack trace. */
    public static void main(String[] args) {
        exitWith(() -> {
            try {
                run(args);
                return 0;
            } catch (Timeout e) {
                return 3;
            }
        });
    }

    /** Parses the arguments, connects, starts the discovery and runs the OPs in order. */
    static void run(String[] args) throws Exception {
        check(args.length >= 2, "usage: CuratorDiscoveryCheck HOSTS BASE OP...");
        CuratorFramework c = client(args[0]);
        String base = args[1];
        ServiceDiscovery<Map> discovery = ServiceDiscoveryBuilder.builder(Map.class)
                .client(c)
                .basePath(base)
                .build();
        discovery.start();
        Map<String, ServiceInstance<Map>> registered = new HashMap<>();
        ServiceCache<Map> cache = null;
        List<String> history = new ArrayList<>();
        for (int i = 2; i < args.length; i++) {
            String op = args[i];
            String[] parts = op.split(":", -1);
            switch (parts[0]) {
                case "session":
                    System.out.println("session 0x" + Long.toHexString(c.getZookeeperClient().getZooKeeper().getSessionId()));
                    break;
                case "register": {
                    check(parts.length == 3, "register:ID:PORT: " + op);
                    int port = Integer.parseInt(parts[2]);
                    Map<String, Object> payload = new LinkedHashMap<>();
                    payload.put("weight", 3);
                    payload.put("zone", "eu");
                    ServiceInstance<Map> instance = ServiceInstance.<Map>builder()
                            .name(SERVICE)
                            .id(parts[1])
                            .address("10.0.0.5")
                            .port(port)
                            .sslPort(port + 1)
                            .payload(payload)
                            .registrationTimeUTC(1700000000000L)
                            .serviceType(ServiceType.DYNAMIC)
                            .uriSpec(new UriSpec("{scheme}://{address}:{port}/api"))
                            .build();
                    discovery.registerService(instance);
                    registered.put(parts[1], instance);
                    System.out.println("registered\t" + describe(instance));
                    byte[] json = new JsonInstanceSerializer<>(Map.class).serialize(instance);
                    System.out.println("json\t" + new String(json, StandardCharsets.UTF_8));
                    break;
                }
                case "query": {
                    check(parts.length == 3, "query:MS:IDS: " + op);
                    long deadline = System.currentTimeMillis() + Long.parseLong(parts[1]);
                    TreeSet<String> want = ids(parts[2]);
                    while (true) {
                        Collection<ServiceInstance<Map>> now = discovery.queryForInstances(SERVICE);
                        if (idsOf(now).equals(want)) {
                            print("query", now);
                            break;
                        }
                        waitOrTimeout(deadline, "query", now);
                    }
                    break;
                }
                case "provider": {
                    check(parts.length == 4, "provider:MS:N:IDS: " + op);
                    long deadline = System.currentTimeMillis() + Long.parseLong(parts[1]);
                    int picks = Integer.parseInt(parts[2]);
                    TreeSet<String> want = ids(parts[3]);
                    ServiceProvider<Map> provider = discovery.serviceProviderBuilder()
                            .serviceName(SERVICE)
                            .providerStrategy(new RoundRobinStrategy<>())
                            .build();
                    provider.start();
                    while (true) {
                        Collection<ServiceInstance<Map>> now = provider.getAllInstances();
                        if (idsOf(now).equals(want)) {
                            break;
                        }
                        waitOrTimeout(deadline, "provider", now);
                    }
                    StringBuilder lines = new StringBuilder();
                    for (int n = 0; n < picks; n++) {
                        lines.append("pick\t").append(describe(provider.getInstance())).append('\n');
                    }
                    System.out.print(lines);
                    provider.close();
                    break;
                }
                case "cache": {
                    check(cache == null, "one cache");
                    ServiceCache<Map> started = discovery.serviceCacheBuilder().name(SERVICE).build();
                    started.addListener(new ServiceCacheListener() {
                        @Override
                        public void cacheChanged() {
                            record(history, started.getInstances());
                        }

                        @Override
                        public void stateChanged(CuratorFramework client, ConnectionState newState) {
                        }
                    });
                    started.start();
                    record(history, started.getInstances());
                    cache = started;
                    break;
                }
                case "cachesee": {
                    check(parts.length == 3 && cache != null, "cachesee:MS:IDS after cache: " + op);
                    long deadline = System.currentTimeMillis() + Long.parseLong(parts[1]);
                    TreeSet<String> want = ids(parts[2]);
                    while (true) {
                        List<ServiceInstance<Map>> now = cache.getInstances();
                        if (idsOf(now).equals(want)) {
                            print("cache", now);
                            break;
                        }
                        waitOrTimeout(deadline, "cache", now);
                    }
                    break;
                }
                case "history":
                    synchronized (history) {
                        System.out.println("history " + String.join("|", history));
                    }
                    break;
                case "handover":
                    handOver(c, base + "-" + parts[1]);
                    break;
                case "unregister": {
                    ServiceInstance<Map> instance = registered.remove(parts[1]);
                    check(instance != null, "unregister:ID of a registered instance: " + op);
                    discovery.unregisterService(instance);
                    System.out.println("unregistered " + parts[1]);
                    break;
                }
                default:
                    throw new IllegalArgumentException("unknown op " + op);
            }
        }
        if (cache != null) {
            cache.close();
        }
        discovery.close();
        c.close();
        System.out.println("ok done");
    }

    /** The ids `a,b,c` (none for an empty string). */
    static TreeSet<String> ids(String spec) {
        TreeSet<String> ids = new TreeSet<>();
        for (String id : spec.split(",")) {
            if (!id.isEmpty()) {
                ids.add(id);
            }
        }
        return ids;
    }

    /** The ids of `instances`, sorted. */
    static TreeSet<String> idsOf(Collection<ServiceInstance<Map>> instances) {
        TreeSet<String> ids = new TreeSet<>();
        for (ServiceInstance<Map> i : instances) {
            ids.add(i.getId());
        }
        return ids;
    }

    /** Records the ids the cache holds, unless they are the last recorded. */
    static void record(List<String> history, Collection<ServiceInstance<Map>> instances) {
        String now = String.join(",", idsOf(instances));
        synchronized (history) {
            if (history.isEmpty() || !history.get(history.size() - 1).equals(now)) {
                history.add(now);
            }
        }
    }

    /** Sleeps 5 ms, or (past the deadline) prints "timeout WHAT <ids>" and ends the run with 3. */
    static void waitOrTimeout(long deadline, String what, Collection<ServiceInstance<Map>> now) throws Exception {
        if (System.currentTimeMillis() >= deadline) {
            System.out.println("timeout " + what + " " + String.join(",", idsOf(now)));
            throw new Timeout();
        }
        Thread.sleep(5);
    }

    /** "TAG<TAB><instance>" per instance (by id), then "TAG-done <count>". */
    static void print(String tag, Collection<ServiceInstance<Map>> instances) throws Exception {
        List<ServiceInstance<Map>> sorted = new ArrayList<>(instances);
        sorted.sort(Comparator.comparing(ServiceInstance::getId));
        StringBuilder lines = new StringBuilder();
        for (ServiceInstance<Map> i : sorted) {
            lines.append(tag).append('\t').append(describe(i)).append('\n');
        }
        lines.append(tag).append("-done ").append(sorted.size()).append('\n');
        System.out.print(lines);
    }

    /** Every field of an instance as decoded: TAB-separated KEY=VALUE. */
    static String describe(ServiceInstance<?> i) throws Exception {
        Object payload = i.getPayload();
        List<String> fields = new ArrayList<>();
        fields.add("name=" + i.getName());
        fields.add("id=" + i.getId());
        fields.add("address=" + i.getAddress());
        fields.add("port=" + i.getPort());
        fields.add("sslPort=" + i.getSslPort());
        fields.add("payloadClass=" + (payload == null ? "null" : payload.getClass().getName()));
        fields.add("payload=" + JSON.writeValueAsString(payload));
        fields.add("registrationTimeUTC=" + i.getRegistrationTimeUTC());
        fields.add("serviceType=" + i.getServiceType());
        fields.add("uriParts=" + (i.getUriSpec() == null ? "null" : JSON.writeValueAsString(i.getUriSpec().getParts())));
        fields.add("uri=" + i.buildUriSpec());
        fields.add("enabled=" + i.isEnabled());
        return String.join("\t", fields);
    }

    /** Creates the ephemeral `tag`-ready and waits (at most 30 s) until `tag`-go exists. */
    static void handOver(CuratorFramework c, String tag) throws Exception {
        c.create().creatingParentContainersIfNeeded().withMode(CreateMode.EPHEMERAL).forPath(tag + "-ready");
        long deadline = System.currentTimeMillis() + 30_000;
        while (c.checkExists().forPath(tag + "-go") == null) {
            check(System.currentTimeMillis() < deadline, "the Rust side said go at " + tag + " within 30 s");
            Thread.sleep(2);
        }
    }
}
