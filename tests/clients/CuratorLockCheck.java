// Curator's InterProcessMutex contending with conclave's Mutex on one lock path. Used by
// tests/it/lock_interop.rs, which runs the Rust side at the same time and checks the result.
//
// Usage: java -cp <curator classpath>:. CuratorLockCheck HOSTS ROOT THREADS MILLIS MODE
//
// ROOT holds the lock directory ROOT/lock, the shared counter ROOT/counter (created by the Rust
// side, data "0") and the signal nodes. MODE is one of:
//
//   lock    First the layout phase: the Rust side already holds the lock. Curator must see one
//           participant and fail to acquire; then a Curator waiter queues behind the Rust holder,
//           and the participant list (Curator's order) is published in ROOT/java-waiting. Once
//           the Rust side releases, the waiter must get the lock. Then the contention phase.
//   nolock  Only the contention phase, without taking the lock (the negative control).
//
// Contention phase: creates ROOT/go (the Rust side starts when it appears), then THREADS threads,
// each with a session of its own, loop for MILLIS ms: acquire, run the critical section, release.
// The critical section creates the ephemeral ROOT/owner (NodeExists = someone else is inside),
// reads ROOT/counter, holds 1-5 ms, writes counter+1 with the version it read (BadVersion =
// someone else wrote meanwhile) and deletes ROOT/owner. Every successful write's old value is a
// ticket. Prints "acquisitions N", "tickets t1 t2 ...", "violations N" (then one line per
// violation) and "ok done"; violations are counted, not fatal: the caller judges them.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

public class CuratorLockCheck {
    static final List<Integer> tickets = new ArrayList<>();
    static final List<String> violations = new ArrayList<>();
    static int acquisitions = 0;

    static void check(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError(what);
        }
    }

    static CuratorFramework client(String hosts) throws Exception {
        CuratorFramework c = CuratorFrameworkFactory.builder()
                .connectString(hosts)
                .sessionTimeoutMs(10000)
                .connectionTimeoutMs(15000)
                .retryPolicy(new ExponentialBackoffRetry(100, 3))
                .build();
        c.start();
        check(c.blockUntilConnected(15, TimeUnit.SECONDS), "connect to " + hosts);
        return c;
    }

    /** The last path segment of each participant node, in Curator's order. */
    static List<String> names(Collection<String> nodes) {
        List<String> out = new ArrayList<>();
        for (String n : nodes) {
            out.add(n.substring(n.lastIndexOf('/') + 1));
        }
        return out;
    }

    static List<String> participants(InterProcessMutex m) throws Exception {
        return names(m.getParticipantNodes());
    }

    /** Curator sees the Rust holder, queues behind it, and gets the lock when it is released. */
    static void layout(CuratorFramework a, CuratorFramework b, String root) throws Exception {
        String lock = root + "/lock";
        InterProcessMutex probe = new InterProcessMutex(a, lock);
        List<String> held = participants(probe);
        System.out.println("participants-held " + String.join(",", held));
        check(held.size() == 1, "one participant (the Rust holder) before Curator queues: " + held);
        check(!probe.acquire(200, TimeUnit.MILLISECONDS), "Curator must not acquire while Rust holds the lock");
        check(participants(probe).equals(held), "a timed-out acquire leaves no node: " + participants(probe));

        // Curator's locks belong to the thread that acquired them: the waiter acquires and
        // releases on a thread of its own, and holds until this thread has looked.
        InterProcessMutex waiter = new InterProcessMutex(b, lock);
        CompletableFuture<Boolean> acquired = new CompletableFuture<>();
        CountDownLatch looked = new CountDownLatch(1);
        CompletableFuture<Void> released = CompletableFuture.runAsync(() -> {
            try {
                boolean got = waiter.acquire(30, TimeUnit.SECONDS);
                acquired.complete(got);
                if (got) {
                    looked.await(30, TimeUnit.SECONDS);
                    waiter.release();
                }
            } catch (Exception e) {
                acquired.completeExceptionally(e);
                throw new RuntimeException(e);
            }
        });
        List<String> waiting = participants(probe);
        long deadline = System.currentTimeMillis() + 10000;
        while (waiting.size() < 2 && System.currentTimeMillis() < deadline) {
            Thread.sleep(5);
            waiting = participants(probe);
        }
        System.out.println("participants-waiting " + String.join(",", waiting));
        check(waiting.size() == 2, "the Rust holder and the Curator waiter: " + waiting);
        check(waiting.get(0).equals(held.get(0)), "the Rust holder first in Curator's order: " + waiting);
        check(!acquired.isDone(), "the Curator waiter must wait while Rust holds the lock");
        a.create().forPath(root + "/java-waiting", String.join(",", waiting).getBytes(StandardCharsets.UTF_8));

        check(acquired.get(30, TimeUnit.SECONDS), "the Curator waiter acquires once Rust released");
        List<String> after = participants(probe);
        check(after.size() == 1 && after.get(0).equals(waiting.get(1)), "only the Curator holder is left: " + after);
        looked.countDown();
        released.get(30, TimeUnit.SECONDS);
        System.out.println("ok layout");
    }

    static synchronized void violation(String what) {
        violations.add(what);
    }

    /** The critical section; returns the ticket (the counter value it replaced) or -1. */
    static int critical(CuratorFramework c, String root, String who) throws Exception {
        boolean owner = true;
        try {
            c.create().withMode(CreateMode.EPHEMERAL).forPath(root + "/owner", who.getBytes(StandardCharsets.UTF_8));
        } catch (KeeperException.NodeExistsException e) {
            owner = false;
            violation(who + " entered while ROOT/owner existed");
        }
        Stat stat = new Stat();
        byte[] data = c.getData().storingStatIn(stat).forPath(root + "/counter");
        int n = Integer.parseInt(new String(data, StandardCharsets.UTF_8));
        Thread.sleep(1 + ThreadLocalRandom.current().nextInt(5));
        int ticket = -1;
        try {
            c.setData().withVersion(stat.getVersion()).forPath(root + "/counter",
                    Integer.toString(n + 1).getBytes(StandardCharsets.UTF_8));
            ticket = n;
        } catch (KeeperException.BadVersionException e) {
            violation(who + " lost its increment of " + n + " (BadVersion)");
        }
        if (owner) {
            c.delete().forPath(root + "/owner");
        }
        return ticket;
    }

    public static void main(String[] args) {
        try {
            contend(args);
        } catch (Throwable e) {
            // Exit even though a waiter or worker thread may still be running.
            e.printStackTrace();
            System.exit(1);
        }
    }

    static void contend(String[] args) throws Exception {
        String hosts = args[0];
        String root = args[1];
        int threads = Integer.parseInt(args[2]);
        long millis = Long.parseLong(args[3]);
        boolean locked = args[4].equals("lock");
        CuratorFramework[] clients = new CuratorFramework[Math.max(threads, 2)];
        for (int i = 0; i < clients.length; i++) {
            clients[i] = client(hosts);
        }
        System.out.println("ok connect");
        if (locked) {
            layout(clients[0], clients[1], root);
        }

        clients[0].create().forPath(root + "/go");
        long end = System.currentTimeMillis() + millis;
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> workers = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
            CuratorFramework c = clients[i];
            String who = "java-" + i;
            Thread t = new Thread(() -> {
                try {
                    InterProcessMutex m = new InterProcessMutex(c, root + "/lock");
                    while (System.currentTimeMillis() < end) {
                        if (locked) {
                            check(m.acquire(15, TimeUnit.SECONDS), who + " acquires within 15 s");
                        }
                        int ticket;
                        try {
                            ticket = critical(c, root, who);
                        } finally {
                            if (locked) {
                                m.release();
                            }
                        }
                        synchronized (CuratorLockCheck.class) {
                            acquisitions++;
                            if (ticket >= 0) {
                                tickets.add(ticket);
                            }
                        }
                    }
                } catch (Throwable e) {
                    failure.compareAndSet(null, e);
                }
            });
            t.start();
            workers.add(t);
        }
        for (Thread t : workers) {
            t.join();
        }
        if (failure.get() != null) {
            throw new RuntimeException(failure.get());
        }
        StringBuilder line = new StringBuilder("tickets");
        for (int t : tickets) {
            line.append(' ').append(t);
        }
        System.out.println("acquisitions " + acquisitions);
        System.out.println(line);
        System.out.println("violations " + violations.size());
        for (String v : violations) {
            System.out.println("violation " + v);
        }
        for (CuratorFramework c : clients) {
            c.close();
        }
        System.out.println("ok done");
    }
}
