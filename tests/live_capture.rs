//! `-w -`: the capture as a live stream on standard output, read by tshark from the
//! pipe while the relay runs.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;

use common::*;

/// One packet as tshark showed it: who sent it, its payload, any expert message.
struct Shown {
    src_port: u16,
    payload: Vec<u8>,
    expert: String,
}

fn parse(line: &str) -> Shown {
    let fields: Vec<&str> = line.split('\t').collect();
    let hex: String = fields.get(1).unwrap_or(&"").replace(':', "");
    Shown {
        src_port: fields[0].parse().expect("a port from tshark"),
        payload: (0..hex.len() / 2)
            .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex"))
            .collect(),
        expert: fields.get(2).unwrap_or(&"").to_string(),
    }
}

#[test]
fn tshark_reads_the_capture_from_the_pipe_while_the_relay_runs() {
    if !have_tshark() {
        return;
    }
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let b_port = listener.local_addr().unwrap().port();
    let mut relay = Command::new(BIN)
        .args(["-A", "127.0.0.1:0", "-B", &format!("127.0.0.1:{b_port}")])
        .args(["-w", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The text for people goes to standard error; the pipe carries only the capture.
    let text = Captured::collect(relay.stderr.take().unwrap(), false);
    let mut tshark = Command::new("tshark")
        .args(["-l", "-r", "-", "-T", "fields", "-e", "tcp.srcport"])
        .args(["-e", "tcp.payload", "-e", "_ws.expert.message"])
        .stdin(Stdio::from(relay.stdout.take().unwrap()))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run tshark");
    let tshark_err = Captured::collect(tshark.stderr.take().unwrap(), false);
    let (lines, packets) = mpsc::channel();
    let out = tshark.stdout.take().unwrap();
    thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = lines.send(line);
        }
    });
    // (Standard error is unbuffered: wait for the whole line.)
    let waiting = text.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A ") && l.ends_with("...")
    });
    let mut b = accept_in_time(&listener);
    let mut a = TcpStream::connect(("127.0.0.1", waiting_port(&waiting))).unwrap();
    let a_port = a.local_addr().unwrap().port();
    let mut shown: Vec<Shown> = Vec::new();
    let next = |shown: &mut Vec<Shown>| {
        let line = packets
            .recv_timeout(DEADLINE)
            .unwrap_or_else(|_| panic!("tshark showed nothing more: {}", tshark_err.text()));
        shown.push(parse(&line));
    };

    let request = random_bytes(3000, 7);
    a.write_all(&request).unwrap();
    assert_eq!(read_exact(&mut b, request.len()), request);
    // Live: the bytes reach tshark while both connections are still open.
    while shown.iter().map(|s| s.payload.len()).sum::<usize>() < request.len() {
        next(&mut shown);
    }
    assert!(relay.try_wait().unwrap().is_none(), "the relay ended early");
    let reply = random_bytes(5000, 8);
    b.write_all(&reply).unwrap();
    assert_eq!(read_exact(&mut a, reply.len()), reply);
    a.shutdown(Shutdown::Write).unwrap();
    b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut a).unwrap(), b"");
    assert_eq!(read_to_end(&mut b).unwrap(), b"");
    assert!(relay.wait().unwrap().success(), "{}", text.text());
    while let Ok(line) = packets.recv_timeout(DEADLINE) {
        shown.push(parse(&line));
    }
    assert!(tshark.wait().unwrap().success(), "{}", tshark_err.text());

    let sent_by = |port: u16| -> Vec<u8> {
        let from = shown.iter().filter(|s| s.src_port == port);
        from.flat_map(|s| s.payload.clone()).collect()
    };
    // The relay's capture shows A on its own port and B on the one it listens on.
    let from_b = sent_by(b_port);
    let from_a: Vec<u8> = shown
        .iter()
        .filter(|s| s.src_port != b_port)
        .flat_map(|s| s.payload.clone())
        .collect();
    assert_eq!(from_a, request, "A's bytes (A's port {a_port})");
    assert_eq!(from_b, reply);
    let warned: Vec<&str> = shown
        .iter()
        .map(|s| s.expert.as_str())
        .filter(|e| {
            !e.is_empty() && !e.contains("Connection establish") && !e.contains("Connection finish")
        })
        .collect();
    assert!(warned.is_empty(), "expert notes: {warned:?}");
}

#[test]
fn a_fifo_works_as_a_capture_path() {
    let dir = scratch_dir("fifo");
    let fifo = dir.join("live.pcap");
    let path = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    assert_eq!(unsafe { libc::mkfifo(path.as_ptr(), 0o600) }, 0);
    // The reader: everything that comes down the FIFO.
    let reader_path = fifo.clone();
    let reader = thread::spawn(move || std::fs::read(reader_path).unwrap());
    let mut s = Session::start(&["-c", "-w", fifo.to_str().unwrap()]);
    s.a.write_all(b"through a fifo").unwrap();
    assert_eq!(read_exact(&mut s.b, 14), b"through a fifo");
    s.a.shutdown(Shutdown::Write).unwrap();
    s.b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut s.a).unwrap(), b"");
    assert!(s.process.wait().success());
    let bytes = reader.join().unwrap();
    // A classic pcap header, and the bytes in a packet.
    assert_eq!(bytes[..4], 0xa1b2_3c4d_u32.to_ne_bytes());
    assert!(bytes.windows(14).any(|w| w == b"through a fifo"));
}

#[test]
fn the_capture_and_the_events_cannot_both_take_standard_output() {
    let args: Vec<String> = [
        "-A",
        "127.0.0.1:0",
        "-B",
        "127.0.0.1:9",
        "-w",
        "-",
        "--events",
        "-",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_usage_error(&args, false);
}
