// Curator's SimpleDistributedQueue beside conclave's Queue on the same path (both use the layout
// PATH/qn-<seq>, data = payload). Used by tests/it/queue/interop.rs, which runs the Rust producers
// and consumers and checks what this program printed.
//
// Usage: java -cp <curator classpath>:. CuratorQueueCheck HOSTS PATH MODE COUNT
//
// PATH is a path of the whole tree (no chroot). MODE is one of:
//
//   offer    Offers COUNT items "java-0" .. "java-<COUNT-1>" to PATH, in that order.
//   consume  Takes COUNT items, alternately with take() and poll(10 s) (both wait for a put when
//            the queue is empty), printing "item <payload>" for each; then poll() (no wait) must
//            find the queue empty, and prints "ok empty".
//   race     Consumes beside a Rust consumer: finds the queue empty with poll(), creates the
//            ephemeral PATH-ready (the Rust side starts producing when it appears), then takes
//            items with poll(200 ms) until the Rust side has created PATH-done (once every item
//            was put and its own consumer found none left), and after that with poll() until one
//            finds the queue empty (the done node was seen before that poll, so every item had
//            been put), printing "item <payload>" for each. More than COUNT items, or no end
//            within 50 s, is a failure.
//
// Curator 5 creates a missing queue node (and its parents) as a container, which the server
// deletes once it has had items and is empty; the Rust side copes with that (its puts create the
// node again).
//
// Prints "ok done" at the end; exits 1 (with a stack trace) when a step fails.

import java.nio.charset.StandardCharsets;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.queue.SimpleDistributedQueue;
import org.apache.zookeeper.CreateMode;

public class CuratorQueueCheck extends CuratorSupport {
    /** Runs the check; any failure exits 1 with its stack trace. */
    public static void main(String[] args) {
        exitWith(() -> {
            run(args);
            return 0;
        });
    }

    /** Prints a consumed item's line. */
    static void printItem(byte[] data) {
        System.out.println("item " + new String(data, StandardCharsets.UTF_8));
    }

    /** Parses the arguments, connects and runs MODE. */
    static void run(String[] args) throws Exception {
        check(args.length == 4, "usage: CuratorQueueCheck HOSTS PATH MODE COUNT");
        String hosts = args[0];
        String path = args[1];
        String mode = args[2];
        int count = Integer.parseInt(args[3]);
        CuratorFramework c = client(hosts);
        System.out.println("ok connect");
        SimpleDistributedQueue queue = new SimpleDistributedQueue(c, path);
        switch (mode) {
            case "offer":
                offer(queue, count);
                break;
            case "consume":
                consume(queue, count);
                break;
            case "race":
                race(c, queue, path, count);
                break;
            default:
                throw new IllegalArgumentException("unknown mode " + mode);
        }
        c.close();
        System.out.println("ok done");
    }

    /** Offers "java-0" .. "java-<count-1>", in order. */
    static void offer(SimpleDistributedQueue queue, int count) throws Exception {
        for (int i = 0; i < count; i++) {
            check(queue.offer(("java-" + i).getBytes(StandardCharsets.UTF_8)), "offer java-" + i);
        }
        System.out.println("ok offered " + count);
    }

    /** Takes `count` items (take() and poll(10 s) in turn), then finds the queue empty. */
    static void consume(SimpleDistributedQueue queue, int count) throws Exception {
        for (int i = 0; i < count; i++) {
            byte[] data = (i % 2 == 0) ? queue.take() : queue.poll(10, TimeUnit.SECONDS);
            check(data != null, "item " + i + " of " + count + " within 10 s");
            printItem(data);
        }
        check(queue.poll() == null, "the queue is empty after " + count + " items");
        System.out.println("ok empty");
    }

    /** Consumes beside the Rust consumer until PATH-done was seen and the queue is empty. */
    static void race(CuratorFramework c, SimpleDistributedQueue queue, String path, int count) throws Exception {
        // A first poll before the Rust side starts (it also loads the classes the race uses).
        check(queue.poll() == null, "the queue is empty before the Rust side puts");
        c.create().creatingParentsIfNeeded().withMode(CreateMode.EPHEMERAL).forPath(path + "-ready");
        long deadline = System.currentTimeMillis() + 50_000;
        int got = 0;
        for (;;) {
            check(System.currentTimeMillis() < deadline, "the race ended within 50 s");
            boolean done = c.checkExists().forPath(path + "-done") != null;
            byte[] data = done ? queue.poll() : queue.poll(200, TimeUnit.MILLISECONDS);
            if (data != null) {
                got++;
                check(got <= count, "at most " + count + " items");
                printItem(data);
            } else if (done) {
                break;
            }
        }
        System.out.println("ok consumed " + got);
    }
}
