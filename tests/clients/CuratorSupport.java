// What every Curator program in this directory shares: its assertion, its client and its exit. Each program
// extends this class (so the two are called unqualified) and javac compiles this file with it
// (tests/it/support/clients.rs gives it this directory as the source path).

import java.util.concurrent.Callable;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.ExponentialBackoffRetry;

class CuratorSupport {
    /** Fails the run with `what` unless `condition` holds. */
    static void check(boolean condition, String what) {
        if (!condition) {
            throw new AssertionError(what);
        }
    }

    /** A started client of HOSTS, connected (within 15 s). */
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

    /** Runs a program's body and exits with the status it returns; any failure exits 1 with its
     *  stack trace (also when a waiter or worker thread is still running). */
    static void exitWith(Callable<Integer> body) {
        int status;
        try {
            status = body.call();
        } catch (Throwable e) {
            e.printStackTrace();
            status = 1;
        }
        System.out.flush();
        System.exit(status);
    }
}
