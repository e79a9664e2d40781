// Curator's SharedCount beside conclave's atomic::SharedCount on the same node (both use the
// layout: the node's data is the count as 4 bytes big-endian, the version is the node's data
// version). Used by tests/it/atomic/interop_shared.rs, which runs the Rust side between and
// beside runs of this program and checks what it printed.
//
// Usage: java -cp <curator classpath>:. CuratorSharedCountCheck HOSTS PATH OP...
//
// PATH is a path of the whole tree (no chroot). The OPs run in order on "the count", a
// SharedCount at PATH that `start` starts, each printing at most one line:
//
//   start:S      new SharedCount(PATH, seed S).start() (creating the node, with its parents as
//                containers, with S if it is missing; closing the previous count, if any)
//                                                   prints "start <count> <version>"
//   get          getVersionedValue(), kept as "the value read"
//                                                   prints "get <count> <version>"
//   set:N        setCount(N)                        prints "set <N> <version after>"
//   tryset:N     trySetCount(the value read, N)     prints "tryset <succeeded>"
//   sets:A:B     setCount(A), then A+1 (or A-1) and so on up (or down) to B
//                                                   prints "sets <how many> <version after>"
//   sync:TAG     hands the turn to the Rust side: creates the ephemeral PATH-TAG-ready, waits
//                (at most 30 s) until the Rust side has created PATH-TAG-go, then until the
//                count's cached value caught up with the node's version (at most 10 s), so
//                that what the Rust side wrote meanwhile is what `get` reads next. Prints
//                nothing.
//   path:P       closes the count; the following ops use P instead (start it again)
//   race:K       increments beside Rust writers: warms up (100 increments of PATH-warmup),
//                creates the ephemeral PATH-race-ready, waits (at most 30 s) until the Rust side
//                has created PATH-race-go, then increments K times, each time reading the
//                versioned value and trySetCount(it, value + 1) until one succeeds, printing
//                "inc <post>" for each, then "race <K> <failed trySetCount calls>"
//   watch:LAST   adds a listener to the count, creates the ephemeral PATH-watch-ready, and waits
//                (at most 30 s) until the listener was told LAST; prints "saw <count>" for every
//                call of the listener, in order, then "watch <calls>"
//
// (start and get print "error <exception class>" instead of "<count> <version>" when the node's
// data is too short to be a count: Curator decodes the data's first 4 bytes, ignoring any more.)
//
// Curator's trySetCount compares the value read with the count's cached value first (which the
// count's watch keeps up to date) and only then sets the node at the version read: a stale value
// read fails at either step, and nothing is written.
//
// Prints "ok done" at the end; exits 1 (with a stack trace) when a step fails.

import java.util.ArrayList;
import java.util.List;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.shared.SharedCount;
import org.apache.curator.framework.recipes.shared.SharedCountListener;
import org.apache.curator.framework.recipes.shared.SharedCountReader;
import org.apache.curator.framework.recipes.shared.VersionedValue;
import org.apache.curator.framework.state.ConnectionState;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.data.Stat;

public class CuratorSharedCountCheck extends CuratorSupport {
    /** Increments of PATH-warmup before a race. */
    static final int WARMUP = 100;

    /** A started SharedCount at `path` with the seed `seed`. */
    static SharedCount started(CuratorFramework c, String path, int seed) throws Exception {
        SharedCount count = new SharedCount(c, path, seed);
        count.start();
        return count;
    }

    /** Runs the check; any failure exits 1 with its stack trace. */
    public static void main(String[] args) {
        exitWith(() -> {
            run(args);
            return 0;
        });
    }

    /** Parses the arguments, connects and runs the OPs in order. */
    static void run(String[] args) throws Exception {
        check(args.length >= 3, "usage: CuratorSharedCountCheck HOSTS PATH OP...");
        CuratorFramework c = client(args[0]);
        String path = args[1];
        SharedCount count = null;
        VersionedValue<Integer> read = null;
        for (int i = 2; i < args.length; i++) {
            String[] op = args[i].split(":");
            check(count != null || op[0].equals("start") || op[0].equals("path"), "no count started before " + args[i]);
            switch (op[0]) {
                case "start": {
                    if (count != null) {
                        count.close();
                    }
                    count = started(c, path, Integer.parseInt(op[1]));
                    System.out.println("start " + describe(count));
                    break;
                }
                case "get":
                    try {
                        read = count.getVersionedValue();
                        System.out.println("get " + read.getValue() + " " + read.getVersion());
                    } catch (RuntimeException e) {
                        read = null;
                        System.out.println("get error " + e.getClass().getName());
                    }
                    break;
                case "set": {
                    int n = Integer.parseInt(op[1]);
                    count.setCount(n);
                    System.out.println("set " + n + " " + count.getVersionedValue().getVersion());
                    break;
                }
                case "tryset":
                    check(read != null, "tryset needs a get before it");
                    System.out.println("tryset " + count.trySetCount(read, Integer.parseInt(op[1])));
                    break;
                case "sets": {
                    int from = Integer.parseInt(op[1]);
                    int to = Integer.parseInt(op[2]);
                    int step = from <= to ? 1 : -1;
                    int n = 0;
                    for (int v = from; ; v += step) {
                        count.setCount(v);
                        n++;
                        if (v == to) {
                            break;
                        }
                    }
                    System.out.println("sets " + n + " " + count.getVersionedValue().getVersion());
                    break;
                }
                case "sync":
                    handOver(c, path + "-" + op[1]);
                    catchUp(c, count, path);
                    break;
                case "path":
                    if (count != null) {
                        count.close();
                        count = null;
                    }
                    read = null;
                    path = op[1];
                    break;
                case "race":
                    race(c, count, path, Integer.parseInt(op[1]));
                    break;
                case "watch":
                    watch(c, count, path, Integer.parseInt(op[1]));
                    break;
                default:
                    throw new IllegalArgumentException("unknown op " + args[i]);
            }
        }
        if (count != null) {
            count.close();
        }
        c.close();
        System.out.println("ok done");
    }

    /** "<count> <version>", or "error <exception class>" when the data is not a count (Curator
     * decodes it when the value is asked for: ByteBuffer.getInt of the data's first 4 bytes). */
    static String describe(SharedCount count) {
        try {
            VersionedValue<Integer> v = count.getVersionedValue();
            return v.getValue() + " " + v.getVersion();
        } catch (RuntimeException e) {
            return "error " + e.getClass().getName();
        }
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

    /** Waits (at most 10 s) until the count's cached version is the node's. */
    static void catchUp(CuratorFramework c, SharedCount count, String path) throws Exception {
        Stat stat = c.checkExists().forPath(path);
        check(stat != null, path + " exists");
        long deadline = System.currentTimeMillis() + 10_000;
        while (count.getVersionedValue().getVersion() < stat.getVersion()) {
            check(System.currentTimeMillis() < deadline, "the count's watch caught up within 10 s");
            Thread.sleep(2);
        }
    }

    /** One increment: read, trySetCount(read + 1), again until it succeeds; returns the post-value
     * and adds the failed attempts to `failed[0]`. */
    static int increment(SharedCount count, int[] failed) throws Exception {
        while (true) {
            VersionedValue<Integer> v = count.getVersionedValue();
            int post = v.getValue() + 1;
            if (count.trySetCount(v, post)) {
                return post;
            }
            failed[0]++;
        }
    }

    /** Increments `times` times beside the Rust writers, once they were told to start. */
    static void race(CuratorFramework c, SharedCount count, String path, int times) throws Exception {
        // Warm-up increments of another count before the Rust side starts (they load the classes
        // the race uses, and get the JIT going), so that the race starts at full speed.
        SharedCount warmup = started(c, path + "-warmup", 0);
        int[] ignored = {0};
        for (int i = 0; i < WARMUP; i++) {
            increment(warmup, ignored);
        }
        warmup.close();
        handOver(c, path + "-race");
        int[] failed = {0};
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < times; i++) {
            lines.append("inc ").append(increment(count, failed)).append('\n');
        }
        System.out.print(lines);
        System.out.println("race " + times + " " + failed[0]);
    }

    /** Prints what a listener is told until it was told `last` (at most 30 s). */
    static void watch(CuratorFramework c, SharedCount count, String path, int last) throws Exception {
        List<Integer> seen = new ArrayList<>();
        count.addListener(new SharedCountListener() {
            @Override
            public void countHasChanged(SharedCountReader reader, int newCount) {
                synchronized (seen) {
                    seen.add(newCount);
                    seen.notifyAll();
                }
            }

            @Override
            public void stateChanged(CuratorFramework client, ConnectionState newState) {
            }
        });
        c.create().creatingParentContainersIfNeeded().withMode(CreateMode.EPHEMERAL).forPath(path + "-watch-ready");
        long deadline = System.currentTimeMillis() + 30_000;
        List<Integer> calls;
        synchronized (seen) {
            while (!seen.contains(last)) {
                long left = deadline - System.currentTimeMillis();
                check(left > 0, "the listener was told " + last + " within 30 s (it was told " + seen + ")");
                seen.wait(left);
            }
            calls = new ArrayList<>(seen);
        }
        StringBuilder lines = new StringBuilder();
        for (int v : calls) {
            lines.append("saw ").append(v).append('\n');
        }
        System.out.print(lines);
        System.out.println("watch " + calls.size());
    }
}
