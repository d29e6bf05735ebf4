//! Memory per idle session: heap bytes the sidecar holds for each open, idle session.
//!
//! Opens N gateway connections straight to a scripted worldserver (the baseline: what
//! the scripted ends themselves cost), then N through an in-process sidecar, and
//! prints the difference per session, measured by a counting allocator, next to the
//! goal (at most 8 KiB, issue 15), with the size classes the bytes are in. Every
//! connection has sent one frame and read its echo first; at the end, a round trip
//! through the first, middle and last session shows they all still work. Run with
//! `cargo bench --bench idle_sessions`; `TC9_IDLE_SESSIONS` sets N (default 1000; 10,000
//! needs about 42,000 descriptors: `ulimit -n 65536` first).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tc9_sidecar::config::Config;
use tc9_sidecar::Sidecar;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The system allocator, counting live bytes.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

/// Live allocations by size, in 16-byte classes up to 64 KiB (the last class holds
/// everything larger): where an idle session's bytes go.
static BY_SIZE: [AtomicIsize; SIZE_CLASSES] = [const { AtomicIsize::new(0) }; SIZE_CLASSES];
const SIZE_CLASSES: usize = 4096;

fn class(size: usize) -> usize {
    (size / 16).min(SIZE_CLASSES - 1)
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        BY_SIZE[class(layout.size())].fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        BY_SIZE[class(layout.size())].fetch_sub(1, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        BY_SIZE[class(layout.size())].fetch_sub(1, Ordering::Relaxed);
        BY_SIZE[class(new_size)].fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Live allocations per size class now.
fn by_size() -> Vec<isize> {
    BY_SIZE.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

/// Growth of each size class from `before` to `after`.
fn growth(before: &[isize], after: &[isize]) -> Vec<isize> {
    before.iter().zip(after).map(|(b, a)| a - b).collect()
}

/// Prints the size classes where `grew` exceeds `baseline` by at least 0.9
/// allocations per session.
fn print_breakdown(grew: &[isize], baseline: &[isize], n: usize) {
    println!("sidecar allocations per idle session by size, over the baseline:");
    for (class, (g, b)) in grew.iter().zip(baseline).enumerate() {
        let per = (g - b) as f64 / n as f64;
        if per >= 0.9 {
            println!(
                "  {:>5}..{:<5} bytes: {per:.2} per session",
                class * 16,
                class * 16 + 15
            );
        }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A worldserver that accepts connections, counting them, and echoes what it reads
/// (a client frame read back is a valid server frame of the same length).
async fn worldserver(accepted: Arc<AtomicUsize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = [0u8; 256];
                while let Ok(n @ 1..) = stream.read(&mut buf).await {
                    if stream.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

/// `CMSG_MESSAGECHAT` with a 32-byte body: nothing the sidecar watches.
fn frame() -> Vec<u8> {
    let mut bytes = 36u16.to_be_bytes().to_vec();
    bytes.extend_from_slice(&0x95u32.to_le_bytes());
    bytes.extend_from_slice(&[0x5A; 32]);
    bytes
}

/// Sends one frame on `stream` and reads its echo back; the time it took.
async fn round_trip(stream: &mut TcpStream) -> Duration {
    let sent = frame();
    let mut echo = vec![0u8; sent.len()];
    let start = Instant::now();
    stream.write_all(&sent).await.unwrap();
    stream.read_exact(&mut echo).await.unwrap();
    assert_eq!(echo, sent, "the echo comes back unchanged");
    start.elapsed()
}

/// A round trip through the first, middle and last of `sessions`: which, and how
/// long each took.
async fn round_trips_among(sessions: &mut [TcpStream]) -> ([usize; 3], Vec<Duration>) {
    let n = sessions.len();
    let picks = [0, n / 2, n - 1];
    let mut times = Vec::new();
    for &i in &picks {
        times.push(round_trip(&mut sessions[i]).await);
    }
    (picks, times)
}

/// Opens `n` connections to `target`, each sending one frame and reading its echo
/// (past the first-frame limit, its read buffer taken and given back), and waits
/// until the worldserver holds them all.
async fn open(n: usize, target: SocketAddr, accepted: &AtomicUsize) -> Vec<TcpStream> {
    let before = accepted.load(Ordering::SeqCst);
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let mut stream = TcpStream::connect(target).await.unwrap();
        round_trip(&mut stream).await;
        streams.push(stream);
    }
    while accepted.load(Ordering::SeqCst) < before + n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    streams
}

/// The resident set of process `pid` (`self` for this one), from
/// `/proc/<pid>/status` (Linux), in KiB.
fn rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn main() {
    let n: usize = std::env::var("TC9_IDLE_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let accepted = Arc::new(AtomicUsize::new(0));
        let ws = worldserver(Arc::clone(&accepted)).await;
        let config = Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            upstream: ws.to_string(),
            ..Config::default()
        };
        let running = Sidecar::build(&config).await.unwrap();
        let sidecar = running.addr();
        // Warm up lazily allocated runtime structures.
        drop(open(50, sidecar, &accepted).await);
        drop(open(50, ws, &accepted).await);
        tokio::time::sleep(Duration::from_millis(500)).await;

        let start = live();
        let classes = by_size();
        let direct = open(n, ws, &accepted).await;
        let baseline = live() - start;
        let baseline_classes = growth(&classes, &by_size());
        drop(direct);
        tokio::time::sleep(Duration::from_millis(500)).await;

        let start = live();
        let classes = by_size();
        let proxied = open(n, sidecar, &accepted).await;
        let total = live() - start;
        print_breakdown(&growth(&classes, &by_size()), &baseline_classes, n);
        let per_session = (total - baseline) as f64 / n as f64;
        println!("idle sessions: {n}");
        println!("heap for {n} direct connections (baseline): {baseline} bytes");
        println!("heap for {n} connections through the sidecar: {total} bytes");
        println!(
            "sidecar heap per idle session: {:.0} bytes ({:.1} KiB; goal at most 8 KiB)",
            per_session,
            per_session / 1024.0
        );
        // Among them, sessions still work: a round trip through a few, first to last.
        let mut proxied = proxied;
        let (picks, times) = round_trips_among(&mut proxied).await;
        println!(
            "round trip through sessions {picks:?} of the {n} open: {:?}; process RSS {} KiB",
            times,
            rss_kib("self").map_or("?".to_owned(), |k| k.to_string())
        );
        drop(proxied);
        one_process().await;
    });
}

/// The soft `RLIMIT_NOFILE` of this process.
fn nofile() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes the struct it is given and nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return 1024;
    }
    limit.rlim_cur
}

/// Up to 10,000 (`TC9_PROCESS_SESSIONS`) sessions on one sidecar process: as many as
/// the descriptor limit lets this process hold (two per session: the gateway's end
/// and the worldserver's), the sidecar's resident set before and after, and a round
/// trip through sessions among them.
async fn one_process() {
    let want: u64 = std::env::var("TC9_PROCESS_SESSIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let limit = nofile();
    let n = want.min(limit.saturating_sub(100) / 2) as usize;
    if n < want as usize {
        println!(
            "note: RLIMIT_NOFILE is {limit} here (and cannot be raised): {n} sessions on one process instead of {want}"
        );
    }
    let accepted = Arc::new(AtomicUsize::new(0));
    let ws = worldserver(Arc::clone(&accepted)).await;
    let metrics = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .unwrap();
    let process = tc9_testkit::SidecarProcess::spawn_limited(
        env!("CARGO_BIN_EXE_tc9-sidecar"),
        &[
            ("upstream", ws.to_string()),
            ("sidecar_id", "idle".into()),
            ("metrics", metrics.to_string()),
            ("fd_reserve", "32".into()),
            ("log_level", "warn".into()),
        ],
        Some(limit),
    )
    .await
    .unwrap();
    let pid = process.pid().unwrap().to_string();
    drop(open(50, process.addr, &accepted).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = rss_kib(&pid).unwrap_or(0);
    let started = Instant::now();
    let mut sessions = open(n, process.addr, &accepted).await;
    let opened = started.elapsed();
    let after = rss_kib(&pid).unwrap_or(0);
    let (picks, times) = round_trips_among(&mut sessions).await;
    println!(
        "one sidecar process: {n} sessions open (opened in {:.1} s); its RSS {before} KiB -> {after} KiB, {:.1} KiB per session; round trip through sessions {picks:?}: {times:?}",
        opened.as_secs_f64(),
        (after.saturating_sub(before)) as f64 / n as f64,
    );
    drop(sessions);
    let _ = process.kill().await;
}
