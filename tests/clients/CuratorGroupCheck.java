// Curator's GroupMember beside conclave's membership::GroupMember in one group (the layout: member
// <id> is the ephemeral node GROUP/<id>, its data the member's data). Used by
// tests/it/membership/interop.rs, which runs the Rust side beside a run of this program and checks
// what it printed.
//
// Usage: java -cp <curator classpath>:. CuratorGroupCheck HOSTS GROUP OP...
//
// GROUP is a path of the whole tree (no chroot). The OPs run in order, on one session:
//
//   session            prints "session 0x<the session id in hex>"
//   join:ID:DATA       new GroupMember(client, GROUP, ID, DATA as UTF-8).start()
//                                                   prints "joined ID"
//   see:ID:MS:VIEW     polls member ID's getCurrentMembers() (every 5 ms) until it is exactly
//                      VIEW: `ID=DATA` pairs separated by `,` (empty: no member at all; Curator
//                      always counts the member itself in). Prints "saw ID <members>", or after
//                      MS ms "timeout ID <members last seen>" and exits 3. <members> is the
//                      members as `ID=DATA` (data as UTF-8), sorted by id, each after a TAB.
//   setdata:ID:DATA    member ID's setThisData(DATA)  prints nothing
//   handover:TAG       hands the turn to the Rust side: creates the ephemeral GROUP-TAG-ready,
//                      waits (at most 30 s) until the Rust side has created GROUP-TAG-go.
//                      Prints nothing.
//   leave:ID           member ID's close()            prints "left ID"
//
// Prints "ok done" at the end (after closing the members still in and the client); exits 1
// (with a stack trace) when a step fails.

import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;
import java.util.TreeMap;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.recipes.nodes.GroupMember;
import org.apache.zookeeper.CreateMode;

public class CuratorGroupCheck extends CuratorSupport {
    /** Runs the check; a view not seen in time exits 3, any other failure 1 with its stack trace. */
    public static void main(String[] args) {
        exitWith(() -> run(args));
    }

    /** Parses the arguments, connects and runs the OPs in order; the exit status. */
    static int run(String[] args) throws Exception {
        check(args.length >= 2, "usage: CuratorGroupCheck HOSTS GROUP OP...");
        CuratorFramework c = client(args[0]);
        String group = args[1];
        Map<String, GroupMember> members = new HashMap<>();
        for (int i = 2; i < args.length; i++) {
            String op = args[i];
            String verb = op.split(":", 2)[0];
            switch (verb) {
                case "session":
                    System.out.println("session 0x" + Long.toHexString(c.getZookeeperClient().getZooKeeper().getSessionId()));
                    break;
                case "join": {
                    String[] parts = op.split(":", 3);
                    check(parts.length == 3 && !members.containsKey(parts[1]), "join:ID:DATA with a new ID: " + op);
                    GroupMember member = new GroupMember(c, group, parts[1], parts[2].getBytes(StandardCharsets.UTF_8));
                    member.start();
                    members.put(parts[1], member);
                    System.out.println("joined " + parts[1]);
                    break;
                }
                case "see": {
                    String[] parts = op.split(":", 4);
                    check(parts.length == 4 && members.containsKey(parts[1]), "see:ID:MS:VIEW of a member: " + op);
                    if (!see(members.get(parts[1]), parts[1], Long.parseLong(parts[2]), view(parts[3]))) {
                        return 3;
                    }
                    break;
                }
                case "setdata": {
                    String[] parts = op.split(":", 3);
                    check(parts.length == 3 && members.containsKey(parts[1]), "setdata:ID:DATA of a member: " + op);
                    members.get(parts[1]).setThisData(parts[2].getBytes(StandardCharsets.UTF_8));
                    break;
                }
                case "handover":
                    handOver(c, group + "-" + op.split(":", 2)[1]);
                    break;
                case "leave": {
                    String id = op.split(":", 2)[1];
                    GroupMember member = members.remove(id);
                    check(member != null, "leave:ID of a member: " + op);
                    member.close();
                    System.out.println("left " + id);
                    break;
                }
                default:
                    throw new IllegalArgumentException("unknown op " + op);
            }
        }
        for (GroupMember member : members.values()) {
            member.close();
        }
        c.close();
        System.out.println("ok done");
        return 0;
    }

    /** The view `ID=DATA,ID=DATA` as id -> data. */
    static Map<String, String> view(String spec) {
        Map<String, String> view = new TreeMap<>();
        if (spec.isEmpty()) {
            return view;
        }
        for (String pair : spec.split(",")) {
            String[] kv = pair.split("=", 2);
            check(kv.length == 2, "ID=DATA: " + pair);
            view.put(kv[0], kv[1]);
        }
        return view;
    }

    /** The member's current members as id -> data (UTF-8), sorted. */
    static Map<String, String> current(GroupMember member) {
        Map<String, String> now = new TreeMap<>();
        for (Map.Entry<String, byte[]> e : member.getCurrentMembers().entrySet()) {
            now.put(e.getKey(), new String(e.getValue(), StandardCharsets.UTF_8));
        }
        return now;
    }

    /** `<TAB>ID=DATA<TAB>ID=DATA`, sorted by id. */
    static String show(Map<String, String> members) {
        StringBuilder line = new StringBuilder();
        for (Map.Entry<String, String> e : members.entrySet()) {
            line.append('\t').append(e.getKey()).append('=').append(e.getValue());
        }
        return line.toString();
    }

    /** Polls until `member` sees exactly `expected` (printing "saw ...", true) or `ms` passed
     * (printing "timeout ...", false). */
    static boolean see(GroupMember member, String id, long ms, Map<String, String> expected) throws Exception {
        long deadline = System.currentTimeMillis() + ms;
        while (true) {
            Map<String, String> now = current(member);
            if (now.equals(expected)) {
                System.out.println("saw " + id + show(now));
                return true;
            }
            if (System.currentTimeMillis() >= deadline) {
                System.out.println("timeout " + id + show(now));
                return false;
            }
            Thread.sleep(5);
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
}
