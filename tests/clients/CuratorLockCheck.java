// Curator's lock and election recipes contending with conclave's on the same paths:
// InterProcessMutex against conclave::lock::Mutex, InterProcessReadWriteLock against RwLock,
// InterProcessSemaphoreV2 against Semaphore, LeaderLatch and LeaderSelector against
// conclave::leader::Election (with the latch and the selector layouts).
// Used by tests/it/lock/interop.rs (and its submodules) and tests/it/leader/interop.rs, which run
// the Rust side at the same time and check the result.
//
// Usage: java -cp <curator classpath>:. CuratorLockCheck HOSTS ROOT RECIPE THREADS MILLIS MODE
//
// RECIPE is mutex (lock directory ROOT/lock), rwlock (ROOT/rw), semaphore (ROOT/sem, 2
// leases), latch or selector (election path ROOT/leader; a leader runs the exclusive section). ROOT also holds the shared state the Rust side created (ROOT/counter, data "0";
// ROOT/readers, empty; ROOT/holders, data "") and the signal nodes both sides create to take
// turns. MODE is one of:
//
//   lock    First the layout phase of RECIPE (see mutexLayout, rwLayout, semaphoreLayout): the
//           two sides take turns holding and waiting, each checking what the other created,
//           through the signal nodes. Then the contention phase.
//   nolock  Only the contention phase, without taking the lock (the negative control).
//
// Contention phase: creates ROOT/go (the Rust side starts when it appears), then THREADS threads,
// each with a session of its own, loop for MILLIS ms: acquire, run the critical section of the
// recipe, release. The sections are the same as the Rust side's:
//
//   exclusive (mutex holders, rwlock writers) creates the ephemeral ROOT/owner (NodeExists =
//       someone else is inside), for a writer checks that ROOT/readers is empty, reads
//       ROOT/counter, holds 1-5 ms, writes counter+1 with the version it read (BadVersion =
//       someone else wrote meanwhile), for a writer checks ROOT/readers again, and deletes
//       ROOT/owner. Every successful write's old value is a ticket.
//   reading (rwlock readers) creates the ephemeral ROOT/readers/<who>, checks that ROOT/owner
//       does not exist, reads ROOT/counter, lists ROOT/readers (the readers holding now), holds
//       1-5 ms, checks ROOT/owner and the counter again (a writer inside or a write meanwhile is a
//       violation), and deletes its marker.
//   leased (semaphore holders) adds its name to the set in ROOT/holders by a versioned
//       read-modify-write (BadVersion: read again), holds 1-5 ms, and removes it the same way.
//       More than 2 names in the set is a violation.
//
// Rwlock threads write one time in three (at random), read otherwise.
//
// Prints "acquisitions N", "tickets t1 t2 ...", "reads N" (read holds), "shared N" (holds that
// saw another holder), "cross N" (holds that saw a holder of the Rust side), "peak N" (most
// holders seen at once), "violations N" (then one line per violation) and "ok done"; exits 1
// (with a stack trace) when a step fails.

import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.List;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ThreadLocalRandom;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderSelector;
import org.apache.curator.framework.recipes.leader.LeaderSelectorListenerAdapter;
import org.apache.curator.framework.recipes.leader.Participant;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.locks.InterProcessReadWriteLock;
import org.apache.curator.framework.recipes.locks.InterProcessSemaphoreV2;
import org.apache.curator.framework.recipes.locks.Lease;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.data.Stat;

public class CuratorLockCheck extends CuratorSupport {
    /** The semaphore's size, on both sides. */
    static final int LEASES = 2;

    static final List<Integer> tickets = new ArrayList<>();
    static final List<String> violations = new ArrayList<>();
    static int acquisitions = 0;
    static int reads = 0;
    static int shared = 0;
    static int cross = 0;
    static int peak = 0;

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

    /** The semaphore's lease nodes (Curator lists them unordered), sorted by name. */
    static List<String> participants(InterProcessSemaphoreV2 s) throws Exception {
        List<String> out = names(s.getParticipantNodes());
        out.sort(null);
        return out;
    }

    interface Listing {
        List<String> get() throws Exception;
    }

    /** Polls `listing` until it has `size` entries (10 s at most), and returns it. */
    static List<String> awaitSize(Listing listing, int size, String what) throws Exception {
        long deadline = System.currentTimeMillis() + 10000;
        List<String> seen = listing.get();
        while (seen.size() != size && System.currentTimeMillis() < deadline) {
            Thread.sleep(5);
            seen = listing.get();
        }
        check(seen.size() == size, what + ": " + seen);
        return seen;
    }

    /** Waits (30 s at most) for the Rust side's signal node, and returns its data. */
    static String awaitNode(CuratorFramework c, String path) throws Exception {
        long deadline = System.currentTimeMillis() + 30000;
        while (c.checkExists().forPath(path) == null) {
            check(System.currentTimeMillis() < deadline, path + " did not appear within 30 s");
            Thread.sleep(5);
        }
        return new String(c.getData().forPath(path), StandardCharsets.UTF_8);
    }

    static void signal(CuratorFramework c, String path, String data) throws Exception {
        c.create().forPath(path, data.getBytes(StandardCharsets.UTF_8));
    }

    interface Release {
        void release() throws Exception;
    }

    interface Take {
        /** Acquires, returning how to give it back, or null if it was not acquired. */
        Release take() throws Exception;
    }

    /**
     * A hold taken, kept until told, and given back on a thread of its own: Curator's locks
     * belong to the thread that acquired them, and the main thread must go on meanwhile.
     */
    static final class Holder {
        final CompletableFuture<Boolean> acquired = new CompletableFuture<>();
        final CountDownLatch letGo = new CountDownLatch(1);
        final CompletableFuture<Void> released = new CompletableFuture<>();

        Holder(Take take) {
            Thread t = new Thread(() -> {
                try {
                    Release r = take.take();
                    acquired.complete(r != null);
                    if (r != null) {
                        letGo.await(30, TimeUnit.SECONDS);
                        r.release();
                    }
                    released.complete(null);
                } catch (Throwable e) {
                    acquired.completeExceptionally(e);
                    released.completeExceptionally(e);
                }
            });
            t.setDaemon(true);
            t.start();
        }

        boolean waiting() {
            return !acquired.isDone();
        }

        /** Whether it acquired (waits up to 30 s). */
        boolean acquired() throws Exception {
            return acquired.get(30, TimeUnit.SECONDS);
        }

        void release() throws Exception {
            letGo.countDown();
            released.get(30, TimeUnit.SECONDS);
        }
    }

    static Holder hold(InterProcessMutex m) {
        return new Holder(() -> m.acquire(30, TimeUnit.SECONDS) ? m::release : null);
    }

    static Holder hold(InterProcessSemaphoreV2 s) {
        return new Holder(() -> {
            Lease lease = s.acquire(30, TimeUnit.SECONDS);
            return lease == null ? null : () -> s.returnLease(lease);
        });
    }

    /** Mutex: Curator sees the Rust holder, queues behind it, and gets the lock once released. */
    static void mutexLayout(CuratorFramework a, CuratorFramework b, String root) throws Exception {
        String lock = root + "/lock";
        InterProcessMutex probe = new InterProcessMutex(a, lock);
        List<String> held = participants(probe);
        System.out.println("participants-held " + String.join(",", held));
        check(held.size() == 1, "one participant (the Rust holder) before Curator queues: " + held);
        check(!probe.acquire(200, TimeUnit.MILLISECONDS), "Curator must not acquire while Rust holds the lock");
        check(participants(probe).equals(held), "a timed-out acquire leaves no node: " + participants(probe));

        Holder waiter = hold(new InterProcessMutex(b, lock));
        List<String> waiting = awaitSize(() -> participants(probe), 2, "the Rust holder and the Curator waiter");
        System.out.println("participants-waiting " + String.join(",", waiting));
        check(waiting.get(0).equals(held.get(0)), "the Rust holder first in Curator's order: " + waiting);
        check(waiter.waiting(), "the Curator waiter must wait while Rust holds the lock");
        signal(a, root + "/java-waiting", String.join(",", waiting));

        check(waiter.acquired(), "the Curator waiter acquires once Rust released");
        List<String> after = participants(probe);
        check(after.size() == 1 && after.get(0).equals(waiting.get(1)), "only the Curator holder is left: " + after);
        waiter.release();
    }

    /** A latch's participants as Curator reports them: "id" or "id*" for the leader, in order. */
    static List<String> participants(LeaderLatch latch) throws Exception {
        List<String> out = new ArrayList<>();
        for (Participant p : latch.getParticipants()) {
            out.add(p.getId() + (p.isLeader() ? "*" : ""));
        }
        return out;
    }

    /**
     * Latch: the Rust side leads as rust-0. Curator's view names it leader; a Curator latch
     * (java-0) queues behind it and is not elected (ROOT/java-waiting: Curator's participants).
     * Once Rust resigns, java-0 is elected (ROOT/java-leads); a Rust participant (rust-1) queues
     * behind it (ROOT/rust-waiting), Curator sees it second, and java-0 resigns: Curator then
     * names rust-1 leader.
     */
    static void latchLayout(CuratorFramework a, CuratorFramework b, String root) throws Exception {
        String path = root + "/leader";
        LeaderLatch probe = new LeaderLatch(a, path, "probe");
        List<String> held = participants(probe);
        System.out.println("latch-held " + String.join(",", held));
        check(held.equals(List.of("rust-0*")), "the Rust leader alone: " + held);
        check(probe.getLeader().getId().equals("rust-0"), "Curator names the Rust leader: " + probe.getLeader());

        LeaderLatch latch = new LeaderLatch(b, path, "java-0");
        latch.start();
        check(!latch.await(200, TimeUnit.MILLISECONDS), "Curator must not lead while Rust leads");
        List<String> waiting = awaitSize(() -> participants(probe), 2, "the Rust leader and the Curator participant");
        System.out.println("latch-waiting " + String.join(",", waiting));
        check(waiting.equals(List.of("rust-0*", "java-0")), "the Rust leader first: " + waiting);
        signal(a, root + "/java-waiting", String.join(",", waiting));

        check(latch.await(30, TimeUnit.SECONDS), "the Curator participant is elected once Rust resigned");
        check(latch.hasLeadership(), "Curator leads");
        signal(a, root + "/java-leads", "");
        awaitNode(a, root + "/rust-waiting");
        List<String> behind = participants(probe);
        System.out.println("latch-behind " + String.join(",", behind));
        check(behind.equals(List.of("java-0*", "rust-1")), "the Rust participant queued behind Curator: " + behind);
        latch.close();
        long deadline = System.currentTimeMillis() + 10000;
        while (!probe.getLeader().getId().equals("rust-1")) {
            check(System.currentTimeMillis() < deadline, "rust-1 must lead once Curator resigned: " + participants(probe));
            Thread.sleep(5);
        }
        signal(a, root + "/java-resigned", "");
    }

    /** A selector's participants as Curator reports them: "id" or "id*" for the leader, in order. */
    static List<String> participants(LeaderSelector selector) throws Exception {
        List<String> out = new ArrayList<>();
        for (Participant p : selector.getParticipants()) {
            out.add(p.getId() + (p.isLeader() ? "*" : ""));
        }
        return out;
    }

    /** Work for a LeaderSelector's leadership, run on Curator's thread. */
    interface Leading {
        void lead() throws Exception;
    }

    /** A started LeaderSelector with id `who` that runs `leading` once elected, then relinquishes. */
    static final class Selector {
        final CountDownLatch elected = new CountDownLatch(1);
        final CountDownLatch done = new CountDownLatch(1);
        final AtomicReference<Throwable> failure = new AtomicReference<>();
        final LeaderSelector selector;

        Selector(CuratorFramework c, String path, String who, Leading leading) {
            selector = new LeaderSelector(c, path, new LeaderSelectorListenerAdapter() {
                @Override
                public void takeLeadership(CuratorFramework client) {
                    elected.countDown();
                    try {
                        leading.lead();
                    } catch (Throwable e) {
                        failure.set(e);
                    } finally {
                        done.countDown();
                    }
                }
            });
            selector.setId(who);
            selector.start();
        }

        /** Waits for the leadership's work to end (30 s at most), then closes. */
        void finish() throws Exception {
            check(done.await(30, TimeUnit.SECONDS), "the selector's leadership ended");
            selector.close();
            if (failure.get() != null) {
                throw new RuntimeException(failure.get());
            }
        }
    }

    /**
     * Selector: as the latch layout, with LeaderSelectors (lock- nodes): the Rust leader rust-0,
     * then java-0 queued behind it (ROOT/java-waiting) and elected once Rust resigns
     * (ROOT/java-leads); rust-1 queues behind it (ROOT/rust-waiting), and once java-0's
     * leadership ends Curator names rust-1 leader (ROOT/java-resigned).
     */
    static void selectorLayout(CuratorFramework a, CuratorFramework b, String root) throws Exception {
        String path = root + "/leader";
        LeaderSelector probe = new LeaderSelector(a, path, new LeaderSelectorListenerAdapter() {
            @Override
            public void takeLeadership(CuratorFramework client) {
                throw new AssertionError("the probe never campaigns");
            }
        });
        List<String> held = participants(probe);
        System.out.println("selector-held " + String.join(",", held));
        check(held.equals(List.of("rust-0*")), "the Rust leader alone: " + held);

        Selector java = new Selector(b, path, "java-0", () -> {
            signal(a, root + "/java-leads", "");
            awaitNode(a, root + "/rust-waiting");
            List<String> behind = participants(probe);
            System.out.println("selector-behind " + String.join(",", behind));
            check(behind.equals(List.of("java-0*", "rust-1")), "the Rust participant queued behind Curator: " + behind);
        });
        check(!java.elected.await(200, TimeUnit.MILLISECONDS), "Curator must not lead while Rust leads");
        List<String> waiting = awaitSize(() -> participants(probe), 2, "the Rust leader and the Curator participant");
        System.out.println("selector-waiting " + String.join(",", waiting));
        check(waiting.equals(List.of("rust-0*", "java-0")), "the Rust leader first: " + waiting);
        signal(a, root + "/java-waiting", String.join(",", waiting));
        java.finish();
        long deadline = System.currentTimeMillis() + 10000;
        while (!probe.getLeader().getId().equals("rust-1")) {
            check(System.currentTimeMillis() < deadline, "rust-1 must lead once Curator resigned: " + participants(probe));
            Thread.sleep(5);
        }
        signal(a, root + "/java-resigned", "");
    }

    /** Curator's view of a read-write lock: "writers|readers", each in Curator's order. */
    static String view(InterProcessReadWriteLock rw) throws Exception {
        return String.join(",", participants(rw.writeLock())) + "|" + String.join(",", participants(rw.readLock()));
    }

    /**
     * Read-write lock: the Rust side writes first. Curator can neither read nor write, and a
     * Curator reader queues behind the Rust writer (ROOT/java-waiting: Curator's view). Once the
     * writer is released, the Curator reader holds (ROOT/java-reading) and a Rust reader joins it
     * (ROOT/rust-reading): no Curator writer gets in, a third reader does. The Curator reader
     * leaves; a Curator writer queues behind the Rust reader (ROOT/java-writer-waiting: Curator's
     * view) and holds once it is released (ROOT/java-writing), until the Rust side has checked
     * that it can neither read nor write (ROOT/rust-checked).
     */
    static void rwLayout(CuratorFramework a, CuratorFramework b, String root) throws Exception {
        String path = root + "/rw";
        InterProcessReadWriteLock probe = new InterProcessReadWriteLock(a, path);
        String held = view(probe);
        System.out.println("rw-held " + held);
        check(participants(probe.writeLock()).size() == 1 && participants(probe.readLock()).isEmpty(),
                "one writer (Rust's) and no reader: " + held);
        check(!probe.readLock().acquire(100, TimeUnit.MILLISECONDS), "no Curator reader while Rust writes");
        check(!probe.writeLock().acquire(100, TimeUnit.MILLISECONDS), "no Curator writer while Rust writes");
        check(view(probe).equals(held), "timed-out acquires leave no node: " + view(probe));

        Holder reader = hold(new InterProcessReadWriteLock(b, path).readLock());
        awaitSize(() -> participants(probe.readLock()), 1, "the Curator reader queued");
        check(reader.waiting(), "the Curator reader must wait while Rust writes");
        signal(a, root + "/java-waiting", view(probe));
        check(reader.acquired(), "the Curator reader acquires once the Rust writer released");
        signal(a, root + "/java-reading", "");

        awaitNode(a, root + "/rust-reading");
        List<String> readers = participants(probe.readLock());
        System.out.println("rw-readers " + String.join(",", readers));
        check(readers.size() == 2 && participants(probe.writeLock()).isEmpty(), "two readers: " + view(probe));
        check(!probe.writeLock().acquire(100, TimeUnit.MILLISECONDS), "no Curator writer while two readers hold");
        check(probe.readLock().acquire(5, TimeUnit.SECONDS), "a third reader shares with the Rust and Curator readers");
        probe.readLock().release();
        reader.release();
        check(!probe.writeLock().acquire(100, TimeUnit.MILLISECONDS), "no Curator writer while the Rust reader holds");

        Holder writer = hold(new InterProcessReadWriteLock(b, path).writeLock());
        awaitSize(() -> participants(probe.writeLock()), 1, "the Curator writer queued");
        check(writer.waiting(), "the Curator writer must wait while Rust reads");
        String writerWaiting = view(probe);
        System.out.println("rw-writer-waiting " + writerWaiting);
        signal(a, root + "/java-writer-waiting", writerWaiting);
        check(writer.acquired(), "the Curator writer acquires once the Rust reader released");
        signal(a, root + "/java-writing", "");
        awaitNode(a, root + "/rust-checked");
        writer.release();
    }

    /**
     * Semaphore: the Rust side holds both leases. Curator gets none, and a Curator waiter queues
     * (ROOT/java-waiting: the lease nodes as Curator lists them) holding the semaphore's lock.
     * Once Rust returns its leases, the waiter holds and Curator takes the second lease
     * (ROOT/java-full); a Rust waiter queues (ROOT/rust-waiting: its lease node), Curator sees
     * its lease node, returns one lease and waits until Rust has checked it got it
     * (ROOT/rust-done).
     */
    static void semaphoreLayout(CuratorFramework a, CuratorFramework b, String root) throws Exception {
        String path = root + "/sem";
        InterProcessSemaphoreV2 probe = new InterProcessSemaphoreV2(a, path, LEASES);
        List<String> held = participants(probe);
        System.out.println("leases-held " + String.join(",", held));
        check(held.size() == LEASES, "the Rust side's leases: " + held);
        check(probe.acquire(100, TimeUnit.MILLISECONDS) == null, "no lease for Curator while Rust holds them all");
        check(participants(probe).equals(held), "a timed-out acquire leaves no lease: " + participants(probe));

        Holder first = hold(new InterProcessSemaphoreV2(b, path, LEASES));
        List<String> waiting = awaitSize(() -> participants(probe), LEASES + 1, "the Curator waiter's lease");
        check(first.waiting(), "the Curator waiter must wait while Rust holds every lease");
        signal(a, root + "/java-waiting", String.join(",", waiting));
        check(first.acquired(), "the Curator waiter gets a lease once Rust returned its leases");
        Lease second = probe.acquire(5, TimeUnit.SECONDS);
        check(second != null, "Curator gets the second lease");
        List<String> full = participants(probe);
        check(full.size() == LEASES, "Curator's two leases: " + full);
        signal(a, root + "/java-full", String.join(",", full));

        String rust = awaitNode(a, root + "/rust-waiting");
        List<String> queued = participants(probe);
        System.out.println("leases-rust-waiting " + String.join(",", queued));
        check(queued.size() == LEASES + 1 && queued.containsAll(full) && queued.contains(rust),
                "Curator's leases and the Rust waiter's " + rust + ": " + queued);
        probe.returnLease(second);
        awaitNode(a, root + "/rust-done");
        first.release();
    }

    static synchronized void violation(String what) {
        violations.add(what);
    }

    /** Counts a hold that saw `holders` (names) at once. */
    static synchronized void saw(List<String> holders) {
        peak = Math.max(peak, holders.size());
        if (holders.size() > 1) {
            shared++;
        }
        if (holders.stream().anyMatch(h -> h.startsWith("rust-"))) {
            cross++;
        }
    }

    static synchronized void acquired(int ticket) {
        acquisitions++;
        if (ticket >= 0) {
            tickets.add(ticket);
        }
    }

    static void pause() throws InterruptedException {
        Thread.sleep(1 + ThreadLocalRandom.current().nextInt(5));
    }

    static void noReaders(CuratorFramework c, String root, String who) throws Exception {
        List<String> readers = c.getChildren().forPath(root + "/readers");
        if (!readers.isEmpty()) {
            violation(who + " wrote while " + readers + " read");
        }
    }

    /** The exclusive section; returns the ticket (the counter value it replaced) or -1. */
    static int exclusive(CuratorFramework c, String root, String who, boolean writer) throws Exception {
        boolean owner = true;
        try {
            c.create().withMode(CreateMode.EPHEMERAL).forPath(root + "/owner", who.getBytes(StandardCharsets.UTF_8));
        } catch (KeeperException.NodeExistsException e) {
            owner = false;
            violation(who + " entered while ROOT/owner existed");
        }
        if (writer) {
            noReaders(c, root, who);
        }
        Stat stat = new Stat();
        byte[] data = c.getData().storingStatIn(stat).forPath(root + "/counter");
        int n = Integer.parseInt(new String(data, StandardCharsets.UTF_8));
        pause();
        int ticket = -1;
        try {
            c.setData().withVersion(stat.getVersion()).forPath(root + "/counter",
                    Integer.toString(n + 1).getBytes(StandardCharsets.UTF_8));
            ticket = n;
        } catch (KeeperException.BadVersionException e) {
            violation(who + " lost its increment of " + n + " (BadVersion)");
        }
        if (writer) {
            noReaders(c, root, who);
        }
        if (owner) {
            c.delete().forPath(root + "/owner");
        }
        return ticket;
    }

    /** The read section. */
    static void reading(CuratorFramework c, String root, String who) throws Exception {
        String marker = root + "/readers/" + who;
        c.create().withMode(CreateMode.EPHEMERAL).forPath(marker);
        if (c.checkExists().forPath(root + "/owner") != null) {
            violation(who + " read while a writer held");
        }
        String before = new String(c.getData().forPath(root + "/counter"), StandardCharsets.UTF_8);
        saw(c.getChildren().forPath(root + "/readers"));
        pause();
        if (c.checkExists().forPath(root + "/owner") != null) {
            violation(who + " read while a writer held");
        }
        String after = new String(c.getData().forPath(root + "/counter"), StandardCharsets.UTF_8);
        if (!before.equals(after)) {
            violation(who + " saw the counter go from " + before + " to " + after + " while reading");
        }
        c.delete().forPath(marker);
        synchronized (CuratorLockCheck.class) {
            reads++;
        }
    }

    /** Adds `who` to (or removes it from) the set in ROOT/holders; returns the set it wrote. */
    static List<String> update(CuratorFramework c, String root, String who, boolean enter) throws Exception {
        while (true) {
            Stat stat = new Stat();
            String data = new String(c.getData().storingStatIn(stat).forPath(root + "/holders"), StandardCharsets.UTF_8);
            List<String> holders = new ArrayList<>(Arrays.asList(data.split(" ")));
            holders.removeIf(String::isEmpty);
            if (holders.contains(who) == enter) {
                violation(who + (enter ? " already" : " not") + " in the holders " + holders);
            }
            if (enter) {
                holders.add(who);
            } else {
                holders.remove(who);
            }
            try {
                c.setData().withVersion(stat.getVersion()).forPath(root + "/holders",
                        String.join(" ", holders).getBytes(StandardCharsets.UTF_8));
                return holders;
            } catch (KeeperException.BadVersionException e) {
                // Another holder updated the set meanwhile: read it again.
            }
        }
    }

    /** The semaphore holder's section. */
    static void leased(CuratorFramework c, String root, String who) throws Exception {
        List<String> holders = update(c, root, who, true);
        saw(holders);
        if (holders.size() > LEASES) {
            violation(who + " made " + holders.size() + " holders: " + holders);
        }
        pause();
        update(c, root, who, false);
    }

    interface Round {
        /** One acquisition, critical section and release. */
        void run() throws Exception;
    }

    /** One contender's round for RECIPE: acquire (unless !locked), the section, release. */
    static Round round(String recipe, CuratorFramework c, String root, String who, boolean locked) {
        switch (recipe) {
            case "mutex": {
                InterProcessMutex m = new InterProcessMutex(c, root + "/lock");
                return () -> {
                    if (locked) {
                        check(m.acquire(15, TimeUnit.SECONDS), who + " acquires within 15 s");
                    }
                    try {
                        acquired(exclusive(c, root, who, false));
                    } finally {
                        if (locked) {
                            m.release();
                        }
                    }
                };
            }
            case "rwlock": {
                InterProcessReadWriteLock rw = new InterProcessReadWriteLock(c, root + "/rw");
                return () -> {
                    boolean write = ThreadLocalRandom.current().nextInt(3) == 0;
                    InterProcessMutex m = write ? rw.writeLock() : rw.readLock();
                    if (locked) {
                        check(m.acquire(15, TimeUnit.SECONDS), who + " acquires within 15 s");
                    }
                    try {
                        if (write) {
                            acquired(exclusive(c, root, who, true));
                        } else {
                            reading(c, root, who);
                            acquired(-1);
                        }
                    } finally {
                        if (locked) {
                            m.release();
                        }
                    }
                };
            }
            case "semaphore": {
                InterProcessSemaphoreV2 s = new InterProcessSemaphoreV2(c, root + "/sem", LEASES);
                return () -> {
                    Lease lease = null;
                    if (locked) {
                        lease = s.acquire(15, TimeUnit.SECONDS);
                        check(lease != null, who + " gets a lease within 15 s");
                    }
                    try {
                        leased(c, root, who);
                        acquired(-1);
                    } finally {
                        if (lease != null) {
                            s.returnLease(lease);
                        }
                    }
                };
            }
            case "latch": {
                return () -> {
                    LeaderLatch latch = new LeaderLatch(c, root + "/leader", who);
                    if (locked) {
                        latch.start();
                        check(latch.await(15, TimeUnit.SECONDS), who + " is elected within 15 s");
                    }
                    try {
                        acquired(exclusive(c, root, who, false));
                    } finally {
                        if (locked) {
                            latch.close();
                        }
                    }
                };
            }
            case "selector": {
                return () -> {
                    if (!locked) {
                        acquired(exclusive(c, root, who, false));
                        return;
                    }
                    Selector s = new Selector(c, root + "/leader", who, () -> acquired(exclusive(c, root, who, false)));
                    check(s.elected.await(15, TimeUnit.SECONDS), who + " is elected within 15 s");
                    s.finish();
                };
            }
            default:
                throw new IllegalArgumentException("unknown recipe " + recipe);
        }
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
        String recipe = args[2];
        int threads = Integer.parseInt(args[3]);
        long millis = Long.parseLong(args[4]);
        boolean locked = args[5].equals("lock");
        CuratorFramework[] clients = new CuratorFramework[Math.max(threads, 2)];
        for (int i = 0; i < clients.length; i++) {
            clients[i] = client(hosts);
        }
        System.out.println("ok connect");
        if (locked) {
            switch (recipe) {
                case "mutex":
                    mutexLayout(clients[0], clients[1], root);
                    break;
                case "rwlock":
                    rwLayout(clients[0], clients[1], root);
                    break;
                case "semaphore":
                    semaphoreLayout(clients[0], clients[1], root);
                    break;
                case "latch":
                    latchLayout(clients[0], clients[1], root);
                    break;
                case "selector":
                    selectorLayout(clients[0], clients[1], root);
                    break;
                default:
                    throw new IllegalArgumentException("unknown recipe " + recipe);
            }
            System.out.println("ok layout");
        }

        clients[0].create().forPath(root + "/go");
        long end = System.currentTimeMillis() + millis;
        AtomicReference<Throwable> failure = new AtomicReference<>();
        List<Thread> workers = new ArrayList<>();
        for (int i = 0; i < threads; i++) {
            Round round = round(recipe, clients[i], root, "java-" + i, locked);
            Thread t = new Thread(() -> {
                try {
                    while (System.currentTimeMillis() < end && failure.get() == null) {
                        round.run();
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
        System.out.println("reads " + reads);
        System.out.println("shared " + shared);
        System.out.println("cross " + cross);
        System.out.println("peak " + peak);
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
