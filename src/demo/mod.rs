//! `tiburoncin demo`: the real relay between built-in peers, narrated.
//!
//! Data enters as `DemoArgs` (see `cli`) and leaves as the demo's own lines on
//! standard output, each starting with `#`, with the relay's output beneath each
//! step as it happens. The relay is this very program run as `tiburoncin -A .. -B
//! ..` (`child`), between a server B and clients A that are plain sockets on loopback
//! (`peers`). Each demo is a script in a file of its own; every step waits for what
//! it caused (bytes arriving, a kernel queue's level, a line of the relay's), never
//! for a while, so a demo says the same thing every time, and each wait has a
//! deadline.
//!
//! The relay's flags that change what is shown or saved (`-b`, `-z`, `-w`, `-t`,
//! `-c`, `-q`, `--kernel-queues`, dumps, events) are passed on; where A and B are and
//! how many clients come are the demo's own.

mod broken_pipe;
mod child;
mod half_close;
mod hello;
mod many;
mod peers;
mod slow_receiver;

use std::ffi::OsString;
use std::io::{IsTerminal, Write};
use std::net::TcpStream;
use std::thread;
use std::time::Duration;

use clap::ValueEnum;

use crate::cli::args::{DemoArgs, DemoName, DemoRefusedFlags, DemoRelayFlags, Pace};
use crate::cli::colour::ColourChoice;
use crate::cli::sizes::SizePair;
use crate::demo::child::RelayChild;
use crate::error::Error;

/// With `--pace slow`, the pause before each step: time to read the last one.
const SLOW_PAUSE: Duration = Duration::from_millis(1500);

/// A demo ready to run.
#[derive(Debug)]
pub struct Demo {
    name: DemoName,
    pace: Pace,
    flags: DemoRelayFlags,
}

impl Demo {
    /// Checks the demo's arguments; the error is one line for the usage message.
    pub fn from_args(args: DemoArgs) -> Result<Demo, String> {
        refuse(&args.refused)?;
        let name = args.name.unwrap_or(DemoName::Hello);
        let flags = args.relay;
        // The demo reads the relay's standard output for its lines: no capture there.
        if flags
            .output
            .capture
            .as_ref()
            .is_some_and(|c| c.as_os_str() == "-")
        {
            return Err("-w -: the demo's standard output is its story; write to a file".into());
        }
        if matches!(name, DemoName::SlowReceiver | DemoName::HalfClose) {
            // Their steps count on the sizes they set: which buffer fills when.
            if flags
                .output
                .buffers
                .is_some_and(|b| b.0 != slow_receiver::RING)
                || flags
                    .output
                    .socket_buffers
                    .is_some_and(|z| z.0 != slow_receiver::SEND_BUFFER)
            {
                return Err(format!(
                    "{} counts on -b {} and -z {}[:n], the sizes it knows how to fill",
                    name_of(name),
                    slow_receiver::RING,
                    slow_receiver::SEND_BUFFER
                ));
            }
        }
        if flags.quiet && matches!(name, DemoName::SlowReceiver | DemoName::HalfClose) {
            return Err(format!(
                "-q hides the relay's lines that {} follows",
                name_of(name)
            ));
        }
        let pace = args.pace.unwrap_or(if std::io::stdout().is_terminal() {
            Pace::Slow
        } else {
            Pace::Fast
        });
        Ok(Demo { name, pace, flags })
    }
}

/// A relay flag that has no place in a demo, with the reason.
fn refuse(flags: &DemoRefusedFlags) -> Result<(), String> {
    let places = [(flags.a.is_some(), "-A"), (flags.b.is_some(), "-B")];
    if let Some((_, flag)) = places.iter().find(|(given, _)| *given) {
        return Err(format!(
            "{flag}: a demo makes its own A and B, on loopback; try the relay itself"
        ));
    }
    if flags.keep_listening || flags.max_conns.is_some() {
        return Err("-k and --max-conns: the demo 'many' is the one with -k".into());
    }
    let faults = [
        (&flags.rate, "--rate"),
        (&flags.delay, "--delay"),
        (&flags.slice, "--slice"),
        (&flags.reset_after, "--reset-after"),
        (&flags.stall_after, "--stall-after"),
    ];
    if let Some((_, flag)) = faults.iter().find(|(value, _)| value.is_some()) {
        return Err(format!(
            "{flag}: faults would change what a demo shows; try them on the relay itself"
        ));
    }
    Ok(())
}

/// The demos, one line each, for `--list`.
pub fn list() -> String {
    DemoName::value_variants()
        .iter()
        .filter_map(|name| name.to_possible_value())
        .map(|value| {
            let about = value.get_help().map(|h| h.to_string()).unwrap_or_default();
            format!("{:<14} {about}\n", value.get_name())
        })
        .collect()
}

/// Runs the demo: Ok once every step went as it says.
pub fn run(demo: Demo) -> Result<(), Error> {
    let mut show = Show {
        pace: demo.pace,
        flags: demo.flags,
        first: true,
    };
    match demo.name {
        DemoName::Hello => hello::play(&mut show),
        DemoName::SlowReceiver => slow_receiver::play(&mut show),
        DemoName::HalfClose => half_close::play(&mut show),
        DemoName::BrokenPipe => broken_pipe::play(&mut show),
        DemoName::Many => many::play(&mut show),
    }
}

fn name_of(name: DemoName) -> String {
    name.to_possible_value()
        .map(|v| v.get_name().to_string())
        .unwrap_or_default()
}

/// What every demo uses: the narration and the relay's flags.
pub(crate) struct Show {
    pace: Pace,
    flags: DemoRelayFlags,
    first: bool,
}

/// Sizes a demo sets for the relay unless the user gave them.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Sizes {
    pub(crate) buffers: Option<SizePair>,
    pub(crate) socket_buffers: Option<SizePair>,
    pub(crate) kernel_queues: bool,
}

/// A single relay between one A and one B, both connected.
pub(crate) struct Stage {
    pub(crate) relay: RelayChild,
    pub(crate) a: TcpStream,
    pub(crate) b: TcpStream,
}

impl Show {
    /// A step: a pause to read the last one (with `--pace slow`), then its lines.
    pub(crate) fn step(&mut self, lines: &[&str]) {
        if !self.first && self.pace == Pace::Slow {
            thread::sleep(SLOW_PAUSE);
        }
        self.first = false;
        self.note(lines);
    }

    /// Lines that go with the step just told, without a pause.
    pub(crate) fn note(&self, lines: &[&str]) {
        let mut out = std::io::stdout().lock();
        for line in lines {
            // Nothing sensible is left to do if standard output is gone; the demo
            // goes on to its end.
            let _ = writeln!(out, "# {line}");
        }
        let _ = out.flush();
    }

    /// The relay's arguments: where A and B are, `extra` (`-k`), the sizes the demo
    /// sets, and the user's flags over them.
    pub(crate) fn relay_args(&self, b_port: u16, extra: &[&str], sizes: Sizes) -> Vec<OsString> {
        let flags = &self.flags;
        let mut args: Vec<OsString> = extra.iter().map(OsString::from).collect();
        args.extend(["-A".into(), "127.0.0.1:0".into(), "-B".into()]);
        args.push(format!("127.0.0.1:{b_port}").into());
        let pair = |p: SizePair| OsString::from(format!("{}:{}", p.0, p.1));
        if let Some(b) = flags.output.buffers.or(sizes.buffers) {
            args.extend(["-b".into(), pair(b)]);
        }
        if let Some(z) = flags.output.socket_buffers.or(sizes.socket_buffers) {
            args.extend(["-z".into(), pair(z)]);
        }
        // The relay's output is a pipe to us: it is coloured when ours would be.
        let choice = ColourChoice::from_flags(flags.output.color, flags.output.colourless);
        if choice.for_stream(&std::io::stdout()) {
            args.push("--color=always".into());
        } else {
            args.push("-c".into());
        }
        for (on, flag) in [
            (flags.output.dump, "-o"),
            (flags.quiet, "-q"),
            (
                flags.output.kernel_queues || sizes.kernel_queues,
                "--kernel-queues",
            ),
        ] {
            if on {
                args.push(flag.into());
            }
        }
        for (value, flag) in [
            (&flags.output.prefix, "-f"),
            (&flags.output.capture, "-w"),
            (&flags.output.events, "--events"),
        ] {
            if let Some(value) = value {
                args.extend([flag.into(), value.into()]);
            }
        }
        if let Some(kind) = flags.output.timestamps.and_then(|k| k.to_possible_value()) {
            args.push(format!("--timestamps={}", kind.get_name()).into());
        }
        args
    }

    /// Whether the relay prints its per-chunk lines.
    pub(crate) fn chatty(&self) -> bool {
        !self.flags.quiet
    }

    /// B listens (with that receive buffer), the relay starts and connects to it, and
    /// A connects to the relay (with that send buffer): the stage of every demo but
    /// `many`. Says so as it goes.
    pub(crate) fn set_up(
        &mut self,
        b_receive_buffer: Option<usize>,
        a_send_buffer: Option<usize>,
        sizes: Sizes,
    ) -> Result<Stage, Error> {
        let listener = peers::listen(b_receive_buffer)?;
        let b_port = peers::port(&listener)?;
        self.step(&[&format!(
            "B listens on 127.0.0.1:{b_port}. tiburoncin connects to B, then waits for A:"
        )]);
        let mut relay = RelayChild::start(&self.relay_args(b_port, &[], sizes), self.chatty())?;
        let waiting = relay.line("Waiting for a connection from A ")?;
        let a_port = listening_port(&waiting)?;
        let b = peers::accept(&listener)?;
        self.step(&[&format!(
            "A connects to tiburoncin on 127.0.0.1:{a_port}, and the relay begins:"
        )]);
        let a = peers::connect(a_port, a_send_buffer)?;
        relay.line("Allocating buffers: ")?;
        Ok(Stage { relay, a, b })
    }
}

/// The port in `Waiting for a connection from A 127.0.0.1:PORT...`.
fn listening_port(line: &str) -> Result<u16, Error> {
    line.trim_end_matches("...")
        .rsplit(':')
        .next()
        .and_then(|port| port.parse().ok())
        .ok_or_else(|| Error::Demo(format!("no port in the relay's line {line:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_port_the_relay_listens_on() {
        assert_eq!(
            listening_port("Waiting for a connection from A 127.0.0.1:4242...").unwrap(),
            4242
        );
        assert_eq!(
            listening_port("12:00:00.000001 Waiting for connections from A 127.0.0.1:9...")
                .unwrap(),
            9
        );
        assert!(listening_port("Waiting").is_err());
    }

    #[test]
    fn every_demo_is_listed_with_what_it_shows() {
        let listed = list();
        assert_eq!(listed.lines().count(), DemoName::value_variants().len());
        assert!(listed.starts_with("hello "), "{listed}");
        assert!(listed.lines().all(|l| l.split_whitespace().count() > 3));
    }
}
