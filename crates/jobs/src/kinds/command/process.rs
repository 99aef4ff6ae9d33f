//! Running an allow-listed program: its own process group (so that a cancel stops it
//! and everything it started), its output read line by line with a bound on line
//! length, and the group killed whatever way the run ends (a guard does it on drop, so
//! even an aborted run leaves no process behind).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use palisade_core::job::LogLevel;
use rustix::process::{Pid, Signal, kill_process_group};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Command;

use crate::context::JobContext;
use crate::kind::JobError;

/// The longest output line kept whole; longer lines are cut (and marked).
const MAX_LINE: usize = 64 * 1024;

/// Kills what an earlier attempt of the same job left running: when a process is
/// killed with `kill -9`, its command's process group is orphaned and keeps running,
/// and the attempt that takes the job up again must not run beside it. Every command
/// carries `PALISADE_JOB_KEY` (job id and creation time, unique across stores) in its
/// environment, inherited by what it starts; processes that still carry it are the
/// orphans. Returns how many groups were killed.
pub(crate) fn reap_leftovers(key: &str) -> usize {
    let needle = format!("PALISADE_JOB_KEY={key}");
    let own = rustix::process::getpgid(None).ok();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
            .filter(|p| *p > 1)
            .and_then(Pid::from_raw)
        else {
            continue;
        };
        let Ok(environ) = std::fs::read(entry.path().join("environ")) else {
            continue;
        };
        if !environ
            .split(|b| *b == 0)
            .any(|var| var == needle.as_bytes())
        {
            continue;
        }
        if let Ok(pgid) = rustix::process::getpgid(Some(pid))
            && Some(pgid) != own
            && pgid.as_raw_nonzero().get() > 1
            && !killed.contains(&pgid)
        {
            let _ = kill_process_group(pgid, Signal::KILL);
            killed.push(pgid);
        }
    }
    killed.len()
}

/// What to run.
pub(crate) struct Invocation {
    /// Absolute program path.
    pub program: PathBuf,
    /// Arguments, one element each.
    pub argv: Vec<String>,
    /// Working directory.
    pub dir: PathBuf,
    /// The whole environment (nothing else is passed on).
    pub env: BTreeMap<String, String>,
    /// How long a cancelled program gets between SIGTERM and SIGKILL.
    pub grace: Duration,
}

/// Kills a process group when dropped, unless disarmed after the group is gone.
struct GroupGuard {
    pgid: Option<Pid>,
}

impl GroupGuard {
    fn signal(&self, sig: Signal) {
        if let Some(pgid) = self.pgid {
            // ESRCH (the group is gone) is the expected end; nothing else can be done.
            let _ = kill_process_group(pgid, sig);
        }
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        self.signal(Signal::KILL);
    }
}

/// Runs the program to its end (or until the job is cancelled), turning its output into
/// log lines and its JSON-object stdout lines into outputs. Exit status 0 is success.
pub(crate) async fn run(ctx: &JobContext, inv: Invocation) -> Result<(), JobError> {
    let mut cmd = Command::new(&inv.program);
    cmd.args(&inv.argv)
        .current_dir(&inv.dir)
        .env_clear()
        .envs(&inv.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = cmd
        .spawn()
        .map_err(|e| JobError::fatal(format!("cannot start {}: {e}", inv.program.display())))?;
    // The child leads its own group: its id is the group's id. Never 0 or 1 (that
    // would name our own group or every process).
    let guard = GroupGuard {
        pgid: child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .filter(|id| *id > 1)
            .and_then(Pid::from_raw),
    };
    ctx.info(format!(
        "started {} (pid {}) with {} argument(s)",
        inv.program.display(),
        child.id().unwrap_or(0),
        inv.argv.len()
    ))
    .await;
    let stdout = child.stdout.take();
    let stderr = child.stderr.take();
    let read_out = async {
        if let Some(out) = stdout {
            pump(ctx, out, LogLevel::Stdout).await;
        }
    };
    let read_err = async {
        if let Some(err) = stderr {
            pump(ctx, err, LogLevel::Stderr).await;
        }
    };
    let finished = {
        let work = async {
            let ((), (), status) = tokio::join!(read_out, read_err, child.wait());
            status
        };
        tokio::pin!(work);
        tokio::select! {
            status = &mut work => Some(status),
            () = ctx.cancelled() => None,
        }
    };
    let Some(status) = finished else {
        ctx.warn("stop requested: SIGTERM to the process group")
            .await;
        guard.signal(Signal::TERM);
        if tokio::time::timeout(inv.grace, child.wait()).await.is_err() {
            ctx.warn("still running after the grace period: SIGKILL")
                .await;
        }
        // The guard sends SIGKILL to whatever is left of the group.
        drop(guard);
        return Err(JobError::Cancelled);
    };
    // Whatever the program left running in its group goes with it.
    drop(guard);
    let status = status.map_err(|e| JobError::retry(format!("waiting for the program: {e}")))?;
    if status.success() {
        ctx.info("exited with status 0").await;
        return Ok(());
    }
    use std::os::unix::process::ExitStatusExt;
    Err(match (status.code(), status.signal()) {
        (Some(code), _) => JobError::retry(format!("exited with status {code}")),
        (None, Some(sig)) => JobError::retry(format!("killed by signal {sig}")),
        _ => JobError::retry("ended without a status"),
    })
}

/// Reads lines from one stream until it closes.
async fn pump(ctx: &JobContext, stream: impl AsyncRead + Unpin, level: LogLevel) {
    let mut reader = BufReader::with_capacity(16 * 1024, stream);
    let mut buf = Vec::with_capacity(1024);
    loop {
        buf.clear();
        let cut = match read_line(&mut reader, &mut buf).await {
            Ok(None) => return,
            Ok(Some(cut)) => cut,
            Err(error) => {
                ctx.warn(format!(
                    "cannot read the program's {}: {error}",
                    level.as_str()
                ))
                .await;
                return;
            }
        };
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_end_matches(['\n', '\r']);
        if level == LogLevel::Stdout
            && !cut
            && text.starts_with('{')
            && let Ok(value @ Value::Object(_)) = serde_json::from_str::<Value>(text)
        {
            ctx.output(value).await;
        }
        if cut {
            ctx.log(level, format!("{text}… (line cut at {MAX_LINE} bytes)"))
                .await;
        } else {
            ctx.log(level, text).await;
        }
    }
}

/// Reads one line into `buf`, keeping at most [`MAX_LINE`] bytes of it (the rest is
/// read and dropped). `None` at the end of the stream; `Some(true)` when cut.
async fn read_line(
    reader: &mut (impl AsyncBufReadExt + Unpin),
    buf: &mut Vec<u8>,
) -> std::io::Result<Option<bool>> {
    let mut cut = false;
    let mut any = false;
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            return Ok(any.then_some(cut));
        }
        any = true;
        let (take, done) = match memchr(available) {
            Some(i) => (i + 1, true),
            None => (available.len(), false),
        };
        let room = MAX_LINE.saturating_sub(buf.len());
        if take > room {
            cut = true;
        }
        buf.extend_from_slice(&available[..take.min(room)]);
        reader.consume(take);
        if done {
            return Ok(Some(cut));
        }
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|b| *b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_lines_are_cut_and_the_rest_dropped() {
        let mut data = vec![b'a'; MAX_LINE + 10];
        data.extend_from_slice(b"\nshort\nlast");
        let mut reader = BufReader::with_capacity(1000, &data[..]);
        let mut buf = Vec::new();
        assert_eq!(read_line(&mut reader, &mut buf).await.unwrap(), Some(true));
        assert_eq!(buf.len(), MAX_LINE);
        buf.clear();
        assert_eq!(read_line(&mut reader, &mut buf).await.unwrap(), Some(false));
        assert_eq!(buf, b"short\n");
        buf.clear();
        assert_eq!(read_line(&mut reader, &mut buf).await.unwrap(), Some(false));
        assert_eq!(buf, b"last");
        buf.clear();
        assert_eq!(read_line(&mut reader, &mut buf).await.unwrap(), None);
    }
}
