//! Memory per idle session: heap bytes the sidecar holds for each open, idle session.
//!
//! Opens N gateway connections straight to a scripted worldserver (the baseline: what
//! the scripted ends themselves cost), then N through an in-process sidecar, and
//! prints the difference per session, measured by a counting allocator, next to the
//! goal (at most 8 KiB, issue 15). Run with `cargo bench --bench idle_sessions`; `TC9_IDLE_SESSIONS`
//! sets N (default 1000).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicIsize, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tc9_sidecar::config::Config;
use tc9_sidecar::Sidecar;
use tokio::io::AsyncReadExt;
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

/// A worldserver that accepts and keeps connections open, counting them.
async fn worldserver(accepted: Arc<AtomicUsize>) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            accepted.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut byte = [0u8; 1];
                let _ = stream.read(&mut byte).await;
            });
        }
    });
    addr
}

/// Opens `n` connections to `target` and waits until the worldserver holds them all.
async fn open(n: usize, target: SocketAddr, accepted: &AtomicUsize) -> Vec<TcpStream> {
    let before = accepted.load(Ordering::SeqCst);
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        streams.push(TcpStream::connect(target).await.unwrap());
    }
    while accepted.load(Ordering::SeqCst) < before + n {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    streams
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
        drop(proxied);
    });
}
