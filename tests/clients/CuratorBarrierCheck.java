// Curator's DistributedDoubleBarrier beside conclave's DoubleBarrier on the same paths. Used by
// tests/it/barrier/interop.rs, which runs the Rust members at the same time.
//
// Usage: java -cp <curator classpath>:. CuratorBarrierCheck HOSTS ROOT ROUNDS MEMBERS TOTAL
//
// Each of ROUNDS rounds uses the barrier ROOT/r<round> with TOTAL members in all (MEMBERS of them
// here, each a thread with a session of its own, the rest on the Rust side). A member creates
// ROOT/arrived-<round>/<who> before entering and ROOT/done-<round>/<who> before leaving; once
// enter() returns it checks that all TOTAL members have arrived, and once leave() returns that
// all TOTAL are done (anything else is a violation: someone passed early). Prints "violations N"
// (then one line per violation) and "ok done"; exits 1 (with a stack trace) when a step fails.

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicReference;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.barriers.DistributedDoubleBarrier;

public class CuratorBarrierCheck extends CuratorSupport {
    static final List<String> violations = new ArrayList<>();

    static synchronized void violation(String what) {
        violations.add(what);
    }

    public static void main(String[] args) {
        try {
            run(args);
        } catch (Throwable e) {
            e.printStackTrace();
            System.exit(1);
        }
    }

    static void run(String[] args) throws Exception {
        String hosts = args[0];
        String root = args[1];
        int rounds = Integer.parseInt(args[2]);
        int members = Integer.parseInt(args[3]);
        int total = Integer.parseInt(args[4]);
        CuratorFramework[] clients = new CuratorFramework[members];
        for (int i = 0; i < members; i++) {
            clients[i] = client(hosts);
        }
        System.out.println("ok connect");
        for (int round = 0; round < rounds; round++) {
            final int r = round;
            AtomicReference<Throwable> failure = new AtomicReference<>();
            List<Thread> threads = new ArrayList<>();
            for (int i = 0; i < members; i++) {
                CuratorFramework c = clients[i];
                String who = "java-" + i;
                Thread t = new Thread(() -> {
                    try {
                        DistributedDoubleBarrier barrier = new DistributedDoubleBarrier(c, root + "/r" + r, total);
                        c.create().creatingParentsIfNeeded().forPath(root + "/arrived-" + r + "/" + who);
                        check(barrier.enter(30, TimeUnit.SECONDS), who + " entered within 30 s");
                        int arrived = c.getChildren().forPath(root + "/arrived-" + r).size();
                        if (arrived < total) {
                            violation(who + " entered round " + r + " with " + arrived + " of " + total + " arrived");
                        }
                        c.create().creatingParentsIfNeeded().forPath(root + "/done-" + r + "/" + who);
                        check(barrier.leave(30, TimeUnit.SECONDS), who + " left within 30 s");
                        int done = c.getChildren().forPath(root + "/done-" + r).size();
                        if (done < total) {
                            violation(who + " left round " + r + " with " + done + " of " + total + " done");
                        }
                    } catch (Throwable e) {
                        failure.compareAndSet(null, e);
                    }
                });
                t.start();
                threads.add(t);
            }
            for (Thread t : threads) {
                t.join();
            }
            if (failure.get() != null) {
                throw new RuntimeException(failure.get());
            }
            System.out.println("ok round " + round);
        }
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
