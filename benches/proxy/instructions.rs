//! Instructions and system calls per forwarded frame, counts that machine noise does
//! not move: the sidecar process (`tc9-sidecar run`, pass-through, the auth database
//! only in `wotlk-crypt` mode) against a standalone relay process (this bench binary
//! run as `relay LISTEN UPSTREAM`: accept, connect, `tokio::io::copy_bidirectional`,
//! on a default multi-thread runtime as the sidecar's).
//!
//! Instructions are counted by valgrind's callgrind, system calls natively by `perf
//! stat -e raw_syscalls:sys_enter` attached once the process listens (under valgrind
//! `clock_gettime` is a system call; natively it is a vDSO call), with the socket
//! calls and the waits (`epoll_wait`, `futex`) printed apart: the waits follow
//! the timing of each run, the socket calls the design. Each process runs
//! twice per tool on the same kind of traffic, once with more round trips than the
//! other; both runs pay the same start-up, handshakes and shutdown, so the difference
//! divided by the extra frames is the cost of a frame. Counting starts once every
//! session is through its handshake and a first round trip: the sidecar's
//! instruction counters are zeroed then (`callgrind_control --zero`), since its
//! metrics clock calibrates at start-up in a loop timed by the wall clock, millions
//! of instructions that vary from run to run, and the key lookups of `wotlk-crypt`
//! mode grow the auth database pool by as many connections as their timing asks.
//!
//! Traffic: every session sends requests one at a time and the scripted worldserver
//! answers each; the round trips are numbered across sessions, and request `j` has a
//! 16..200-byte body, every 50th 4 KiB, its answer the same size but every 500th
//! 40 KiB (a large header).
//!
//! Run with `TC9_BENCH_PHASES=instructions cargo bench --bench proxy`; valgrind and
//! perf from Debian's packages (`valgrind`, `linux-perf`). `TC9_BENCH_CG_EXTRA` sets
//! the extra round trips (default 2,000, or four per session if more); `TC9_BENCH_CG_KEEP=1` keeps the tools'
//! files (for `callgrind_annotate`).

use std::process::{Child, Command, Stdio};

use super::counts::{read_instructions, read_syscalls, Syscalls, PERF_EVENTS};
use super::*;

/// The relay process's entry point: `relay LISTEN UPSTREAM`, until SIGTERM.
pub(crate) fn relay_main(listen: &str, upstream: &str) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(listen).await?;
        let upstream: SocketAddr = upstream.parse()?;
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            () = relay(listener, upstream) => {}
            _ = term.recv() => {}
        }
        anyhow::Ok(())
    })
}

/// How a process is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tool {
    /// Under valgrind's callgrind: instructions.
    Callgrind,
    /// Natively, `perf stat -e raw_syscalls:sys_enter` attached once it listens:
    /// system calls (under valgrind `clock_gettime` is one; natively a vDSO call).
    Perf,
}

/// One proxy process being counted, with its worldserver.
struct Counted {
    tool: Tool,
    target: Target,
    child: Child,
    perf: Option<Child>,
    out: std::path::PathBuf,
    addr: SocketAddr,
    world: JoinHandle<()>,
}

/// Round trips each session makes in the shorter and the longer run.
fn round_trips(n: usize) -> (usize, usize) {
    // At least four extra round trips per session, so that few-frame effects of a
    // session's start weigh little.
    let extra: usize = env_or("TC9_BENCH_CG_EXTRA", 2000.max(4 * n));
    let short = (200 / n).max(1);
    (short, short + extra.div_ceil(n))
}

/// Body sizes of round trip `j` (numbered across sessions): request and answer.
fn sizes(j: usize) -> (usize, usize) {
    let request = if j % 50 == 49 {
        4096
    } else {
        HEAD + (j * 37) % (200 - HEAD)
    };
    let answer = if j % 500 == 499 { MAX_BODY } else { request };
    (request, answer)
}

/// Whether something on this machine listens on TCP `port` (`/proc/net/tcp`).
fn listening(port: u16) -> bool {
    let Ok(table) = std::fs::read_to_string("/proc/net/tcp") else {
        return false;
    };
    let wanted = format!(":{port:04X}");
    table.lines().skip(1).any(|line| {
        let mut fields = line.split_whitespace();
        let local = fields.nth(1).unwrap_or("");
        let state = fields.nth(1).unwrap_or("");
        local.ends_with(&wanted) && state == "0A"
    })
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// Sends `signal` to process `pid`.
fn signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) on a child of ours.
    unsafe { libc::kill(pid as i32, signal) };
}

impl Counted {
    /// Starts `target` in front of a fresh scripted worldserver, to be counted by
    /// `tool` from [`Counted::count_from_here`].
    fn start(
        world_rt: &Runtime,
        tool: Tool,
        target: Target,
        link: Link,
        auth_db_url: &str,
    ) -> Result<Counted> {
        let listener = world_rt.block_on(TcpListener::bind("127.0.0.1:0"))?;
        let world_addr = listener.local_addr()?;
        let world = world_rt.spawn(worldserver(listener, link, Arc::default()));
        let port = free_port()?;
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let out = std::env::temp_dir().join(format!(
            "tc9-{tool:?}-{}-{}-{port}.out",
            std::process::id(),
            target.name()
        ));
        let (program, args): (std::path::PathBuf, Vec<String>) = match target {
            Target::Relay => (
                std::env::current_exe()?,
                vec!["relay".into(), addr.to_string(), world_addr.to_string()],
            ),
            _ => (env!("CARGO_BIN_EXE_tc9-sidecar").into(), vec!["run".into()]),
        };
        let mut command = match tool {
            Tool::Callgrind => {
                let mut command = Command::new("valgrind");
                command
                    .arg("--tool=callgrind")
                    .arg(format!("--callgrind-out-file={}", out.display()))
                    .arg(program);
                command
            }
            Tool::Perf => Command::new(program),
        };
        command
            .args(args)
            .env("TC9_LISTEN", addr.to_string())
            .env("TC9_UPSTREAM", world_addr.to_string())
            .env("TC9_METRICS", format!("127.0.0.1:{}", free_port()?))
            .env("TC9_SIDECAR_ID", "counted")
            .env("TC9_LOG_LEVEL", "warn")
            .env("TC9_SHUTDOWN_GRACE_SECS", "2")
            .env(
                "TC9_LINK_MODE",
                match link {
                    Link::Plain => "plain",
                    Link::Crypt => "wotlk-crypt",
                },
            )
            .env("TC9_AUTH_DB_URL", auth_db_url)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(out.with_extension("err"))?);
        let mut child = command
            .spawn()
            .with_context(|| format!("{tool:?} runs the {}", target.name()))?;
        let started = Instant::now();
        while !listening(port) {
            if let Some(status) = child.try_wait()? {
                let said = std::fs::read_to_string(out.with_extension("err")).unwrap_or_default();
                let last = said.lines().last().unwrap_or("nothing on stderr");
                bail!("{} ({tool:?}) exited with {status}: {last}", target.name());
            }
            ensure!(started.elapsed() < STEP, "{} never listened", target.name());
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(Counted {
            tool,
            target,
            child,
            perf: None,
            out,
            addr,
            world,
        })
    }

    /// Start-up and the sessions' handshakes done: counting starts here. The
    /// sidecar's timers wake it, so it takes the zeroing command while idle; the
    /// relay has none (it would take it only once traffic came), and its start-up
    /// does not vary between runs. The handshakes (and in `wotlk-crypt` mode the
    /// key lookups, and the auth database pool they grow) are left out of the count.
    fn count_from_here(&mut self) -> Result<()> {
        match self.tool {
            Tool::Callgrind if self.target == Target::Sidecar => {
                let zeroed = Command::new("callgrind_control")
                    .arg("--zero")
                    .arg(self.child.id().to_string())
                    .stdout(Stdio::null())
                    .status()?;
                ensure!(zeroed.success(), "callgrind_control --zero failed");
            }
            Tool::Callgrind => {}
            Tool::Perf => {
                self.perf = Some(
                    Command::new("perf")
                        .args(["stat", "-e", &PERF_EVENTS.join(","), "-x", ",", "-o"])
                        .arg(&self.out)
                        .arg("-p")
                        .arg(self.child.id().to_string())
                        .stdout(Stdio::null())
                        .stderr(Stdio::null())
                        .spawn()
                        .context("perf runs (Debian package linux-perf)")?,
                );
                std::thread::sleep(Duration::from_millis(300));
            }
        }
        Ok(())
    }

    /// Stops the counting and the process; what was counted: instructions, or one
    /// figure per [`PERF_EVENTS`] entry.
    fn finish(mut self) -> Result<Vec<u64>> {
        if let Some(mut perf) = self.perf.take() {
            signal(perf.id(), libc::SIGINT);
            perf.wait()?;
        }
        signal(self.child.id(), libc::SIGTERM);
        let status = self.child.wait()?;
        self.world.abort();
        ensure!(status.success(), "the counted process exited with {status}");
        let count = match self.tool {
            Tool::Callgrind => read_instructions(&self.out).map(|n| vec![n]),
            Tool::Perf => read_syscalls(&self.out),
        };
        if std::env::var_os("TC9_BENCH_CG_KEEP").is_some() {
            eprintln!("output kept: {}", self.out.display());
        } else {
            let _ = std::fs::remove_file(&self.out);
        }
        let _ = std::fs::remove_file(self.out.with_extension("err"));
        count
    }
}

/// A session of the counted traffic, its handshake done.
type Session = (TcpStream, FrameCodec, BytesMut, Option<HeaderCipher>);

/// Sends round trip `j` on `session` and reads its answer.
async fn round_trip(session: &mut Session, out: &mut Vec<u8>, j: usize) -> Result<()> {
    let (stream, codec, buf, cipher) = session;
    let (request, answer) = sizes(j);
    out.clear();
    put_request(out, cipher, request, answer, SATURATING, 0);
    stream.write_all(out).await?;
    let frame = read_frame(stream, codec, buf).await?;
    ensure!(frame.body().len() == answer, "an answer of the asked size");
    Ok(())
}

/// `n` sessions through `addr`, each through its handshake and a first round trip.
async fn connect(addr: SocketAddr, link: Link, n: usize) -> Result<Vec<Session>> {
    let gate = Arc::new(Semaphore::new(CONNECT_CONCURRENCY));
    let mut tasks = Vec::with_capacity(n);
    for index in 0..n {
        let gate = Arc::clone(&gate);
        tasks.push(tokio::spawn(async move {
            let permit = gate.acquire_owned().await?;
            let mut session = handshake(addr, link, index).await?;
            drop(permit);
            round_trip(&mut session, &mut Vec::new(), index).await?;
            anyhow::Ok(session)
        }));
    }
    let mut sessions = Vec::with_capacity(n);
    for task in tasks {
        sessions.push(task.await??);
    }
    Ok(sessions)
}

/// Every session makes `rounds` more round trips one at a time, then closes.
async fn drive(sessions: Vec<Session>, rounds: usize) -> Result<()> {
    let n = sessions.len();
    let mut tasks = Vec::with_capacity(n);
    for (index, mut session) in sessions.into_iter().enumerate() {
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::with_capacity(8192);
            for round in 1..=rounds {
                round_trip(&mut session, &mut out, round * n + index).await?;
            }
            session.0.shutdown().await?;
            anyhow::Ok(())
        }));
    }
    for task in tasks {
        task.await??;
    }
    Ok(())
}

/// Counts `target` over both runs with each tool; instructions and syscalls per
/// forwarded frame.
fn per_frame(bench: &Bench<'_>, target: Target, link: Link, n: usize) -> Result<(f64, Syscalls)> {
    let (short, long) = round_trips(n);
    // Each round trip forwards two frames: the request and its answer.
    let frames = (2 * n * (long - short)) as f64;
    let mut figures = Vec::new();
    for tool in [Tool::Callgrind, Tool::Perf] {
        let mut counts = Vec::new();
        for rounds in [short, long] {
            // A port picked free can be taken before the process binds it: try again.
            let mut attempt = 0;
            let mut counted = loop {
                match Counted::start(bench.world_rt, tool, target, link, &bench.auth_db_url) {
                    Err(e) if attempt < 2 => {
                        eprintln!("{} did not start ({e:#}); again", target.name());
                        attempt += 1;
                    }
                    started => break started?,
                }
            };
            let sessions = bench
                .gateway_rt
                .block_on(async {
                    tokio::time::timeout(STEP, connect(counted.addr, link, n)).await
                })
                .context("the sessions' handshakes timed out")??;
            counted.count_from_here()?;
            bench
                .gateway_rt
                .block_on(async { tokio::time::timeout(STEP, drive(sessions, rounds)).await })
                .context("the counted traffic timed out")??;
            counts.push(counted.finish()?);
        }
        let extra: Vec<f64> = counts[1]
            .iter()
            .zip(&counts[0])
            .map(|(long, short)| (*long as f64 - *short as f64) / frames)
            .collect();
        figures.push(extra);
    }
    Ok((figures[0][0], Syscalls::from_events(&figures[1])))
}

/// Prints instructions and syscalls per forwarded frame, relay and sidecar, for every
/// link and session count, with the ratio.
pub(crate) fn run(bench: &Bench<'_>, links: &[Link]) -> Result<()> {
    for (tool, package) in [("valgrind", "valgrind"), ("perf", "linux-perf")] {
        if Command::new(tool).arg("--version").output().is_err() {
            println!("== instructions per frame: skipped ({tool} is not installed: Debian package {package})");
            return Ok(());
        }
    }
    println!();
    println!("== instructions (callgrind) and syscalls (perf, natively) per forwarded frame; two runs per process and tool, the difference over the extra frames");
    for &link in links {
        for &n in &bench.settings.sessions {
            let started = Instant::now();
            let (relay_ir, relay_sys) = per_frame(bench, Target::Relay, link, n)?;
            let (sidecar_ir, sidecar_sys) = per_frame(bench, Target::Sidecar, link, n)?;
            let ratio = sidecar_ir / relay_ir;
            println!(
                "{:<11} {n:>5} sessions: instructions/frame relay {relay_ir:.0}, sidecar {sidecar_ir:.0} ({ratio:.2}x; target <= 1.00x: {}); syscalls/frame relay {:.2}, sidecar {:.2} ({}; socket calls {:.2} vs {:.2}, waits {:.2} vs {:.2}) [{:.0} s]",
                link.name(),
                if ratio <= 1.0 { "met" } else { "NOT met" },
                relay_sys.total,
                sidecar_sys.total,
                if sidecar_sys.total <= relay_sys.total * 1.01 { "no more than the relay" } else { "MORE than the relay" },
                relay_sys.socket,
                sidecar_sys.socket,
                relay_sys.waits,
                sidecar_sys.waits,
                started.elapsed().as_secs_f64(),
            );
        }
    }
    Ok(())
}
