// Curator's CuratorCache (the cache Curator 5.x recommends: one persistent recursive watch, a
// getData per event) on the tree conclave's cache::TreeCache follows. Used by
// tests/it/cache/interop.rs, which makes the tree and the writes, and compares what this program
// printed with its own cache and with the server.
//
// Usage: java -cp <curator classpath>:. CuratorCacheCheck HOSTS TREE MARKER
//
// TREE and MARKER are paths of the whole tree (no chroot); MARKER is under TREE, and is the last
// node the Rust side creates. The program
//
//   1. starts CuratorCache.build(client, TREE) with one listener, built by
//      CuratorCacheListener.builder().forAll(...).forInitialized(...), that records every event;
//   2. waits (at most 20 s) until the cache is initialized; the cache's content at that moment
//      (taken in the initialized callback) is "the initial view";
//   3. creates the ephemeral TREE-init-ready (beside TREE, not under it): the Rust side's signal to
//      start writing;
//   4. waits (at most 30 s) until the listener is told MARKER was created; the cache's content
//      at that moment (taken in that callback) is "the final view" (every change the Rust side
//      made before MARKER was notified, and read, before MARKER's creation was);
//   5. waits 200 ms more (so that any event coming after MARKER's is recorded too), closes the
//      cache and the client, and prints, in this order:
//
//        initial PATH DATA VERSION CZXID MZXID     the initial view, one node a line, by path
//        event TYPE PATH DATA VERSION CZXID MZXID  each event, in the order the listener was
//                                                  told (TYPE: created, changed, deleted; the
//                                                  node is the new one, the old one for deleted)
//        event initialized                         where the initialized callback came
//        final PATH DATA VERSION CZXID MZXID       the final view, one node a line, by path
//        ok done
//
// DATA is the node's data in lowercase hex, "-" when empty (or null). The listener is called on
// one thread (Curator's runSafe executor), in the order the cache changed its storage.
//
// Exits 1 (with a stack trace) when a step fails or times out.

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.CuratorCache;
import org.apache.curator.framework.recipes.cache.CuratorCacheListener;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.data.Stat;

public class CuratorCacheCheck extends CuratorSupport {
    /** Runs the check; any failure exits 1 with its stack trace. */
    public static void main(String[] args) {
        exitWith(() -> {
            run(args);
            return 0;
        });
    }

    /** The data as lowercase hex, "-" when empty or null. */
    static String hex(byte[] data) {
        if (data == null || data.length == 0) {
            return "-";
        }
        StringBuilder s = new StringBuilder();
        for (byte b : data) {
            s.append(String.format("%02x", b & 0xff));
        }
        return s.toString();
    }

    /** "PATH DATA VERSION CZXID MZXID". */
    static String describe(ChildData node) {
        Stat stat = node.getStat();
        return node.getPath() + " " + hex(node.getData()) + " " + stat.getVersion() + " " + stat.getCzxid() + " "
                + stat.getMzxid();
    }

    /** The cache's content as "PREFIX PATH DATA VERSION CZXID MZXID" lines, by path. */
    static List<String> view(CuratorCache cache, String prefix) {
        Map<String, String> byPath = new TreeMap<>();
        cache.stream().forEach(node -> byPath.put(node.getPath(), prefix + " " + describe(node)));
        return new ArrayList<>(byPath.values());
    }

    static void run(String[] args) throws Exception {
        check(args.length == 3, "usage: CuratorCacheCheck HOSTS TREE MARKER");
        String tree = args[1];
        String marker = args[2];
        CuratorFramework c = client(args[0]);
        CuratorCache cache = CuratorCache.build(c, tree);

        List<String> events = new ArrayList<>();
        List<String> initial = new ArrayList<>();
        List<String> last = new ArrayList<>();
        CountDownLatch initialized = new CountDownLatch(1);
        CountDownLatch markerSeen = new CountDownLatch(1);
        CuratorCacheListener listener = CuratorCacheListener.builder()
                .forAll((type, oldNode, node) -> {
                    String name;
                    ChildData reported = node;
                    switch (type) {
                        case NODE_CREATED:
                            name = "created";
                            break;
                        case NODE_CHANGED:
                            name = "changed";
                            break;
                        case NODE_DELETED:
                            name = "deleted";
                            reported = oldNode;
                            break;
                        default:
                            name = "unknown-" + type;
                    }
                    synchronized (events) {
                        events.add("event " + name + " " + describe(reported));
                        if (type == CuratorCacheListener.Type.NODE_CREATED && node.getPath().equals(marker)
                                && markerSeen.getCount() > 0) {
                            last.addAll(view(cache, "final"));
                            markerSeen.countDown();
                        }
                    }
                })
                .forInitialized(() -> {
                    synchronized (events) {
                        events.add("event initialized");
                        if (initialized.getCount() > 0) {
                            initial.addAll(view(cache, "initial"));
                            initialized.countDown();
                        }
                    }
                })
                .build();
        cache.listenable().addListener(listener);
        cache.start();
        check(initialized.await(20, TimeUnit.SECONDS), "the cache was initialized within 20 s");

        c.create().withMode(CreateMode.EPHEMERAL).forPath(tree + "-init-ready");
        check(markerSeen.await(30, TimeUnit.SECONDS), "the cache saw " + marker + " created within 30 s");
        Thread.sleep(200);
        cache.close();
        c.close();

        StringBuilder out = new StringBuilder();
        synchronized (events) {
            for (String line : initial) {
                out.append(line).append('\n');
            }
            for (String line : events) {
                out.append(line).append('\n');
            }
            for (String line : last) {
                out.append(line).append('\n');
            }
        }
        System.out.print(out);
        System.out.println("ok done");
    }
}
