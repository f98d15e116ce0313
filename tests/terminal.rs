//! At home in a terminal: colour only where a person sees it.

mod common;

use std::io::Write;
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};

use common::*;

/// B's listener, and the relay's -A and -B for it.
fn b_and_args() -> (TcpListener, Vec<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let b_port = listener.local_addr().unwrap().port();
    let args = vec![
        "-A".to_string(),
        "127.0.0.1:0".into(),
        "-B".into(),
        format!("127.0.0.1:{b_port}"),
    ];
    (listener, args)
}

/// One short session through a relay that printed `waiting`: A says hello, B
/// answers, both close.
fn exchange(listener: &TcpListener, waiting: &str) {
    let mut b = accept_in_time(listener);
    let mut a = TcpStream::connect(("127.0.0.1", waiting_port(waiting.trim_end()))).unwrap();
    a.write_all(b"hello\n").unwrap();
    assert_eq!(read_exact(&mut b, 6), b"hello\n");
    b.write_all(b"hi\n").unwrap();
    assert_eq!(read_exact(&mut a, 3), b"hi\n");
    a.shutdown(Shutdown::Write).unwrap();
    b.shutdown(Shutdown::Write).unwrap();
    let _ = read_to_end(&mut b);
    let _ = read_to_end(&mut a);
}

/// What a relay printed for one short session, started by `command` built from the
/// relay's arguments, with stdout piped back to us.
fn session_output(command: impl FnOnce(Vec<String>) -> Command) -> String {
    let (listener, args) = b_and_args();
    let mut child = command(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the relay");
    let out = Captured::collect(child.stdout.take().unwrap(), false);
    let waiting = out.wait_line("the waiting line", |l| {
        l.contains("Waiting for a connection from A ")
    });
    exchange(&listener, &waiting);
    out.wait_line("the last status", |l| l.contains("B is in sync"));
    let status = child.wait().unwrap();
    assert!(status.success(), "{}", out.text());
    wait_for(
        "stdout to close",
        || out.closed().then_some(()),
        || out.text(),
    );
    out.text()
}

/// The relay itself, with `extra` flags and environment variables.
fn relay(extra: &[&str], env: &[(&str, &str)]) -> impl FnOnce(Vec<String>) -> Command {
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    move |args| {
        let mut command = Command::new(BIN);
        command.args(args).args(extra).env_remove("NO_COLOR");
        command.env_remove("CLICOLOR_FORCE").envs(env);
        command
    }
}

/// The relay on a pseudo-terminal of its own, made by `script` (util-linux), with
/// `env`: what a person at a terminal sees.
fn on_a_terminal(extra: &[&str], env: &[(&str, &str)]) -> Option<String> {
    if !have_program("script", "--version", "bsdutils") {
        return None;
    }
    let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Some(session_output(move |args| {
        let line: Vec<String> = std::iter::once(BIN.to_string())
            .chain(args)
            .chain(extra)
            .collect();
        let mut command = Command::new("script");
        // `exec`: the relay replaces the shell `script` starts, whichever it is.
        command.args(["-qfec", &format!("exec {}", line.join(" ")), "/dev/null"]);
        command
            .env("SHELL", "/bin/sh")
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE");
        command.env("TERM", "xterm").envs(env);
        command
    }))
}

const RED: &str = "\x1b[91m";

#[test]
fn a_pipe_gets_no_colour_unless_forced() {
    let out = session_output(relay(&[], &[("TERM", "xterm")]));
    assert!(out.contains("A -> B sent 6 bytes\n"), "{out}");
    assert!(!out.contains('\x1b'), "{out:?}");
    let out = session_output(relay(&["--color=always"], &[("NO_COLOR", "1")]));
    assert!(
        out.contains(&format!("{RED}A -> B sent 6 bytes")),
        "{out:?}"
    );
    let out = session_output(relay(&[], &[("CLICOLOR_FORCE", "1")]));
    assert!(
        out.contains(&format!("{RED}A -> B sent 6 bytes")),
        "{out:?}"
    );
    // -c and --color=never win over the environment.
    for flag in ["-c", "--color=never"] {
        let out = session_output(relay(&[flag], &[("CLICOLOR_FORCE", "1")]));
        assert!(!out.contains('\x1b'), "{flag}: {out:?}");
    }
}

#[test]
fn a_file_gets_no_colour() {
    let dir = scratch_dir("colour-file");
    let path = dir.join("out.txt");
    let (listener, args) = b_and_args();
    let mut child = Command::new(BIN)
        .args(args)
        .env("TERM", "xterm")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&path).unwrap())
        .spawn()
        .unwrap();
    let read = || String::from_utf8_lossy(&std::fs::read(&path).unwrap()).into_owned();
    let waiting = wait_for(
        "the waiting line",
        || {
            read()
                .lines()
                .find(|l| l.starts_with("Waiting for a connection from A "))
                .map(str::to_string)
        },
        read,
    );
    exchange(&listener, &waiting);
    assert!(child.wait().unwrap().success());
    let written = read();
    assert!(written.contains("A -> B sent 6 bytes\n"), "{written}");
    assert!(!written.contains('\x1b'), "{written:?}");
}

#[test]
fn a_terminal_gets_colour_unless_no_color_or_dumb() {
    let Some(out) = on_a_terminal(&[], &[]) else {
        return;
    };
    assert!(
        out.contains(&format!("{RED}A -> B sent 6 bytes")),
        "{out:?}"
    );
    let out = on_a_terminal(&[], &[("NO_COLOR", "1")]).unwrap();
    assert!(out.contains("A -> B sent 6 bytes"), "{out:?}");
    assert!(!out.contains('\x1b'), "NO_COLOR=1: {out:?}");
    let out = on_a_terminal(&[], &[("TERM", "dumb")]).unwrap();
    assert!(!out.contains('\x1b'), "TERM=dumb: {out:?}");
    let out = on_a_terminal(&["-c"], &[]).unwrap();
    assert!(!out.contains('\x1b'), "-c: {out:?}");
}

/// A 40-byte request and a 3-byte answer through a relay with `args`; what it
/// printed from the allocating line on, and where it ran.
fn short_dumps(args: &[&str], dir: &std::path::Path) -> String {
    let options = Options {
        dir: Some(dir.to_path_buf()),
        ..Options::default()
    };
    let mut s = Session::start_full(args, &options, |_| {});
    let out = s.stdout().clone();
    let request: Vec<u8> = (b'a'..=b'z').chain(b'0'..=b'9').chain(*b"!?.\n").collect();
    s.a.write_all(&request).unwrap();
    assert_eq!(read_exact(&mut s.b, 40), request);
    out.wait_count("B in sync", 1, |l| l == "B is in sync");
    s.b.write_all(b"ok\n").unwrap();
    assert_eq!(read_exact(&mut s.a, 3), b"ok\n");
    out.wait_count("A in sync", 1, |l| l == "A is in sync");
    s.a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s.b).unwrap(), b"");
    out.wait_count("B in sync after the shutdown", 2, |l| l == "B is in sync");
    s.b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s.a).unwrap(), b"");
    assert!(s.process.wait().success(), "{}", s.process.stderr.text());
    let text = out.text();
    text[text.find("Allocating").unwrap()..].to_string()
}

#[test]
fn max_dump_cuts_each_hexdump_and_the_dumps_keep_every_byte() {
    let dir = scratch_dir("max-dump");
    let text = short_dumps(&["-c", "-o", "--max-dump", "20"], &dir);
    assert_eq!(
        text,
        "\
Allocating buffers: 2048 and 2048 bytes...
A -> B sent 40 bytes
00000000  61 62 63 64 65 66 67 68  69 6a 6b 6c 6d 6e 6f 70  |abcdefghijklmnop|
00000010  71 72 73 74                                       |qrst            |
... 20 more bytes
B is 40 bytes behind
B is in sync
B -> A sent 3 bytes
00000000  6f 6b 0a                                          |ok.             |
A is 3 bytes behind
A is in sync
A -> B flow shutdown
B is in sync
B -> A flow shutdown
A is in sync
"
    );
    assert_eq!(decode_dump(&dir.join("AtoB.dump")).len(), 40);
    assert_eq!(decode_dump(&dir.join("BtoA.dump")), b"ok\n");

    let text = short_dumps(&["-c", "--max-dump", "0"], &dir);
    assert_eq!(
        text,
        "\
Allocating buffers: 2048 and 2048 bytes...
A -> B sent 40 bytes
B is 40 bytes behind
B is in sync
B -> A sent 3 bytes
A is 3 bytes behind
A is in sync
A -> B flow shutdown
B is in sync
B -> A flow shutdown
A is in sync
"
    );
}

#[test]
fn the_demo_passes_its_colour_choice_to_its_relay() {
    let run = |flags: &[&str]| {
        let out = Command::new(BIN)
            .args(["demo", "--pace", "fast"])
            .args(flags)
            .env_remove("CLICOLOR_FORCE")
            .output()
            .unwrap();
        assert!(out.status.success());
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let coloured = run(&["--color=always"]);
    assert!(
        coloured.contains(&format!("{RED}A -> B sent ")),
        "{coloured:?}"
    );
    assert!(!run(&[]).contains('\x1b'));
}
