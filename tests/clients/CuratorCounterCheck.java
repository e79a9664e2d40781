// Curator's DistributedAtomicLong beside conclave's atomic::Counter on the same node (both use the
// layout: the node's data is the value as 8 bytes big-endian, a missing or empty node is 0). Used
// by tests/it/atomic/interop.rs, which runs the Rust side between and beside runs of this program
// and checks what it printed.
//
// Usage: java -cp <curator classpath>:. CuratorCounterCheck HOSTS PATH OP...
//
// PATH is a path of the whole tree (no chroot). Every counter uses the retry policy
// RetryNTimes(1000, 1). The OPs run in order on the counter at PATH, each printing one line:
//
//   get          get().postValue()                    prints "get <value>"
//   init:V       initialize(V)                        prints "init <created>"
//   set:V        forceSet(V)                          prints "set <V>"
//   add:D        add(D)                               prints "add <succeeded> <pre> <post>"
//   cas:E:N      compareAndSet(E, N)                  prints "cas <succeeded> <pre> <post>"
//   path:P       the following ops use the counter at P instead (prints nothing)
//   race:N       increments beside Rust writers: warms up (100 increments of PATH-warmup),
//                creates the ephemeral PATH-ready, waits (at most 30 s) until the Rust side has
//                created PATH-go, then calls increment() N times, printing "inc <post>" for each
//                that succeeded, then "race <succeeded> <failed>".
//
// (A failed add or cas prints Curator's values as they are: pre is the value read, post 0.)
//
// Prints "ok done" at the end; exits 1 (with a stack trace) when a step fails.


import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.atomic.AtomicValue;
import org.apache.curator.framework.recipes.atomic.DistributedAtomicLong;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.CreateMode;

public class CuratorCounterCheck extends CuratorSupport {
    /** Increments of PATH-warmup before a race. */
    static final int WARMUP = 100;

    /** The counter at `path`, with the retry policy every counter of this program uses. */
    static DistributedAtomicLong counter(CuratorFramework c, String path) {
        return new DistributedAtomicLong(c, path, new RetryNTimes(1000, 1));
    }

    /** Runs the check; any failure exits 1 with its stack trace. */
    public static void main(String[] args) {
        exitWith(() -> {
            run(args);
            return 0;
        });
    }

    /** The line of an add or cas result. */
    static String result(String op, AtomicValue<Long> v) {
        return op + " " + v.succeeded() + " " + v.preValue() + " " + v.postValue();
    }

    /** Parses the arguments, connects and runs the OPs in order. */
    static void run(String[] args) throws Exception {
        check(args.length >= 3, "usage: CuratorCounterCheck HOSTS PATH OP...");
        CuratorFramework c = client(args[0]);
        String path = args[1];
        DistributedAtomicLong counter = counter(c, path);
        for (int i = 2; i < args.length; i++) {
            String[] op = args[i].split(":");
            switch (op[0]) {
                case "get":
                    System.out.println("get " + counter.get().postValue());
                    break;
                case "init":
                    System.out.println("init " + counter.initialize(Long.parseLong(op[1])));
                    break;
                case "set":
                    counter.forceSet(Long.parseLong(op[1]));
                    System.out.println("set " + Long.parseLong(op[1]));
                    break;
                case "add":
                    System.out.println(result("add", counter.add(Long.parseLong(op[1]))));
                    break;
                case "cas":
                    System.out.println(result("cas", counter.compareAndSet(Long.parseLong(op[1]), Long.parseLong(op[2]))));
                    break;
                case "path":
                    path = op[1];
                    counter = counter(c, path);
                    break;
                case "race":
                    race(c, counter, path, Integer.parseInt(op[1]));
                    break;
                default:
                    throw new IllegalArgumentException("unknown op " + args[i]);
            }
        }
        c.close();
        System.out.println("ok done");
    }

    /** Increments `count` times beside the Rust writers, once they were told to start. */
    static void race(CuratorFramework c, DistributedAtomicLong counter, String path, int count) throws Exception {
        // Warm-up increments of another counter before the Rust side starts (they load the
        // classes the race uses, and get the JIT going), so that the race starts at full speed.
        DistributedAtomicLong warmup = counter(c, path + "-warmup");
        for (int i = 0; i < WARMUP; i++) {
            check(warmup.increment().succeeded(), "warm-up increment " + i);
        }
        c.create().creatingParentContainersIfNeeded().withMode(CreateMode.EPHEMERAL).forPath(path + "-ready");
        long deadline = System.currentTimeMillis() + 30_000;
        while (c.checkExists().forPath(path + "-go") == null) {
            check(System.currentTimeMillis() < deadline, "the Rust side said go within 30 s");
            Thread.sleep(2);
        }
        int succeeded = 0;
        int failed = 0;
        StringBuilder lines = new StringBuilder();
        for (int i = 0; i < count; i++) {
            AtomicValue<Long> v = counter.increment();
            if (v.succeeded()) {
                succeeded++;
                lines.append("inc ").append(v.postValue()).append('\n');
            } else {
                failed++;
            }
        }
        System.out.print(lines);
        System.out.println("race " + succeeded + " " + failed);
    }
}
