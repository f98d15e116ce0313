//! `-- CMD ARGS...`: the program a replay runs against itself, so that one command
//! in CI starts both sides and gives one verdict.
//!
//! With `--as b` it is the client: started once the replay listens, told where by
//! `{addr}` and `{port}` in its arguments and `TIBURONCIN_ADDR` in its environment,
//! and waited for. With `--as a` it is the server: started first, waited for until
//! `-B` accepts, and stopped once the replay is over (SIGTERM, then SIGKILL after a
//! grace period). Every wait is bounded by `--timeout`, so a command that never
//! exits or never listens cannot hang CI.

use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use crate::error::Error;
use crate::replay::verdict::CommandReport;

/// How often a wait looks again at the command or the port.
const POLL: Duration = Duration::from_millis(20);

/// The longest a stopped server gets between SIGTERM and SIGKILL.
const GRACE: Duration = Duration::from_secs(3);

/// A started command.
pub struct Running {
    child: Child,
    argv: Vec<String>,
    /// Its status, once it has exited by itself.
    exited: Option<ExitStatus>,
}

/// `argv` with `{addr}` and `{port}` replaced by where the replay meets it.
pub fn substitute(argv: &[String], addr: SocketAddr) -> Vec<String> {
    argv.iter()
        .map(|arg| {
            arg.replace("{addr}", &addr.to_string())
                .replace("{port}", &addr.port().to_string())
        })
        .collect()
}

impl Running {
    /// Starts `argv` (already substituted) with `TIBURONCIN_ADDR=addr`.
    pub fn start(argv: Vec<String>, addr: SocketAddr) -> Result<Running, Error> {
        let shown = argv.join(" ");
        let (program, args) = argv.split_first().ok_or_else(|| Error::Command {
            command: String::new(),
            source: std::io::Error::other("no command"),
        })?;
        println!("Running {shown}");
        let child = Command::new(program)
            .args(args)
            .env("TIBURONCIN_ADDR", addr.to_string())
            .stdin(Stdio::null())
            .spawn()
            .map_err(|source| Error::Command {
                command: program.clone(),
                source,
            })?;
        Ok(Running {
            child,
            argv,
            exited: None,
        })
    }

    /// Whether it has exited by itself, without waiting.
    pub fn has_exited(&mut self) -> bool {
        if self.exited.is_none() {
            self.exited = self.child.try_wait().ok().flatten();
        }
        self.exited.is_some()
    }

    /// Waits at most `limit` for it to exit.
    fn wait_within(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while !self.has_exited() && Instant::now() < deadline {
            thread::sleep(POLL);
        }
        self.has_exited()
    }

    /// Waits, at most `limit`, until something accepts connections on `addr`; an
    /// error says why not (the command exited, or the time ran out).
    pub fn until_listening(&mut self, addr: SocketAddr, limit: Duration) -> Result<(), String> {
        let deadline = Instant::now() + limit;
        loop {
            if self.has_exited() {
                return Err(format!(
                    "{} {} before {addr} accepted a connection",
                    self.argv.join(" "),
                    exit_words(self.exited)
                ));
            }
            if TcpStream::connect_timeout(&addr, POLL * 5).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "nothing accepted connections on {addr} within {} s of starting {}",
                    limit.as_secs_f64(),
                    self.argv.join(" ")
                ));
            }
            thread::sleep(POLL);
        }
    }

    /// A client's end: waits at most `limit` for it, and stops it if it is still
    /// running. It passed if it exited with 0 by itself.
    pub fn finish_client(mut self, limit: Duration) -> CommandReport {
        if self.wait_within(limit) {
            let status = self.exited;
            return self.report(status.is_some_and(|s| s.success()), exit_words(status));
        }
        self.stop();
        let outcome = format!(
            "did not exit within {} s, and was stopped",
            limit.as_secs_f64()
        );
        self.report(false, outcome)
    }

    /// A server's end: stopped, unless it has exited by itself (which fails it when
    /// its status was not 0).
    pub fn finish_server(mut self) -> CommandReport {
        if self.has_exited() {
            let status = self.exited;
            return self.report(status.is_some_and(|s| s.success()), exit_words(status));
        }
        let outcome = self.stop();
        self.report(true, outcome)
    }

    /// SIGTERM, then SIGKILL if it has not exited after the grace period; says which.
    fn stop(&mut self) -> String {
        // Our own child, not reaped yet, so the id is still its.
        let pid = nix::unistd::Pid::from_raw(self.child.id() as libc::pid_t);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        if self.wait_within(GRACE) {
            return "was stopped with SIGTERM".into();
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        format!(
            "was killed: SIGTERM did not stop it within {} s",
            GRACE.as_secs()
        )
    }

    fn report(self, passed: bool, outcome: String) -> CommandReport {
        CommandReport {
            command: self.argv,
            exit_status: self.exited.and_then(|s| s.code()),
            outcome,
            passed,
        }
    }
}

/// `exited with status 0`, `was killed by signal 9`.
fn exit_words(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(s) => match (s.code(), s.signal()) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(signal)) => format!("was killed by signal {signal}"),
            _ => "exited".into(),
        },
        None => "is still running".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_address_goes_into_the_arguments() {
        let addr: SocketAddr = "127.0.0.1:4321".parse().unwrap();
        let argv = ["curl", "http://{addr}/x", "-p{port}"].map(String::from);
        assert_eq!(
            substitute(&argv, addr),
            ["curl", "http://127.0.0.1:4321/x", "-p4321"]
        );
    }
}
