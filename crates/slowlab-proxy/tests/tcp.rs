//! The TCP proxy with real sockets: a real upstream on loopback (an echo server, a server that
//! sends a block of bytes, and `redis-server` when installed), a real client, and each effect
//! measured on the far side. Times are lower bounds only: an effect must take at least its amount.

use std::io::ErrorKind;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use slowlab_proxy::tcp::{self, LiveTcpEffects, TcpConfig, TcpEffects, TcpStats, TcpStatsSnapshot};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A proxy running on an ephemeral loopback port.
struct Proxy {
    addr: SocketAddr,
    live: LiveTcpEffects,
    stats: Arc<TcpStats>,
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<TcpStatsSnapshot>>,
}

impl Proxy {
    async fn start(upstream: SocketAddr, effects: &str) -> Proxy {
        let effects = TcpEffects::parse(effects, "test").unwrap();
        Proxy::with_config(TcpConfig::new(upstream.to_string()), effects).await
    }

    async fn with_config(config: TcpConfig, effects: TcpEffects) -> Proxy {
        Proxy::with_live(config, LiveTcpEffects::fixed(effects)).await
    }

    async fn with_live(config: TcpConfig, live: LiveTcpEffects) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(TcpStats::default());
        let (stop, stopped) = oneshot::channel();
        let task = tokio::spawn(tcp::run(
            listener,
            config,
            live.clone(),
            Arc::clone(&stats),
            async {
                let _ = stopped.await;
            },
        ));
        Proxy {
            addr,
            live,
            stats,
            stop,
            task,
        }
    }

    async fn shutdown(self) -> TcpStatsSnapshot {
        let _ = self.stop.send(());
        self.task.await.unwrap().unwrap()
    }
}

/// An upstream that echoes every byte; counts what it received.
async fn echo_server() -> (SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let counter = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let mut buf = vec![0; 64 * 1024];
                loop {
                    let n = match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                    if stream.write_all(&buf[..n]).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, received)
}

/// An upstream that sends `block` in one write to every connection, then closes.
async fn block_server(block: Arc<Vec<u8>>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let block = Arc::clone(&block);
            tokio::spawn(async move {
                let _ = stream.set_nodelay(true);
                let _ = stream.write_all(&block).await;
                let _ = stream.shutdown().await;
                // Keep the socket until the client is done, so nothing is cut short by our close.
                let mut sink = [0; 1024];
                while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

/// Bytes that are not all alike, so a reordering or a loss shows.
fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 % 251) as u8).collect()
}

/// Reads until EOF or an error; returns the bytes, the number of reads and the error, if any.
async fn read_all(stream: &mut TcpStream) -> (Vec<u8>, usize, Option<ErrorKind>) {
    let mut got = Vec::new();
    let mut reads = 0;
    let mut buf = vec![0; 64 * 1024];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) => return (got, reads, None),
            Ok(n) => {
                reads += 1;
                got.extend_from_slice(&buf[..n]);
            }
            Err(err) => return (got, reads, Some(err.kind())),
        }
    }
}

/// One small message to the echo server and back, timed.
async fn round_trip(stream: &mut TcpStream) -> Duration {
    let started = Instant::now();
    stream.write_all(b"ping").await.unwrap();
    let mut back = [0; 4];
    stream.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping");
    started.elapsed()
}

#[tokio::test]
async fn bytes_pass_intact_both_ways() {
    let (upstream, received) = echo_server().await;
    // Plain, and with every reordering-prone effect at once: jittered latency and uneven slices.
    for effects in [
        "",
        "latency=0.01&jitter=0.01&slice=3000&slice_variation=2000",
    ] {
        let proxy = Proxy::start(upstream, effects).await;
        let sent = pattern(1 << 20);
        let stream = TcpStream::connect(proxy.addr).await.unwrap();
        let (mut read, mut write) = stream.into_split();
        let to_send = sent.clone();
        let writer = tokio::spawn(async move {
            write.write_all(&to_send).await.unwrap();
            write.shutdown().await.unwrap();
        });
        let mut got = Vec::new();
        read.read_to_end(&mut got).await.unwrap();
        writer.await.unwrap();
        assert!(
            got == sent,
            "{effects:?}: {} bytes back, not the same",
            got.len()
        );

        let stats = proxy.shutdown().await;
        assert_eq!(stats.bytes_upstream, 1 << 20, "{effects:?}");
        assert_eq!(stats.bytes_downstream, 1 << 20, "{effects:?}");
        assert_eq!(stats.accepted, 1);
    }
    assert_eq!(received.load(Ordering::Relaxed), 2 << 20);
}

#[tokio::test]
async fn latency_adds_its_amount_per_direction() {
    let (upstream, _) = echo_server().await;
    let cases = [
        ("direction=upstream&latency=0.2", 0.2),
        ("direction=downstream&latency=0.2", 0.2),
        ("latency=0.2", 0.4),
        ("latency=0.2&jitter=0.05", 0.3),
    ];
    for (effects, at_least) in cases {
        let proxy = Proxy::start(upstream, effects).await;
        let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
        for _ in 0..2 {
            let took = round_trip(&mut stream).await;
            assert!(
                took.as_secs_f64() >= at_least,
                "{effects}: a round trip took {took:?}, less than {at_least} s"
            );
        }
        drop(stream);
        proxy.shutdown().await;
    }
}

#[tokio::test]
async fn latency_does_not_hold_the_next_bytes_back() {
    // Latency delays every byte, not every read in turn: ten messages sent 20 ms apart through
    // 200 ms of latency all arrive within about 200 ms of their sending, not 10 x 200 ms.
    let (upstream, _) = echo_server().await;
    let proxy = Proxy::start(upstream, "direction=downstream&latency=0.2").await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let started = Instant::now();
    for _ in 0..10 {
        stream.write_all(b"0123456789").await.unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut back = [0; 100];
    stream.read_exact(&mut back).await.unwrap();
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(380), "{took:?}");
    assert!(
        took < Duration::from_secs(2),
        "reads were delayed one after another: {took:?}"
    );
    drop(stream);
    proxy.shutdown().await;
}

#[tokio::test]
async fn bps_is_not_faster_than_the_rate() {
    let block = Arc::new(pattern(1 << 20));
    let upstream = block_server(Arc::clone(&block)).await;
    let bps = 2_000_000u64;
    let proxy = Proxy::start(upstream, &format!("direction=downstream&bps={bps}")).await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (got, _, error) = read_all(&mut stream).await;
    let took = started.elapsed().as_secs_f64();
    assert_eq!(error, None);
    assert!(got == *block, "{} bytes, not the block", got.len());
    let floor = block.len() as f64 / bps as f64;
    assert!(
        took >= floor,
        "1 MiB at {bps} B/s took {took:.3} s, under {floor:.3} s"
    );
    drop(stream);
    proxy.shutdown().await;
}

#[tokio::test]
async fn slicing_splits_one_write_into_many_reads() {
    let block = Arc::new(pattern(1000));
    let upstream = block_server(Arc::clone(&block)).await;

    let plain = Proxy::start(upstream, "").await;
    let mut stream = TcpStream::connect(plain.addr).await.unwrap();
    let (got, plain_reads, _) = read_all(&mut stream).await;
    assert!(got == *block);
    drop(stream);
    plain.shutdown().await;

    let sliced = Proxy::start(upstream, "direction=downstream&slice=100&slice_delay=0.02").await;
    let mut stream = TcpStream::connect(sliced.addr).await.unwrap();
    let started = Instant::now();
    let (got, sliced_reads, _) = read_all(&mut stream).await;
    assert!(got == *block);
    // Ten pieces, nine pauses of 20 ms between them; a busy reader may find two pieces at once.
    assert!(
        sliced_reads >= 5,
        "one write of 1000 bytes in slices of 100 arrived in {sliced_reads} reads (plain: {plain_reads})"
    );
    assert!(started.elapsed() >= Duration::from_millis(180));
    drop(stream);
    sliced.shutdown().await;
}

#[tokio::test]
async fn timeout_forwards_nothing_then_closes() {
    let (upstream, received) = echo_server().await;
    let proxy = Proxy::start(upstream, "direction=upstream&timeout=0.3").await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let started = Instant::now();
    stream.write_all(b"never arrives").await.unwrap();
    let (got, _, _) = read_all(&mut stream).await;
    let took = started.elapsed();
    assert!(got.is_empty(), "got {got:?} back");
    assert!(took >= Duration::from_millis(300), "closed after {took:?}");
    assert!(
        took < Duration::from_secs(5),
        "not closed by the timeout: {took:?}"
    );
    assert_eq!(received.load(Ordering::Relaxed), 0);
    let stats = proxy.shutdown().await;
    assert_eq!(stats.timeouts, 1);
    assert_eq!(stats.bytes_upstream, 0);
}

#[tokio::test]
async fn reset_after_resets_after_that_many_bytes() {
    let block = Arc::new(pattern(100_000));
    let upstream = block_server(Arc::clone(&block)).await;
    let proxy = Proxy::start(upstream, "direction=downstream&reset_after=1000").await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (got, _, error) = read_all(&mut stream).await;
    assert_eq!(
        error,
        Some(ErrorKind::ConnectionReset),
        "ended without a reset"
    );
    // A reset may overtake bytes still in flight, never add any: at most the first 1000 arrive.
    assert!(got.len() <= 1000, "{} bytes before the reset", got.len());
    assert!(got[..] == block[..got.len()]);
    let stats = proxy.shutdown().await;
    assert_eq!(stats.resets, 1);
    assert_eq!(stats.bytes_downstream, 1000);
}

/// Connects to `addr` until the connection is refused (`ECONNREFUSED`), as it is once `down` has
/// stopped the listener; a connection made before that is dropped and tried again.
async fn refused(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match TcpStream::connect(addr).await {
            Err(err) if err.kind() == ErrorKind::ConnectionRefused => return,
            // Reset: the connection was in the accept queue when the listener stopped.
            Err(err) if err.kind() != ErrorKind::ConnectionReset => {
                panic!("connecting while down failed with {err}, not ECONNREFUSED")
            }
            _ => {
                assert!(Instant::now() < deadline, "still accepting while down");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    }
}

/// Connects to `addr` once it accepts again and the echo answers.
async fn echoing(addr: SocketAddr) -> TcpStream {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut stream) = TcpStream::connect(addr).await
            && stream.write_all(b"ping").await.is_ok()
        {
            let mut back = [0; 4];
            let echoed = tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut back));
            if let Ok(Ok(_)) = echoed.await {
                assert_eq!(&back, b"ping");
                return stream;
            }
        }
        assert!(Instant::now() < deadline, "never accepting again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn down_refuses_new_connections_until_lifted() {
    let (upstream, received) = echo_server().await;
    let proxy = Proxy::start(upstream, "down").await;
    refused(proxy.addr).await;
    assert_eq!(received.load(Ordering::Relaxed), 0);

    // A reload lifts it: the same address accepts again.
    proxy.live.set(TcpEffects::default());
    let stream = echoing(proxy.addr).await;
    drop(stream);
    let stats = proxy.shutdown().await;
    // Those refused by the kernel never reached the proxy; one accepted just before the listener
    // stopped would be counted as refused.
    assert_eq!(stats.accepted, stats.refused + 1);
    let metrics = stats.render_metrics();
    for line in [
        "slowlab_tcp_connections_open 0",
        "slowlab_tcp_bytes_total{direction=\"upstream\"} 4",
        "slowlab_tcp_bytes_total{direction=\"downstream\"} 4",
        "slowlab_tcp_connections_ended_total{reason=\"down\"} 0",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "{line} not in\n{metrics}"
        );
    }
}

#[tokio::test]
async fn down_from_the_rules_file_closes_open_connections_and_refuses_until_reloaded() {
    let (upstream, _) = echo_server().await;
    // Removed with its files when the test ends.
    let dir = tempfile::Builder::new()
        .prefix("slowlab-tcp-down-")
        .tempdir()
        .unwrap();
    let rules = dir.path().join("rules.toml");
    std::fs::write(&rules, "").unwrap();
    let live = LiveTcpEffects::load(Some(&rules), Vec::new(), "--tcp-effect").unwrap();
    let proxy = Proxy::with_live(TcpConfig::new(upstream.to_string()), live).await;
    let mut open = echoing(proxy.addr).await;

    std::fs::write(&rules, "[[tcp]]\ndown = true\n").unwrap();
    assert!(proxy.live.reload().unwrap().down);
    // The connection open when `down` came is closed, as Toxiproxy closes its connections.
    let (got, _, _) = tokio::time::timeout(Duration::from_secs(10), read_all(&mut open))
        .await
        .expect("the open connection was not closed by down");
    assert!(got.is_empty());
    refused(proxy.addr).await;

    std::fs::write(&rules, "[[tcp]]\nlatency = 0.01\n").unwrap();
    assert!(!proxy.live.reload().unwrap().down);
    let mut again = echoing(proxy.addr).await;
    round_trip(&mut again).await;
    drop((open, again));
    let stats = proxy.shutdown().await;
    assert_eq!(stats.closed_by_down, 1);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn effects_reloaded_apply_to_new_connections_only() {
    let (upstream, _) = echo_server().await;
    let proxy = Proxy::start(upstream, "").await;
    let mut before = TcpStream::connect(proxy.addr).await.unwrap();
    round_trip(&mut before).await;
    proxy
        .live
        .set(TcpEffects::parse("latency=0.5", "reload").unwrap());
    let mut after = TcpStream::connect(proxy.addr).await.unwrap();
    assert!(round_trip(&mut after).await >= Duration::from_secs(1));
    assert_eq!(proxy.stats.snapshot().open, 2);
    // The connection accepted before the reload keeps the effects it was accepted with (none):
    // its round trip is not slowed by the reload's 2 x 0.5 s.
    assert!(round_trip(&mut before).await < Duration::from_secs(1));
    drop((before, after));
    proxy.shutdown().await;
}

#[tokio::test]
async fn a_reset_from_the_upstream_is_passed_on_to_the_client() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut hello = [0; 5];
        stream.read_exact(&mut hello).await.unwrap();
        stream.write_all(b"partial answer").await.unwrap();
        stream.set_zero_linger().unwrap();
    });
    let proxy = Proxy::start(upstream, "").await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    stream.write_all(b"hello").await.unwrap();
    let (got, _, error) = read_all(&mut stream).await;
    assert!(b"partial answer".starts_with(&got), "{got:?}");
    assert_eq!(
        error,
        Some(ErrorKind::ConnectionReset),
        "a reset became a clean end"
    );
    let stats = proxy.shutdown().await;
    assert_eq!(stats.resets, 1);
}

#[tokio::test]
async fn connections_over_the_cap_wait_until_one_closes() {
    let (upstream, _) = echo_server().await;
    let mut config = TcpConfig::new(upstream.to_string());
    config.max_connections = Some(1);
    let proxy = Proxy::with_config(config, TcpEffects::default()).await;
    let mut first = TcpStream::connect(proxy.addr).await.unwrap();
    round_trip(&mut first).await;
    // The second connects (the kernel queues it) but is not served while the first is open.
    let mut second = TcpStream::connect(proxy.addr).await.unwrap();
    second.write_all(b"ping").await.unwrap();
    let mut back = [0; 4];
    let waited = tokio::time::timeout(Duration::from_millis(300), second.read_exact(&mut back));
    assert!(waited.await.is_err(), "served over the cap");
    assert_eq!(proxy.stats.snapshot().accepted, 1);
    drop(first);
    second.read_exact(&mut back).await.unwrap();
    assert_eq!(&back, b"ping");
    drop(second);
    proxy.shutdown().await;
}

#[tokio::test]
async fn an_unreachable_upstream_resets_the_client() {
    // A port that was just free: nothing listens there.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let proxy = Proxy::start(closed, "").await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    let (got, _, error) = read_all(&mut stream).await;
    assert!(got.is_empty());
    assert_eq!(error, Some(ErrorKind::ConnectionReset));
    let stats = proxy.shutdown().await;
    assert_eq!(stats.upstream_failed, 1);
}

#[tokio::test]
async fn an_upstream_that_is_the_proxy_itself_is_refused_at_start() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let own = listener.local_addr().unwrap();
    let err = tcp::run(
        listener,
        TcpConfig::new(own.to_string()),
        LiveTcpEffects::fixed(TcpEffects::default()),
        Arc::new(TcpStats::default()),
        std::future::pending(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(err.to_string().contains("loop back"), "{err}");

    // Connecting to an unspecified address reaches loopback: each of these would chain one
    // client's connection into as many proxy connections as the limits allow.
    for (listen, upstream) in [
        ("127.0.0.1", "0.0.0.0"),
        ("0.0.0.0", "0.0.0.0"),
        ("0.0.0.0", "127.0.0.1"),
    ] {
        let listener = TcpListener::bind((listen, 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let run = tcp::run(
            listener,
            TcpConfig::new(format!("{upstream}:{port}")),
            LiveTcpEffects::fixed(TcpEffects::default()),
            Arc::new(TcpStats::default()),
            std::future::pending(),
        );
        let err = tokio::time::timeout(Duration::from_secs(5), run)
            .await
            .unwrap_or_else(|_| panic!("listen {listen}, upstream {upstream}: not refused"))
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::InvalidInput,
            "{listen} -> {upstream}"
        );
    }

    for bad in [
        "http://127.0.0.1:80",
        "127.0.0.1",
        ":6379",
        "localhost:http",
        "host:0",
    ] {
        let detail = tcp::parse_upstream(bad).unwrap_err();
        assert!(detail.contains("HOST:PORT"), "{bad}: {detail}");
    }
    for (good, address) in [
        ("tcp://127.0.0.1:6379", "127.0.0.1:6379"),
        ("localhost:5432", "localhost:5432"),
        ("[::1]:6379", "[::1]:6379"),
    ] {
        assert_eq!(tcp::parse_upstream(good).as_deref(), Ok(address));
    }
}

#[tokio::test]
async fn the_drain_cuts_off_connections_still_open_at_its_deadline() {
    let (upstream, _) = echo_server().await;
    let mut config = TcpConfig::new(upstream.to_string());
    config.drain_timeout = Duration::from_millis(200);
    let proxy = Proxy::with_config(config, TcpEffects::default()).await;
    let mut stream = TcpStream::connect(proxy.addr).await.unwrap();
    round_trip(&mut stream).await;
    let stats = proxy.shutdown().await;
    assert_eq!(stats.cut_off, 1);
    assert_eq!(stats.open, 0, "a connection cut off is no longer open");
    let (_, _, _) = read_all(&mut stream).await;
}

#[test]
fn serve_accepts_a_rules_file_with_tcp_tables() {
    let text = r#"
        [[rule]]
        path = "/api/orders"
        delay = 0.5

        [[tcp]]
        direction = "downstream"
        latency = 0.1
    "#;
    let rules = slowlab_server::Rules::parse(text, "rules.toml", Path::new(".")).unwrap();
    assert_eq!(rules.len(), 1);
    let effects = tcp::effects_from(Some((text, "rules.toml")), &[], "--tcp-effect").unwrap();
    assert_eq!(effects.downstream.latency, Duration::from_millis(100));
}

/// Whether a test's tool is there; when not, says why the test skips, or fails it under
/// `SLOWLAB_REQUIRE_TOOLS=1`.
fn usable(holds: bool, reason: &str) -> bool {
    if holds {
        return true;
    }
    assert!(
        std::env::var("SLOWLAB_REQUIRE_TOOLS").as_deref() != Ok("1"),
        "SLOWLAB_REQUIRE_TOOLS=1 but {reason}"
    );
    eprintln!("skipped: {reason}");
    false
}

/// A `redis-server` on a free loopback port, stopped when dropped.
struct Redis {
    child: Child,
    addr: SocketAddr,
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Redis {
    /// A `redis-server` accepting connections, or `None` (the test skips) when it is not
    /// installed.
    async fn start() -> Option<Redis> {
        let found = Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|status| status.success());
        if !usable(
            found,
            "redis-server is not installed (apt-get install redis-server)",
        ) {
            return None;
        }
        let port = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let redis = Redis {
            child: Command::new("redis-server")
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .stdout(Stdio::null())
                .spawn()
                .unwrap(),
            addr: ([127, 0, 0, 1], port).into(),
        };
        let started = Instant::now();
        while TcpStream::connect(redis.addr).await.is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis did not start"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Some(redis)
    }

    /// Sends `args` as one command to the server directly, not through a proxy; its answer.
    async fn direct(&self, args: &[&[u8]]) -> Vec<u8> {
        let mut stream = TcpStream::connect(self.addr).await.unwrap();
        stream.write_all(&command(args)).await.unwrap();
        let mut answer = vec![0; 64 * 1024];
        let n = stream.read(&mut answer).await.unwrap();
        answer.truncate(n);
        answer
    }
}

/// `args` as a Redis command (RESP: an array of bulk strings).
fn command(args: &[&[u8]]) -> Vec<u8> {
    let mut out = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        out.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        out.extend_from_slice(arg);
        out.extend_from_slice(b"\r\n");
    }
    out
}

/// Redis's answer to `GET` of `value`.
fn bulk(value: &[u8]) -> Vec<u8> {
    let mut out = format!("${}\r\n", value.len()).into_bytes();
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
    out
}

/// Reads exactly `len` bytes; returns them and the number of reads it took.
async fn read_counted(stream: &mut TcpStream, len: usize) -> (Vec<u8>, usize) {
    let mut got = vec![0; len];
    let (mut filled, mut reads) = (0, 0);
    while filled < len {
        let n = stream.read(&mut got[filled..]).await.unwrap();
        assert!(n > 0, "closed after {filled} of {len} bytes");
        filled += n;
        reads += 1;
    }
    (got, reads)
}

#[tokio::test]
async fn redis_through_the_proxy_with_latency_and_a_reset() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let upstream = redis.addr;

    let proxy = Proxy::start(upstream, "direction=downstream&latency=0.15").await;
    let mut redis = TcpStream::connect(proxy.addr).await.unwrap();
    let started = Instant::now();
    redis
        .write_all(
            b"*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n",
        )
        .await
        .unwrap();
    let expected = b"+OK\r\n$5\r\nvalue\r\n";
    let mut answer = vec![0; expected.len()];
    redis.read_exact(&mut answer).await.unwrap();
    assert_eq!(answer, expected);
    assert!(started.elapsed() >= Duration::from_millis(150));
    drop(redis);
    proxy.shutdown().await;

    // A reset after the first 5 bytes of the answers: the client sees `+OK\r\n` at most, then RST.
    let proxy = Proxy::start(upstream, "direction=downstream&reset_after=5").await;
    let mut redis = TcpStream::connect(proxy.addr).await.unwrap();
    redis
        .write_all(b"*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPING\r\n")
        .await
        .unwrap();
    let (got, _, error) = read_all(&mut redis).await;
    assert_eq!(error, Some(ErrorKind::ConnectionReset));
    assert!(b"+PONG\r\n".starts_with(&got), "{got:?}");
    proxy.shutdown().await;
}

#[tokio::test]
async fn redis_through_the_proxy_at_a_bandwidth_and_in_slices() {
    let Some(redis) = Redis::start().await else {
        return;
    };
    let bps = 400_000.0;
    let value = pattern(200_000);
    let set = command(&[b"SET", b"big", &value]);

    // Upstream: the command itself is paced, so its `+OK` comes no sooner than the rate allows.
    let proxy = Proxy::start(redis.addr, &format!("direction=upstream&bps={bps}")).await;
    let mut client = TcpStream::connect(proxy.addr).await.unwrap();
    let started = Instant::now();
    client.write_all(&set).await.unwrap();
    let (answer, _) = read_counted(&mut client, 5).await;
    let took = started.elapsed().as_secs_f64();
    assert_eq!(answer, b"+OK\r\n");
    let floor = set.len() as f64 / bps;
    assert!(
        (floor..floor * 1.3 + 0.2).contains(&took),
        "SET of {} bytes up at {bps} B/s took {took:.3} s, not about {floor:.3} s",
        set.len()
    );
    drop(client);
    proxy.shutdown().await;

    // Downstream: the answer to GET.
    let proxy = Proxy::start(redis.addr, &format!("direction=downstream&bps={bps}")).await;
    let mut client = TcpStream::connect(proxy.addr).await.unwrap();
    let expected = bulk(&value);
    let started = Instant::now();
    client.write_all(&command(&[b"GET", b"big"])).await.unwrap();
    let (answer, _) = read_counted(&mut client, expected.len()).await;
    let took = started.elapsed().as_secs_f64();
    assert!(answer == expected, "GET through bps= changed the value");
    let floor = expected.len() as f64 / bps;
    assert!(
        (floor..floor * 1.3 + 0.2).contains(&took),
        "GET of {} bytes down at {bps} B/s took {took:.3} s, not about {floor:.3} s",
        expected.len()
    );
    drop(client);
    proxy.shutdown().await;

    // Slices: Redis writes the answer to GET of 1,000 bytes at once; sliced into pieces of
    // 100 bytes with 20 ms between them, it takes many reads and at least the pauses.
    let small = pattern(1000);
    assert_eq!(redis.direct(&[b"SET", b"small", &small]).await, b"+OK\r\n");
    let proxy = Proxy::start(
        redis.addr,
        "direction=downstream&slice=100&slice_delay=0.02",
    )
    .await;
    let mut client = TcpStream::connect(proxy.addr).await.unwrap();
    let expected = bulk(&small);
    let started = Instant::now();
    client
        .write_all(&command(&[b"GET", b"small"]))
        .await
        .unwrap();
    let (answer, reads) = read_counted(&mut client, expected.len()).await;
    let took = started.elapsed();
    assert!(answer == expected, "GET through slice= changed the value");
    // 11 pieces, 10 pauses; a busy reader may find two pieces at once.
    assert!(
        reads >= 5,
        "{} bytes in slices of 100 came in {reads} reads",
        expected.len()
    );
    assert!(took >= Duration::from_millis(180), "{took:?}");
    drop(client);
    proxy.shutdown().await;
}

#[tokio::test]
async fn redis_through_the_proxy_with_a_timeout_and_down() {
    let Some(redis) = Redis::start().await else {
        return;
    };

    // timeout: the command is held, never forwarded, and the client's connection closed.
    let proxy = Proxy::start(redis.addr, "direction=upstream&timeout=0.3").await;
    let mut client = TcpStream::connect(proxy.addr).await.unwrap();
    let started = Instant::now();
    client
        .write_all(&command(&[b"SET", b"held", b"1"]))
        .await
        .unwrap();
    let (got, _, _) = read_all(&mut client).await;
    let took = started.elapsed();
    assert!(got.is_empty(), "got {got:?}");
    assert!(
        (Duration::from_millis(300)..Duration::from_secs(5)).contains(&took),
        "closed after {took:?}, not after the 0.3 s timeout"
    );
    assert_eq!(
        redis.direct(&[b"EXISTS", b"held"]).await,
        b":0\r\n",
        "the held command reached Redis"
    );
    assert_eq!(proxy.shutdown().await.timeouts, 1);

    // down: the open connection is closed, new ones are refused, and a reload lifts it.
    let proxy = Proxy::start(redis.addr, "").await;
    let ping = command(&[b"PING"]);
    let mut open = TcpStream::connect(proxy.addr).await.unwrap();
    open.write_all(&ping).await.unwrap();
    assert_eq!(read_counted(&mut open, 7).await.0, b"+PONG\r\n");
    proxy.live.set(TcpEffects::parse("down", "reload").unwrap());
    let (got, _, _) = tokio::time::timeout(Duration::from_secs(5), read_all(&mut open))
        .await
        .expect("the open connection was not closed by down");
    assert!(got.is_empty(), "got {got:?}");
    refused(proxy.addr).await;

    proxy.live.set(TcpEffects::default());
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut again = loop {
        if let Ok(stream) = TcpStream::connect(proxy.addr).await {
            break stream;
        }
        assert!(Instant::now() < deadline, "never accepting again");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    again.write_all(&ping).await.unwrap();
    assert_eq!(read_counted(&mut again, 7).await.0, b"+PONG\r\n");
    drop((open, again));
    assert_eq!(proxy.shutdown().await.closed_by_down, 1);
}

#[test]
fn the_published_rules_schema_lists_every_tcp_field() {
    let schema: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/rules.schema.json")).unwrap();
    let mut listed: Vec<&str> = schema["$defs"]["tcp"]["properties"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut read: Vec<&str> = tcp::KEYS.to_vec();
    read.push("name");
    listed.sort_unstable();
    read.sort_unstable();
    assert_eq!(listed, read);
}

#[test]
fn the_example_on_the_tcp_page_loads() {
    let page = include_str!("../../../docs/proxy-tcp.md");
    let toml = page
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("a TOML example on docs/proxy-tcp.md");
    let effects = tcp::effects_from(Some((toml, "proxy-tcp.md")), &[], "--tcp-effect").unwrap();
    assert_eq!(effects.upstream.latency, Duration::from_millis(50));
    assert_eq!(effects.downstream.bps, Some(1_000_000));
    assert!(effects.downstream.slice.is_some() && effects.upstream.slice.is_none());
    assert_eq!(effects.upstream.reset_after, Some(100_000));
    slowlab_server::Rules::parse(toml, "proxy-tcp.md", Path::new(".")).unwrap();
}
