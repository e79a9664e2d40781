// Drives a ZooKeeper server with Apache Curator: an InterProcessMutex acquire/release between two
// clients and a LeaderLatch among two participants. Used by tests/it/external.rs against the
// embedded server and a real ZooKeeper.
//
// Usage: java -cp <curator classpath>:. CuratorCheck HOSTS ROOT   (prints "ok <step>"; exit 0 on success)

import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;

public class CuratorCheck extends CuratorSupport {
    public static void main(String[] args) throws Exception {
        String hosts = args[0];
        String root = args[1];
        CuratorFramework a = client(hosts);
        CuratorFramework b = client(hosts);
        System.out.println("ok connect");

        InterProcessMutex ma = new InterProcessMutex(a, root + "/lock");
        InterProcessMutex mb = new InterProcessMutex(b, root + "/lock");
        check(ma.acquire(10, TimeUnit.SECONDS), "a acquires");
        check(!mb.acquire(200, TimeUnit.MILLISECONDS), "b must not acquire while a holds the lock");
        ma.release();
        check(mb.acquire(10, TimeUnit.SECONDS), "b acquires after a released");
        mb.release();
        System.out.println("ok mutex");

        LeaderLatch la = new LeaderLatch(a, root + "/leader", "a");
        LeaderLatch lb = new LeaderLatch(b, root + "/leader", "b");
        la.start();
        lb.start();
        long deadline = System.currentTimeMillis() + 15000;
        while (!(la.hasLeadership() || lb.hasLeadership()) && System.currentTimeMillis() < deadline) {
            Thread.sleep(10);
        }
        check(la.hasLeadership() ^ lb.hasLeadership(), "exactly one leader");
        LeaderLatch leader = la.hasLeadership() ? la : lb;
        LeaderLatch follower = leader == la ? lb : la;
        check(follower.getLeader().getId().equals(leader.getId()), "both agree on the leader");
        leader.close();
        check(follower.await(15, TimeUnit.SECONDS), "the other participant takes over");
        follower.close();
        System.out.println("ok leader");

        a.delete().deletingChildrenIfNeeded().forPath(root);
        a.close();
        b.close();
        System.out.println("ok done");
    }
}
