//! [`Proxy`]: a loopback TCP proxy between clients and a server (embedded or real) that injects
//! network faults: cut connections, stalls, a silent network (black hole), refused connects, a
//! lost reply, and a change of the server behind it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::error::{Error, Result};

/// Whether bytes may flow, as the pumps see it.
#[derive(Debug, Clone, Copy, Default)]
struct Flow {
    /// Hold everything (a silent network) until lifted or the connection is cut.
    blackhole: bool,
    /// Hold everything until then.
    stall_until: Option<Instant>,
}

#[derive(Debug)]
struct Inner {
    target: Mutex<SocketAddr>,
    flow: watch::Sender<Flow>,
    /// Cancelled by `cut`; every connection gets a child of the current generation.
    generation: Mutex<CancellationToken>,
    refuse: AtomicBool,
    drop_next_reply: AtomicBool,
    open: AtomicUsize,
    shutdown: CancellationToken,
}

/// A TCP proxy on `127.0.0.1` for fault tests. Clients connect to
/// [`connect_string`](Proxy::connect_string); every connection is relayed to the current target.
/// Stops (and closes every relayed connection) when dropped.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    inner: Arc<Inner>,
}

impl Proxy {
    /// Starts a proxy to `target` (`host:port`), on a free loopback port, on the current tokio
    /// runtime.
    pub async fn start(target: &str) -> Result<Proxy> {
        let target = tokio::net::lookup_host(target)
            .await
            .map_err(|e| Error::Io(format!("resolve {target}: {e}")))?
            .next()
            .ok_or_else(|| Error::InvalidArgument(format!("no address for {target}")))?;
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| Error::Io(format!("proxy bind: {e}")))?;
        let addr = listener.local_addr().map_err(|e| Error::Io(format!("proxy address: {e}")))?;
        let inner = Arc::new(Inner {
            target: Mutex::new(target),
            flow: watch::Sender::new(Flow::default()),
            generation: Mutex::new(CancellationToken::new()),
            refuse: AtomicBool::new(false),
            drop_next_reply: AtomicBool::new(false),
            open: AtomicUsize::new(0),
            shutdown: CancellationToken::new(),
        });
        tokio::spawn(accept_loop(listener, inner.clone()));
        Ok(Proxy { addr, inner })
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn connect_string(&self) -> String {
        self.addr.to_string()
    }

    /// Relays new connections to `target` from now on (existing ones stay where they are).
    pub fn set_target(&self, target: SocketAddr) {
        *self.inner.target.lock().unwrap_or_else(|e| e.into_inner()) = target;
    }

    /// Closes every relayed connection at once (with a TCP reset).
    pub fn cut(&self) {
        let mut g = self.inner.generation.lock().unwrap_or_else(|e| e.into_inner());
        g.cancel();
        *g = CancellationToken::new();
    }

    /// Holds every byte in both directions, without closing anything, until
    /// [`heal`](Proxy::heal) (a partition: nothing arrives, nothing fails).
    pub fn blackhole(&self) {
        self.inner.flow.send_modify(|f| f.blackhole = true);
    }

    /// Lets bytes flow again after [`blackhole`](Proxy::blackhole) or a stall.
    pub fn heal(&self) {
        self.inner.flow.send_modify(|f| *f = Flow::default());
    }

    /// Holds every byte for `d`, then delivers them in order.
    pub fn stall(&self, d: Duration) {
        let until = Instant::now() + d;
        self.inner.flow.send_modify(|f| f.stall_until = Some(f.stall_until.map_or(until, |u| u.max(until))));
    }

    /// Whether new connections are refused (closed at once).
    pub fn refuse(&self, on: bool) {
        self.inner.refuse.store(on, Ordering::SeqCst);
    }

    /// Discards the next bytes the server sends and cuts that connection: a request applied by
    /// the server whose reply never reaches the client.
    pub fn drop_next_reply(&self) {
        self.inner.drop_next_reply.store(true, Ordering::SeqCst);
    }

    /// Connections currently relayed.
    pub fn connections(&self) -> usize {
        self.inner.open.load(Ordering::SeqCst)
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.inner.shutdown.cancel();
        self.cut();
    }
}

async fn accept_loop(listener: TcpListener, inner: Arc<Inner>) {
    loop {
        let client = tokio::select! {
            () = inner.shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok((s, _)) => s,
                Err(e) => {
                    tracing::debug!(error = %e, "proxy accept failed");
                    continue;
                }
            },
        };
        if inner.refuse.load(Ordering::SeqCst) {
            reset(client);
            continue;
        }
        let target = *inner.target.lock().unwrap_or_else(|e| e.into_inner());
        let token = inner.generation.lock().unwrap_or_else(|e| e.into_inner()).child_token();
        tokio::spawn(relay(client, target, token, inner.clone()));
    }
}

/// Closes a socket with a reset rather than a FIN.
fn reset(s: TcpStream) {
    let _ = s.set_zero_linger();
    drop(s);
}

async fn relay(client: TcpStream, target: SocketAddr, token: CancellationToken, inner: Arc<Inner>) {
    let server = tokio::select! {
        () = token.cancelled() => return reset(client),
        r = TcpStream::connect(target) => match r {
            Ok(s) => s,
            Err(_) => return reset(client),
        },
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    inner.open.fetch_add(1, Ordering::SeqCst);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(cr, sw, inner.flow.subscribe(), &token, None);
    let down = pump(sr, cw, inner.flow.subscribe(), &token, Some(&inner.drop_next_reply));
    tokio::select! {
        biased;
        () = token.cancelled() => {}
        () = inner.shutdown.cancelled() => {}
        _ = up => {}
        _ = down => {}
    }
    inner.open.fetch_sub(1, Ordering::SeqCst);
    // Dropping the halves closes both sockets; the linger of 0 makes it a reset.
}

/// Copies `from` to `to`, pausing while the flow is held, until `cut` is cancelled (bytes held
/// at that moment are lost with the connection). With `drop_reply`, the first chunk read while
/// the flag is set is discarded and the relay ends.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut flow: watch::Receiver<Flow>,
    cut: &CancellationToken,
    drop_reply: Option<&AtomicBool>,
) -> std::io::Result<()> {
    let _ = to.as_ref().set_zero_linger();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        // Wait while the network is held.
        loop {
            let f = *flow.borrow_and_update();
            if f.blackhole {
                flow.changed().await.map_err(|_| std::io::ErrorKind::BrokenPipe)?;
                continue;
            }
            match f.stall_until {
                Some(until) if until > Instant::now() => {
                    tokio::select! {
                        () = tokio::time::sleep_until(until) => {}
                        r = flow.changed() => r.map_err(|_| std::io::ErrorKind::BrokenPipe)?,
                    }
                }
                _ => break,
            }
        }
        let n = from.read(&mut buf).await?;
        if n == 0 {
            return Ok(());
        }
        if drop_reply.is_some_and(|flag| flag.swap(false, Ordering::SeqCst)) {
            return Ok(());
        }
        // Bytes read just before a hold started are held too.
        while flow.borrow().blackhole || flow.borrow().stall_until.is_some_and(|u| u > Instant::now()) {
            let until = flow.borrow().stall_until;
            tokio::select! {
                r = flow.changed() => r.map_err(|_| std::io::ErrorKind::BrokenPipe)?,
                () = async { match until { Some(u) => tokio::time::sleep_until(u).await, None => std::future::pending().await } } => {}
            }
        }
        if cut.is_cancelled() {
            return Ok(());
        }
        to.write_all(&buf[..n]).await?;
    }
}
