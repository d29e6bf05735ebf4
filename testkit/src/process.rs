//! The sidecar binary as a process of its own, for what only a process can show: a
//! `kill -9` (no destructor, no graceful stop, nothing flushed).

use std::net::SocketAddr;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::task::JoinHandle;

use crate::STEP;

/// A running `tc9-sidecar run`.
pub struct SidecarProcess {
    /// Where it listens for the gateway.
    pub addr: SocketAddr,
    child: Child,
    logs: JoinHandle<String>,
}

impl SidecarProcess {
    /// Starts `binary run` with `settings` as `TC9_<KEY>` variables (no other
    /// `TC9_*` variable of this process leaks in) on a free port, once it accepts.
    pub async fn spawn(binary: &str, settings: &[(&str, String)]) -> Result<SidecarProcess> {
        SidecarProcess::spawn_limited(binary, settings, None).await
    }

    /// [`SidecarProcess::spawn`] with its descriptor limit (`ulimit -n`) set to
    /// `nofile`, when given.
    pub async fn spawn_limited(
        binary: &str,
        settings: &[(&str, String)],
        nofile: Option<u64>,
    ) -> Result<SidecarProcess> {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?;
        let mut command = Command::new(binary);
        command
            .arg("run")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (name, _) in std::env::vars() {
            if name.starts_with("TC9_") {
                command.env_remove(name);
            }
        }
        command.env("TC9_LISTEN", addr.to_string());
        for (key, value) in settings {
            command.env(format!("TC9_{}", key.to_ascii_uppercase()), value);
        }
        if let Some(limit) = nofile {
            let rlimit = libc::rlimit {
                rlim_cur: limit,
                rlim_max: limit,
            };
            // SAFETY: setrlimit is async-signal-safe; the closure touches nothing else.
            unsafe {
                command.pre_exec(move || {
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) == 0 {
                        Ok(())
                    } else {
                        Err(std::io::Error::last_os_error())
                    }
                });
            }
        }
        let mut child = command.spawn().context("the sidecar binary starts")?;
        let (mut out, mut err) = (
            child.stdout.take().context("stdout")?,
            child.stderr.take().context("stderr")?,
        );
        let logs = tokio::spawn(async move {
            let (mut a, mut b) = (Vec::new(), Vec::new());
            let _ = tokio::join!(out.read_to_end(&mut a), err.read_to_end(&mut b));
            format!(
                "{}{}",
                String::from_utf8_lossy(&a),
                String::from_utf8_lossy(&b)
            )
        });
        let started = Instant::now();
        loop {
            if let Ok(probe) = TcpStream::connect(addr).await {
                drop(probe);
                break;
            }
            if let Some(status) = child.try_wait()? {
                let logs = logs.await.unwrap_or_default();
                bail!("the sidecar exited with {status} before accepting:\n{logs}");
            }
            if started.elapsed() > STEP {
                bail!("the sidecar never accepted on {addr}");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(SidecarProcess { addr, child, logs })
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// SIGKILL, then waits for the exit; the process's logs.
    pub async fn kill(mut self) -> Result<String> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(self.logs.await.unwrap_or_default())
    }
}
