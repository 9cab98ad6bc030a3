//! The server under test: a `voltplan serve` child process, and what `/proc` says about it.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep};

pub struct Server {
    child: Child,
    pub pid: u32,
    log: PathBuf,
}

/// Resident memory of a process, KiB (`/proc/<pid>/status`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Memory {
    /// `VmRSS`: resident now.
    pub rss_kib: u64,
    /// `VmHWM`: the peak resident so far.
    pub hwm_kib: u64,
}

impl Server {
    /// Starts `bin serve` on `database_url` and waits for `/healthz` (a minute at most).
    pub async fn start(
        bin: &Path,
        database_url: &str,
        port: u16,
        log_dir: &Path,
    ) -> anyhow::Result<Server> {
        let log = log_dir.join("server.log");
        let out = std::fs::File::create(&log).context("server log")?;
        let err = out.try_clone().context("server log")?;
        let child = Command::new(bin)
            .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
            .args(["--database-url", database_url])
            // Warnings only: a line per connection would measure the logger.
            .env("VOLTPLAN_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "starting {} (build it: cargo build --release -p voltplan)",
                    bin.display()
                )
            })?;
        let pid = child.id().context("the server exited at once")?;
        let mut server = Server { child, pid, log };
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/healthz");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Ok(response) = client.get(&url).send().await
                && response.status().is_success()
            {
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                bail!("the server exited ({status}): {}", server.log_tail());
            }
            if Instant::now() > deadline {
                bail!(
                    "the server did not answer /healthz within 60 s: {}",
                    server.log_tail()
                );
            }
            sleep(Duration::from_millis(100)).await;
        }
    }

    pub fn memory(&self) -> anyhow::Result<Memory> {
        memory(self.pid)
    }

    /// CPU time the server has used (user + system), in seconds.
    pub fn cpu_secs(&self) -> anyhow::Result<f64> {
        cpu_secs(self.pid)
    }

    /// The last lines the server logged (warnings and errors).
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// How many warning or error lines the server logged.
    pub fn log_problems(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("WARN") || l.contains("ERROR"))
            .count()
    }

    pub async fn stop(mut self) {
        // The database is thrown away after the run: nothing to shut down gracefully for.
        let _ = self.child.kill().await;
    }
}

pub fn memory(pid: u32) -> anyhow::Result<Memory> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|v| v.parse::<u64>().ok())
    };
    Ok(Memory {
        rss_kib: field("VmRSS:").context("VmRSS")?,
        hwm_kib: field("VmHWM:").context("VmHWM")?,
    })
}

/// utime + stime of `/proc/<pid>/stat`, in seconds (Linux counts them in USER_HZ = 100 ticks).
pub fn cpu_secs(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The command name may hold spaces; the fields after its closing parenthesis do not.
    let rest = stat.rsplit_once(')').context("/proc stat")?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `rest` starts at field 3.
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok());
    let total = ticks(14).context("utime")? + ticks(15).context("stime")?;
    Ok(total as f64 / 100.0)
}

/// The 1-minute load average (`/proc/loadavg`): the machine is shared with other builders.
pub fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|t| t.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN)
}
