//! Replay as a test engineer puts it into CI: against real programs (curl and
//! Python's http.server, redis-server and redis-cli, a server that hands out a
//! token), with `--ignore` and `--carry` for the bytes that vary, several connections
//! at once, `-- CMD` starting the other side, `--report` read back as JSON, and the
//! mistakes that must end with a clear message instead of a hang.
//!
//! Sessions are recorded by our own relay (`-w`); docs/replay-in-ci.md records one
//! with tcpdump.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::{
    DEADLINE, Process, Step, fixture, have_program, perform, run, scratch_dir, script,
    spawn_replay_as_b, strings, waiting_port,
};
use tiburoncin::direction::Direction;

/// A port nothing listens on right now.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A program started for a test, killed when the test is done with it.
struct Spawned(Child);

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits until something accepts connections on `port`.
fn until_listening(port: u16) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < DEADLINE, "nothing listens on {port}");
        thread::sleep(Duration::from_millis(20));
    }
}

fn spawn(program: &str, list: &[&str], port: u16) -> Spawned {
    let child = Command::new(program)
        .args(list)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("start {program}: {e}"));
    let spawned = Spawned(child);
    until_listening(port);
    spawned
}

/// `python3 -m http.server` serving `dir` on `port`.
fn http_server(dir: &Path, port: u16) -> Spawned {
    let port_text = port.to_string();
    let dir = dir.to_str().unwrap();
    let list = [
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        "--directory",
        dir,
    ];
    let mut all = list.to_vec();
    all.push(&port_text);
    spawn("python3", &all, port)
}

/// A redis-server of its own on `port`, keeping nothing on disk.
fn redis_server(port: u16) -> Spawned {
    let port_text = port.to_string();
    let list = [
        "--port",
        &port_text,
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ];
    spawn("redis-server", &list, port)
}

/// Relays clients to B on `b_port` with `-k -q -w capture` while `clients` runs
/// against the relay's port, until `connections` have been relayed; then stops it.
fn record(b_port: u16, capture: &Path, connections: usize, clients: impl FnOnce(u16)) {
    let b = format!("127.0.0.1:{b_port}");
    let capture = capture.to_str().unwrap();
    let mut relay = Process::spawn(&strings(&[
        "-k",
        "-q",
        "-A",
        "127.0.0.1:0",
        "-B",
        &b,
        "-w",
        capture,
    ]));
    let waiting = relay.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for connections from A ")
    });
    clients(waiting_port(&waiting));
    // Each connection's summary comes once it has ended, both ways, in the capture.
    relay
        .stdout
        .wait_count("the relayed connections", connections, |l| {
            l.contains("] Relayed A -> B ")
        });
    relay.signal(libc::SIGINT);
    relay.wait();
}

fn curl(port: u16, path: &str) -> String {
    let out = Command::new("curl")
        .args(["-s", "-S", "--max-time", "20"])
        .arg(format!("http://127.0.0.1:{port}{path}"))
        .output()
        .unwrap();
    assert!(out.status.success(), "curl failed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

// ---- curl and Python's http.server ---------------------------------------------------

/// A web folder with one file, and a session of curl fetching it, recorded.
fn recorded_web_session(dir: &Path) -> PathBuf {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).unwrap();
    std::fs::write(www.join("hello.txt"), "hello from the server\n").unwrap();
    let port = free_port();
    let _server = http_server(&www, port);
    let capture = dir.join("web.pcapng");
    record(port, &capture, 1, |relay| {
        assert_eq!(curl(relay, "/hello.txt"), "hello from the server\n");
    });
    capture
}

#[test]
fn curl_is_served_the_recorded_body_on_another_port() {
    if !have_program("curl", "--version", "curl")
        || !have_program("python3", "--version", "python3")
    {
        return;
    }
    let dir = scratch_dir("ci-curl-b");
    let capture = recorded_web_session(&dir);
    let body = dir.join("body.txt");
    let cap = capture.to_str().unwrap();
    let url = "http://{addr}/hello.txt";
    let curl = [
        "curl",
        "-s",
        "-S",
        "--max-time",
        "20",
        "-o",
        body.to_str().unwrap(),
        url,
    ];
    let mut list = vec!["replay", cap, "--as", "b", "-A", "127.0.0.1:0", "-q"];
    list.extend(["--ignore", r"Host: [^\r]*", "--"]);
    list.extend(curl);
    let (code, stdout, stderr) = run(&list);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert_eq!(
        std::fs::read_to_string(&body).unwrap(),
        "hello from the server\n"
    );
    assert!(stdout.contains("Replay matched stream 0: "), "{stdout}");
    assert!(stdout.contains("exited with status 0."), "{stdout}");

    // The replay matched, and the client failed all the same: that fails the run.
    let fails = "curl -s -S --max-time 20 -o /dev/null http://{addr}/hello.txt && exit 3";
    let (code, stdout, stderr) = run(&[
        "replay",
        cap,
        "--as",
        "b",
        "-A",
        "127.0.0.1:0",
        "-q",
        "--ignore",
        r"Host: [^\r]*",
        "--",
        "sh",
        "-c",
        fails,
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(stdout.contains("Replay matched stream 0: "), "{stdout}");
    assert_eq!(
        stderr,
        "The replay matched, but the command exited with status 3\n"
    );

    // Without the rule, the port in Host: is a difference, and curl gets nothing.
    let mut list = vec!["replay", cap, "--as", "b", "-A", "127.0.0.1:0", "-q", "--"];
    list.extend(curl);
    let (code, stdout, stderr) = run(&list);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("Difference in A -> B at stream offset"),
        "{stdout}"
    );
    assert!(
        // curl's own complaint comes first: the command's stderr is the terminal's.
        stderr.contains("\nReplay differs from the recording: A -> B at stream offset")
            && stderr.contains("; the command exited with status "),
        "{stderr}"
    );
}

#[test]
fn a_fresh_http_server_matches_and_a_changed_file_does_not() {
    if !have_program("curl", "--version", "curl")
        || !have_program("python3", "--version", "python3")
    {
        return;
    }
    let dir = scratch_dir("ci-curl-a");
    let capture = recorded_web_session(&dir);
    let cap = capture.to_str().unwrap();
    let port = free_port();
    let b = format!("127.0.0.1:{port}");
    let report = dir.join("report.json");
    let replay = |extra: &[&str]| {
        let mut list = vec!["replay", cap, "--as", "a", "-B", &b, "-q"];
        list.extend_from_slice(extra);
        run(&list)
    };
    {
        let _server = http_server(&dir.join("www"), port);
        // The Date header changes with every second, and Last-Modified with every
        // change of the file; the rest is the same server.
        let ignore = [
            "--ignore",
            r"Date: [^\r]*",
            "--ignore",
            r"Last-Modified: [^\r]*",
        ];
        let (code, stdout, stderr) = replay(&ignore);
        assert_eq!(code, 0, "{stdout}{stderr}");

        // A file of other contents: a difference in the body, at its offset.
        std::fs::write(dir.join("www/hello.txt"), "HELLO from the server\n").unwrap();
        let mut list = ignore.to_vec();
        list.extend(["--report", report.to_str().unwrap()]);
        let (code, stdout, stderr) = replay(&list);
        assert_eq!(code, 1, "{stdout}{stderr}");
        assert!(
            stdout.contains(
                "Rules in force: --ignore 'Date: [^\\r]*' (1 span), \
                 --ignore 'Last-Modified: [^\\r]*' (1 span)"
            ),
            "{stdout}"
        );
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
        assert_eq!(json["matched"], false);
        let conn = &json["connections"][0];
        assert_eq!(conn["matched"], false);
        let first = &conn["first_difference"];
        assert_eq!(first["direction"], "B -> A");
        let offset = first["offset"].as_u64().unwrap();
        // The body is last: the differing byte is its first, `H` for `h`.
        assert_eq!(first["expected"].as_str().unwrap().get(..2), Some("68"));
        assert_eq!(first["received"].as_str().unwrap().get(..2), Some("48"));
        assert!(
            stderr.contains(&format!("B -> A at stream offset {offset}")),
            "{stderr}"
        );
        assert_eq!(conn["rules"][0]["rule"], r"--ignore 'Date: [^\r]*'");
        assert_eq!(conn["rules"][0]["spans"], 1);
    }
    // The same with the server started by the replay, from one command.
    std::fs::write(dir.join("www/hello.txt"), "hello from the server\n").unwrap();
    let www = dir.join("www");
    let (code, stdout, stderr) = replay(&[
        "--ignore",
        r"Date: [^\r]*",
        "--ignore",
        r"Last-Modified: [^\r]*",
        "--",
        "python3",
        "-m",
        "http.server",
        "--bind",
        "127.0.0.1",
        "--directory",
        www.to_str().unwrap(),
        "{port}",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("was stopped with SIGTERM."), "{stdout}");
}

// ---- redis-server and redis-cli ------------------------------------------------------

/// Three Python threads, each on a connection of its own, setting and reading back
/// a key of its own: the connections overlap, the content of each is fixed.
const THREADS: &str = r#"
import socket, sys, threading
port = int(sys.argv[1])
def client(n):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    for args in (["SET", f"t{n}", f"v{n}"], ["GET", f"t{n}"]):
        cmd = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
        s.sendall(cmd.encode())
        line = f.readline()
        if line.startswith(b"$"):
            f.readline()
    s.shutdown(socket.SHUT_WR)
    f.read()
    s.close()
threads = [threading.Thread(target=client, args=(n,)) for n in range(3)]
for t in threads: t.start()
for t in threads: t.join()
"#;

fn redis_cli(port: u16, command: &[&str]) {
    let status = Command::new("redis-cli")
        .args(["-p", &port.to_string()])
        .args(command)
        .stdout(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success(), "redis-cli {command:?}");
}

#[test]
fn redis_clients_and_a_fresh_redis_server() {
    if !have_program("redis-server", "--version", "redis-server")
        || !have_program("redis-cli", "--version", "redis-tools")
        || !have_program("python3", "--version", "python3")
    {
        return;
    }
    let dir = scratch_dir("ci-redis");
    let threads = dir.join("threads.py");
    std::fs::write(&threads, THREADS).unwrap();
    let capture = dir.join("redis.pcap");
    {
        let port = free_port();
        let _redis = redis_server(port);
        record(port, &capture, 6, |relay| {
            redis_cli(relay, &["SET", "k", "v"]);
            redis_cli(relay, &["GET", "k"]);
            redis_cli(relay, &["INCR", "n"]);
            let status = Command::new("python3")
                .arg(&threads)
                .arg(relay.to_string())
                .status()
                .unwrap();
            assert!(status.success());
        });
    }
    let cap = capture.to_str().unwrap();
    // As A, against a fresh server: six connections, in the recorded order.
    let port = free_port();
    let b = format!("127.0.0.1:{port}");
    {
        let _redis = redis_server(port);
        let (code, stdout, stderr) = run(&["replay", cap, "--as", "a", "-B", &b, "-q"]);
        assert_eq!(code, 0, "{stdout}{stderr}");
        assert!(
            stdout.ends_with("Replay: 6 of 6 connections matched.\n"),
            "{stdout}"
        );
        for n in 0..6 {
            assert!(stdout.contains(&format!("[{n}] matched: ")), "{stdout}");
        }
    }
    // As B, to the same clients, started by the replay.
    let script = format!(
        "redis-cli -p {{port}} SET k v && redis-cli -p {{port}} GET k && \
         redis-cli -p {{port}} INCR n && python3 {} {{port}}",
        threads.display()
    );
    let (code, stdout, stderr) = run(&[
        "replay",
        cap,
        "--as",
        "b",
        "-A",
        "127.0.0.1:0",
        "-q",
        "--",
        "sh",
        "-c",
        &script,
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("Replay: 6 of 6 connections matched.\n"),
        "{stdout}"
    );
    assert!(stdout.contains("exited with status 0."), "{stdout}");
    // The server, started by the replay, as one command.
    let port = free_port();
    let b = format!("127.0.0.1:{port}");
    let (code, stdout, stderr) = run(&[
        "replay",
        cap,
        "--as",
        "a",
        "-B",
        &b,
        "-q",
        "--",
        "redis-server",
        "--port",
        "{port}",
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
    ]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains("6 of 6 connections matched"), "{stdout}");
}

// ---- a server that hands out a token -------------------------------------------------

/// Serves `connections` clients: each is sent `TOKEN <hex>`, must answer
/// `USE <hex>` with the same token, and is told `OK` or `BAD`.
fn token_server(listener: TcpListener, connections: usize) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        for n in 0..connections {
            let Ok((mut socket, _)) = listener.accept() else {
                return;
            };
            let _ = socket.set_read_timeout(Some(DEADLINE));
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos();
            let token = format!("{:08x}{n:04x}", nanos ^ 0x5a5a_5a5a);
            let _ = socket.write_all(format!("TOKEN {token}\n").as_bytes());
            let mut line = String::new();
            let mut reader = BufReader::new(socket.try_clone().unwrap());
            let _ = reader.read_line(&mut line);
            let answer = if line == format!("USE {token}\n") {
                "OK\n"
            } else {
                "BAD\n"
            };
            let _ = socket.write_all(answer.as_bytes());
            let _ = socket.shutdown(Shutdown::Write);
            let _ = reader.read_to_end(&mut Vec::new());
        }
    })
}

#[test]
fn a_token_the_server_chose_is_carried() {
    let dir = scratch_dir("ci-token");
    let capture = dir.join("token.pcap");
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let server = token_server(listener.try_clone().unwrap(), 1);
    let port = listener.local_addr().unwrap().port();
    record(port, &capture, 1, |relay| {
        let mut a = TcpStream::connect(("127.0.0.1", relay)).unwrap();
        a.set_read_timeout(Some(DEADLINE)).unwrap();
        let mut reader = BufReader::new(a.try_clone().unwrap());
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        let token = line.trim_end().strip_prefix("TOKEN ").unwrap().to_string();
        a.write_all(format!("USE {token}\n").as_bytes()).unwrap();
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "OK\n");
        a.shutdown(Shutdown::Write).unwrap();
    });
    server.join().unwrap();
    let cap = capture.to_str().unwrap();
    let replay = |rule: &[&str]| {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let b = format!("127.0.0.1:{}", listener.local_addr().unwrap().port());
        let server = token_server(listener, 1);
        let mut list = vec!["replay", cap, "--as", "a", "-B", &b, "-c"];
        list.extend_from_slice(rule);
        let result = run(&list);
        server.join().unwrap();
        result
    };
    let (code, stdout, stderr) = replay(&["--carry", "TOKEN ([0-9a-f]+)"]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let carried = stdout
        .lines()
        .find(|l| l.starts_with("Carrying '"))
        .unwrap_or_else(|| panic!("no substitution line: {stdout}"));
    assert!(
        carried.ends_with(" (--carry 'TOKEN ([0-9a-f]+)')"),
        "{carried}"
    );
    // Ignoring the token is not enough: the server wants its own back.
    let (code, stdout, stderr) = replay(&["--ignore", "TOKEN [0-9a-f]+"]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("received:\n00000013           42 41 44 0a"),
        "{stdout}"
    );
}

// ---- several connections, with the test's own peers ----------------------------------

#[test]
fn clients_are_matched_to_recorded_connections_by_what_they_send() {
    let http = fixture("http.pcap");
    let report = scratch_dir("ci-many").join("report.json");
    let (mut p, port) = spawn_replay_as_b(&http, &["-c", "--report", report.to_str().unwrap()]);
    // The second recorded connection's client comes first, and both at once.
    let peers: Vec<_> = [1, 0]
        .into_iter()
        .map(|stream| {
            let steps = script(&http, stream, Direction::AtoB);
            let a = TcpStream::connect(("127.0.0.1", port)).unwrap();
            thread::spawn(move || perform(a, &steps))
        })
        .collect();
    let status = p.wait();
    for peer in peers {
        peer.join().unwrap();
    }
    let stdout = p.stdout.text();
    assert_eq!(status.code(), Some(0), "{stdout}{}", p.stderr.text());
    assert!(stdout.contains("[1] A -> B sent "), "{stdout}");
    assert!(stdout.contains("[0] Replay matched stream 0: "), "{stdout}");
    assert!(
        stdout.ends_with("Replay: 2 of 2 connections matched.\n"),
        "{stdout}"
    );
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(json["matched"], true);
    assert_eq!(json["connections"].as_array().unwrap().len(), 2);
    assert_eq!(json["connections"][1]["stream"], 1);
    assert!(json["connections"][1]["bytes_b_to_a"].as_u64().unwrap() > 0);
}

#[test]
fn stream_picks_connections_and_one_that_differs_fails_the_run() {
    let http = fixture("http.pcap");
    let (mut p, port) = spawn_replay_as_b(&http, &["-q", "--stream", "0,1", "--timeout", "2"]);
    let good = script(&http, 0, Direction::AtoB);
    let mut bad = script(&http, 1, Direction::AtoB);
    common::change_byte(&mut bad, 20);
    let peers: Vec<_> = [good, bad]
        .into_iter()
        .map(|steps| {
            let a = TcpStream::connect(("127.0.0.1", port)).unwrap();
            thread::spawn(move || perform(a, &steps))
        })
        .collect();
    let status = p.wait();
    for peer in peers {
        peer.join().unwrap();
    }
    let (stdout, stderr) = (p.stdout.text(), p.stderr.text());
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    assert!(stdout.contains("[0] matched: "), "{stdout}");
    assert!(
        stdout
            .contains("[1] differs: Replay differs from the recording: A -> B at stream offset 20"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Replay: 1 of 2 connections matched."),
        "{stdout}"
    );
    assert_eq!(
        stderr,
        "Replay differs from the recording in 1 of 2 connections\n"
    );
}

// ---- mistakes end clearly, and in time -----------------------------------------------

#[test]
fn bad_rules_and_commands_are_usage_errors() {
    let lines = fixture("lines.pcap");
    let path = lines.to_str().unwrap();
    let play = ["replay", path, "--as", "b", "-A", "127.0.0.1:0"];
    for (extra, reason) in [
        (
            &["--ignore", "("][..],
            "--ignore '(' is not a regular expression",
        ),
        (
            &["--carry", "TOKEN [0-9]+"],
            "needs exactly one capture group",
        ),
        (&["--carry", "(a)(b)"], "needs exactly one capture group"),
        (&["--"], "-- must be followed by a command to run"),
        (&["--stream", "9"], "has no TCP connection 9"),
    ] {
        let mut list = strings(&play);
        list.extend(strings(extra));
        common::assert_usage_error(&list, true);
        let mut p = Process::spawn(&list);
        p.wait();
        assert!(
            p.stderr.text().contains(reason),
            "{extra:?}: {}",
            p.stderr.text()
        );
    }
}

#[test]
fn a_missing_or_endless_command_ends_in_time() {
    let lines = fixture("lines.pcap");
    let path = lines.to_str().unwrap();
    let start = Instant::now();
    let (code, _, stderr) = run(&[
        "replay",
        path,
        "--as",
        "b",
        "-A",
        "127.0.0.1:0",
        "--",
        "/nonexistent/client",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "Cannot run /nonexistent/client: No such file or directory\n"
    );
    // A client that never connects nor exits: stopped after --timeout.
    let (code, stdout, stderr) = run(&[
        "replay",
        path,
        "--as",
        "b",
        "-A",
        "127.0.0.1:0",
        "--timeout",
        "0.5",
        "--",
        "sleep",
        "60",
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stdout.contains("The command sleep 60 did not exit within 0.5 s, and was stopped."),
        "{stdout}"
    );
    assert!(
        stderr.starts_with("Wait for connection from the source failed"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the command did not exit within 0.5 s"),
        "{stderr}"
    );
    // A client that exits without connecting: no need to wait for --timeout.
    let (code, _, stderr) = run(&[
        "replay",
        path,
        "--as",
        "b",
        "-A",
        "127.0.0.1:0",
        "--",
        "true",
    ]);
    assert_eq!(code, 1);
    assert_eq!(
        stderr,
        "Wait for connection from the source failed: the command exited without \
         connecting; the command exited with status 0\n"
    );
    // A server that never listens.
    let b = format!("127.0.0.1:{}", free_port());
    let (code, stdout, stderr) = run(&[
        "replay",
        path,
        "--as",
        "a",
        "-B",
        &b,
        "--timeout",
        "0.5",
        "--",
        "sleep",
        "60",
    ]);
    assert_eq!(code, 1, "{stdout}{stderr}");
    assert!(
        stderr.starts_with(&format!("nothing accepted connections on {b} within 0.5 s")),
        "{stderr}"
    );
    // A server that exits at once.
    let (code, _, stderr) = run(&["replay", path, "--as", "a", "-B", &b, "--", "false"]);
    assert_eq!(code, 1);
    assert!(
        stderr.starts_with(&format!("false exited with status 1 before {b} accepted")),
        "{stderr}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "{:?}",
        start.elapsed()
    );
}

#[test]
fn a_client_that_sends_nothing_fails_every_connection_in_time() {
    let http = fixture("http.pcap");
    let (mut p, port) = spawn_replay_as_b(&http, &["--timeout", "0.5"]);
    let _silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let status = p.wait();
    let stdout = p.stdout.text();
    assert_eq!(status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("A sent nothing for 0.5 s at stream offset 0."),
        "{stdout}"
    );
    assert!(
        stdout.contains("[1] differs: Wait for connection from the source failed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Replay: 0 of 2 connections matched."),
        "{stdout}"
    );
}

#[test]
fn after_an_ignored_span_of_another_length_both_offsets_are_reported() {
    let lines = fixture("lines.pcap");
    let mut client = script(&lines, 0, Direction::AtoB);
    let mut sends: Vec<&mut Vec<u8>> = client
        .iter_mut()
        .filter_map(|step| match step {
            Step::Send(bytes) => Some(bytes),
            _ => None,
        })
        .collect();
    assert_eq!(sends[0].as_slice(), b"line 0 says hello\n");
    assert_eq!(sends[2].as_slice(), b"line 2 says hello\n");
    *sends[0] = b"line 10 says hello\n".to_vec();
    *sends[2] = b"line 2 says HELLO\n".to_vec();
    let (mut p, port) = spawn_replay_as_b(&lines, &["-c", "--ignore", "line [0-9]+"]);
    let a = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let peer = thread::spawn(move || perform(a, &client));
    let status = p.wait();
    peer.join().unwrap();
    let (stdout, stderr) = (p.stdout.text(), p.stderr.text());
    assert_eq!(status.code(), Some(1), "{stdout}{stderr}");
    // `line 10` is one byte longer than `line 0`: the live stream is one ahead.
    assert!(
        stdout.contains(
            "Difference in A -> B at stream offset 49 (0x31), \
             offset 48 (0x30) in the recording:\n\
             expected:\n\
             00000030  68 65 6c 6c 6f 0a"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("received:\n00000031     48 45 4c 4c 4f 0a"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Rules in force: --ignore 'line [0-9]+' (3 spans)\n"),
        "{stdout}"
    );
    assert_eq!(
        stderr,
        "Replay differs from the recording: A -> B at stream offset 49\n"
    );
}
