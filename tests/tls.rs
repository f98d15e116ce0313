//! `-A tls:` and `-B tls:`: the real binary between real TLS programs (curl,
//! `openssl s_server`, `openssl s_client`), showing and capturing the plaintext.

mod common;

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

fn have_tls_tools() -> bool {
    have_program("openssl", "version", "openssl") && have_program("curl", "--version", "curl")
}

/// What the tests with a Python ssl peer need too.
fn have_python_tls_tools() -> bool {
    have_tls_tools() && have_program("python3", "--version", "python3")
}

/// A self-signed server certificate for localhost and 127.0.0.1 (not a CA: a CA
/// certificate is refused as a server's), and its key: `(cert, key)`.
fn server_certificate(dir: &Path, name: &str) -> (PathBuf, PathBuf) {
    let cert = dir.join(format!("{name}.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    let made = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        .args(["-addext", "basicConstraints=critical,CA:FALSE"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    (cert, key)
}

/// `openssl s_server -www` on a free loopback port, speaking HTTP/1.1 by ALPN if
/// asked: the server and its port.
fn s_server(cert: &Path, key: &Path) -> (Helper, u16) {
    s_server_with(cert, key, &["-www", "-alpn", "http/1.1"])
}

/// `openssl s_server` with `args` on a free loopback port: the server and its port.
fn s_server_with(cert: &Path, key: &Path, args: &[&str]) -> (Helper, u16) {
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let mut all = vec!["s_server"];
    all.extend(args);
    all.extend(["-accept", "127.0.0.1:0", "-cert", &cert, "-key", &key]);
    let server = Helper::spawn("openssl", &all, Stdio::null());
    let line = server
        .stdout
        .wait_line("s_server's ACCEPT line", |l| l.starts_with("ACCEPT "));
    (server, waiting_port(&line))
}

/// A Python ssl server running `script` with a new certificate (argv: cert, key),
/// once it has printed its `PORT :n` line: the certificate, the server, its port.
fn python_tls_server(dir: &Path, script: &str) -> (PathBuf, Helper, u16) {
    let (cert, key) = server_certificate(dir, "b");
    let (cert_arg, key_arg) = (cert.display().to_string(), key.display().to_string());
    let server = Helper::spawn(
        "python3",
        &["-c", script, &cert_arg, &key_arg],
        Stdio::null(),
    );
    let line = server
        .stdout
        .wait_line("the server's port", |l| l.starts_with("PORT "));
    (cert, server, waiting_port(&line))
}

/// The local CA's certificate, as the start-up line names it.
fn printed_ca(out: &Captured) -> PathBuf {
    let line = out.wait_line("the CA line", |l| l.starts_with("A is shown a certificate"));
    let path = line
        .split_whitespace()
        .find(|w| w.ends_with("ca.pem;"))
        .unwrap_or_else(|| panic!("no CA path in {line:?}"));
    PathBuf::from(path.trim_end_matches(';'))
}

fn with_data_home(dir: &Path) -> Options {
    Options {
        env: vec![(
            "XDG_DATA_HOME".into(),
            dir.join("data").display().to_string(),
        )],
        ..Options::default()
    }
}

/// The binary with `-c`, then `flags`, then `-A tls:localhost:0 -B b`, its local CA
/// made under `dir`.
fn spawn_tls_a(dir: &Path, flags: &[&str], b: &str) -> Process {
    let mut args = strings(&["-c"]);
    args.extend(strings(flags));
    args.extend(strings(&["-A", "tls:localhost:0", "-B", b]));
    Process::spawn_with(&args, &with_data_home(dir))
}

/// A plain B listening on a free loopback port, and its `-B` address.
fn tcp_b() -> (TcpListener, String) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    (listener, format!("127.0.0.1:{port}"))
}

#[test]
fn https_from_curl_through_tls_to_tls_to_openssl_s_server() {
    if !have_tls_tools() {
        return;
    }
    let dir = scratch_dir("tls-https");
    let (cert, key) = server_certificate(&dir, "b");
    let (_server, b_port) = s_server(&cert, &key);
    let capture = dir.join("s.pcapng");
    let keylog = dir.join("keys.log");
    let mut process = Process::spawn_with(
        &strings(&[
            "-c",
            "--tls-keylog",
            &keylog.display().to_string(),
            "-A",
            "tls:127.0.0.1:0",
            "-B",
            &format!("tls:127.0.0.1:{b_port}"),
            "--tls-ca",
            &cert.display().to_string(),
            "--tls-alpn",
            "h2,http/1.1",
            "-w",
            &capture.display().to_string(),
        ]),
        &with_data_home(&dir),
    );
    let ca = printed_ca(&process.stdout);
    assert!(
        ca.starts_with(dir.join("data/tiburoncin")),
        "{}",
        ca.display()
    );
    let key_mode = std::fs::metadata(ca.with_file_name("ca-key.pem")).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&key_mode.permissions()) & 0o777,
        0o600
    );
    process.stdout.wait_line("B's TLS", |l| {
        l.starts_with("TLS with B: TLSv1_3, TLS13_") && l.ends_with(", ALPN http/1.1")
    });
    let waiting = process.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A tls:127.0.0.1:")
    });
    let url = format!("https://127.0.0.1:{}/", waiting_port(&waiting));
    let curl = Command::new("curl")
        // curl offers h2 and http/1.1; B chose http/1.1, so A is offered only that.
        .args(["-sS", "--max-time", "20", "--cacert"])
        .arg(&ca)
        .arg(&url)
        .output()
        .unwrap();
    let page = String::from_utf8_lossy(&curl.stdout);
    assert!(
        curl.status.success(),
        "curl: {}",
        String::from_utf8_lossy(&curl.stderr)
    );
    assert!(page.contains("s_server -www"), "{page}");
    let status = process.wait();
    assert_eq!(status.code(), Some(0), "{}", process.stderr.text());

    let text = process.stdout.text();
    let a_tls = text
        .lines()
        .find(|l| l.starts_with("TLS with A: TLSv1_3, TLS13_"));
    assert!(
        a_tls.is_some_and(|l| l.ends_with(", ALPN http/1.1")),
        "{text}"
    );
    // The hexdump shows the plaintext request, byte for byte.
    let request = format!(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n",
        waiting_port(&waiting)
    );
    let shown = text_of_hexdump(&text, "A -> B");
    assert!(shown.starts_with(&request), "{shown:?}");
    assert!(text_of_hexdump(&text, "B -> A").starts_with("HTTP/1.0 200 ok\r\n"));
    assert_key_log(&keylog);

    if !have_tshark() {
        return;
    }
    let http = Command::new("tshark")
        .arg("-r")
        .arg(&capture)
        .args([
            "-Y",
            "http",
            "-T",
            "fields",
            "-e",
            "http.request.method",
            "-e",
            "http.response.code",
        ])
        .output()
        .unwrap();
    let found = String::from_utf8_lossy(&http.stdout);
    assert_eq!(
        found.lines().collect::<Vec<_>>(),
        ["GET\t", "\t200"],
        "{found}"
    );
    // The SYNs' comments give each side's TLS version and cipher suite.
    let comments = Command::new("tshark")
        .arg("-r")
        .arg(&capture)
        .args(["-c", "2", "-T", "fields", "-e", "frame.comment"])
        .output()
        .unwrap();
    let comments = String::from_utf8_lossy(&comments.stdout);
    let lines: Vec<&str> = comments.lines().collect();
    assert_eq!(lines.len(), 2, "{comments}");
    for (line, side) in lines.iter().zip(["A", "B"]) {
        let prefix = format!("{side} over TLS (TLSv1_3, TLS13_");
        assert!(
            line.starts_with(&prefix) && line.ends_with(", ALPN http/1.1)"),
            "{comments}"
        );
    }
}

/// Both sessions' TLS 1.3 secrets, in SSLKEYLOGFILE format, readable by the owner only.
fn assert_key_log(path: &Path) {
    let text = std::fs::read_to_string(path).unwrap();
    let mut randoms = std::collections::BTreeSet::new();
    for line in text.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        assert_eq!(fields.len(), 3, "{line}");
        assert!(
            fields[0].ends_with("_SECRET") || fields[0].ends_with("_SECRET_0"),
            "{line}"
        );
        assert_eq!(fields[1].len(), 64, "{line}");
        assert!(
            fields[1..]
                .iter()
                .all(|f| f.bytes().all(|b| b.is_ascii_hexdigit()))
        );
        randoms.insert(fields[1].to_string());
    }
    let traffic = text
        .lines()
        .filter(|l| l.starts_with("CLIENT_TRAFFIC_SECRET_0 "))
        .count();
    assert_eq!((randoms.len(), traffic), (2, 2), "{text}");
    let mode = std::fs::metadata(path).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
}

/// The bytes of every hexdump row of direction `dir` (`A -> B`), in order, as text.
fn text_of_hexdump(text: &str, dir: &str) -> String {
    let mut bytes = Vec::new();
    let mut inside = false;
    for line in text.lines() {
        if line.starts_with("A -> B sent") || line.starts_with("B -> A sent") {
            inside = line.starts_with(dir);
            continue;
        }
        let is_row = line.len() > 10
            && line.as_bytes()[8] == b' '
            && line[..8].bytes().all(|b| b.is_ascii_hexdigit());
        if !(inside && is_row) {
            continue;
        }
        let hex = &line[10..58];
        let from = (u64::from_str_radix(&line[..8], 16).unwrap() % 16) as usize;
        bytes.extend(
            hex.split_whitespace()
                .map(|h| u8::from_str_radix(h, 16).unwrap())
                .take(16 - from),
        );
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

#[test]
fn openssl_s_client_verifies_the_made_certificate_and_b_gets_plaintext() {
    if !have_tls_tools() {
        return;
    }
    let dir = scratch_dir("tls-s-client");
    let (b_listener, b_addr) = tcp_b();
    let mut process = spawn_tls_a(&dir, &[], &b_addr);
    let ca = printed_ca(&process.stdout);
    let mut b = accept_in_time(&b_listener);
    let waiting = process.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A tls:localhost:")
    });
    let mut client = Command::new("openssl")
        .args([
            "s_client",
            "-verify_return_error",
            "-servername",
            "localhost",
            "-CAfile",
        ])
        .arg(&ca)
        .arg("-connect")
        .arg(format!("127.0.0.1:{}", waiting_port(&waiting)))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut to_client = client.stdin.take().unwrap();
    to_client.write_all(b"hello over tls\n").unwrap();
    assert_eq!(read_exact(&mut b, 15), b"hello over tls\n");
    b.write_all(b"plain reply\n").unwrap();
    b.shutdown(Shutdown::Write).unwrap();
    process
        .stdout
        .wait_line("the reply relayed", |l| l == "A is in sync");
    // s_client ends at the end of its input: a close_notify, which B sees as the end.
    drop(to_client);
    assert_eq!(read_to_end(&mut b).unwrap(), b"");
    let out = client.wait_with_output().unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(shown.contains("Verify return code: 0 (ok)"), "{shown}");
    assert!(shown.contains("plain reply"), "{shown}");
    let status = process.wait();
    assert_eq!(status.code(), Some(0), "{}", process.stderr.text());
}

#[test]
fn a_certificate_that_does_not_verify_fails_unless_insecure() {
    if !have_tls_tools() {
        return;
    }
    let dir = scratch_dir("tls-verify");
    let (cert, key) = server_certificate(&dir, "b");
    let (_server, b_port) = s_server(&cert, &key);
    let b = format!("tls:127.0.0.1:{b_port}");
    // The system's roots do not know this self-signed certificate.
    let mut refused = Process::spawn(&strings(&["-A", "127.0.0.1:0", "-B", &b]));
    assert_eq!(refused.wait().code(), Some(1));
    // (Which complaint depends on the system's roots: unknown issuer, or a root of
    // the same name that did not sign it.)
    let err = refused.stderr.text();
    assert!(
        err.starts_with(
            "Establish a connection to the destination failed: TLS: invalid peer certificate: "
        ) && err.lines().count() == 1,
        "{err}"
    );

    let mut process = Process::spawn(&strings(&[
        "-c",
        "-A",
        "127.0.0.1:0",
        "-B",
        &b,
        "--tls-insecure",
    ]));
    let waiting = process.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A ")
    });
    let mut a = TcpStream::connect(("127.0.0.1", waiting_port(&waiting))).unwrap();
    a.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    let page = String::from_utf8_lossy(&read_to_end(&mut a).unwrap()).into_owned();
    assert!(page.starts_with("HTTP/1.0 200 ok\r\n"), "{page}");
    drop(a);
    process.wait();
    assert!(
        process
            .stderr
            .text()
            .starts_with("Warning: --tls-insecure: B's certificate is not verified"),
        "{}",
        process.stderr.text()
    );
}

#[test]
fn bad_certificates_keys_and_places_are_clear_errors() {
    if !have_program("openssl", "version", "openssl") {
        return;
    }
    let dir = scratch_dir("tls-bad");
    let (cert, _) = server_certificate(&dir, "one");
    let (_, other_key) = server_certificate(&dir, "two");
    let run = |args: &[&str], options: &Options| {
        let mut all = strings(&["-A", "tls:127.0.0.1:0", "-B", "127.0.0.1:9"]);
        all.extend(strings(args));
        let mut process = Process::spawn_with(&all, options);
        let code = process.wait().code();
        (code, process.stderr.text())
    };
    let none = Options::default();
    let (cert, other_key) = (cert.display().to_string(), other_key.display().to_string());

    let (code, err) = run(&["--tls-cert", &cert, "--tls-key", &other_key], &none);
    assert_eq!(code, Some(1));
    assert!(err.starts_with("TLS: the certificate for A: "), "{err}");
    assert!(err.contains("key"), "{err}");

    let missing = dir.join("none.pem").display().to_string();
    let (code, err) = run(&["--tls-cert", &missing, "--tls-key", &other_key], &none);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!("TLS: cannot read {missing}: No such file or directory\n")
    );

    // A data directory under a plain file cannot be made, even by root.
    let file = dir.join("a-file");
    std::fs::write(&file, b"").unwrap();
    let blocked = Options {
        env: vec![(
            "XDG_DATA_HOME".into(),
            file.join("data").display().to_string(),
        )],
        ..Options::default()
    };
    let (code, err) = run(&[], &blocked);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!(
            "TLS: local CA {}/data/tiburoncin: Not a directory\n",
            file.display()
        )
    );

    let (code, err) = run(&["--tls-key", &other_key], &none);
    assert_eq!(code, Some(2), "{err}");
    let mut plain_b = Process::spawn(&strings(&["-A", "1", "-B", "2", "--tls-insecure"]));
    assert_eq!(plain_b.wait().code(), Some(2));
    assert!(
        plain_b
            .stderr
            .text()
            .contains("--tls-insecure is for a TLS B")
    );
}

/// A rustls client connected to the relay's `-A tls:` once `process` says it is
/// waiting for A, trusting `ca`.
fn rustls_a(process: &Process, ca: &Path) -> (rustls::ClientConnection, TcpStream) {
    let waiting = process.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A tls:")
    });
    rustls_client(ca, waiting_port(&waiting))
}

/// A TLS client of our own (rustls), trusting `ca`: its connection to `port`,
/// handshake done.
fn rustls_client(ca: &Path, port: u16) -> (rustls::ClientConnection, TcpStream) {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = "localhost".try_into().unwrap();
    let mut tls = rustls::ClientConnection::new(std::sync::Arc::new(config), name).unwrap();
    let mut tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    tcp.set_read_timeout(Some(DEADLINE)).unwrap();
    while tls.is_handshaking() {
        tls.complete_io(&mut tcp).unwrap();
    }
    (tls, tcp)
}

/// The plaintext `tls` reads from `tcp` until the server's close_notify.
fn tls_read_to_end(tls: &mut rustls::ClientConnection, tcp: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    loop {
        tls.complete_io(tcp).unwrap();
        match tls.reader().read_to_end(&mut got) {
            Ok(_) => return got,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            Err(e) => panic!("{e}"),
        }
    }
}

#[test]
fn a_corrupt_record_from_a_is_a_tls_failure_of_the_passthrough() {
    let dir = scratch_dir("tls-corrupt");
    let (b_listener, b_addr) = tcp_b();
    let mut process = spawn_tls_a(&dir, &[], &b_addr);
    let ca = printed_ca(&process.stdout);
    let mut b = accept_in_time(&b_listener);
    let (mut tls, mut tcp) = rustls_a(&process, &ca);
    tls.writer().write_all(b"first\n").unwrap();
    tls.complete_io(&mut tcp).unwrap();
    assert_eq!(read_exact(&mut b, 6), b"first\n");
    // An application-data record that no key sealed.
    tcp.write_all(&[0x17, 0x03, 0x03, 0x00, 0x20]).unwrap();
    tcp.write_all(&[0x42; 0x20]).unwrap();
    assert_eq!(process.wait().code(), Some(1));
    assert_eq!(
        process.stderr.text(),
        "Passthrough from A to B failed: TLS: cannot decrypt peer's message\n"
    );
}

#[test]
fn a_b_that_does_not_speak_tls_fails_the_connection() {
    let b_listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let b_port = b_listener.local_addr().unwrap().port();
    let answer = std::thread::spawn(move || {
        let mut b = accept_in_time(&b_listener);
        b.write_all(b"HTTP/1.0 400 Bad Request\r\n\r\n").unwrap();
    });
    let mut process = Process::spawn(&strings(&[
        "-A",
        "127.0.0.1:0",
        "-B",
        &format!("tls:127.0.0.1:{b_port}"),
        "--tls-insecure",
    ]));
    assert_eq!(process.wait().code(), Some(1));
    answer.join().unwrap();
    let err = process.stderr.text();
    assert!(
        err.ends_with("Establish a connection to the destination failed: TLS: received corrupt message of type InvalidContentType\n"),
        "{err}"
    );
}

#[test]
fn a_signal_ends_a_handshake_that_a_silent_client_holds_up() {
    let dir = scratch_dir("tls-silent");
    let (b_listener, b_addr) = tcp_b();
    let mut process = spawn_tls_a(&dir, &[], &b_addr);
    let _b = accept_in_time(&b_listener);
    let waiting = process.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A ")
    });
    let port = waiting_port(&waiting);
    let _silent = TcpStream::connect(("127.0.0.1", port)).unwrap();
    // The single relay closes its listener once it has accepted A: then the
    // handshake is under way.
    wait_for(
        "the listener to close",
        || {
            TcpStream::connect(("127.0.0.1", port))
                .is_err()
                .then_some(())
        },
        String::new,
    );
    let start = std::time::Instant::now();
    process.signal(libc::SIGINT);
    assert_eq!(process.wait().code(), Some(130));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
    assert_eq!(process.stderr.text(), "User cancelled.\n");
}

#[test]
fn keep_listening_serves_tls_clients_each_with_its_own_b() {
    let dir = scratch_dir("tls-many");
    let (b_listener, b_addr) = tcp_b();
    let mut process = spawn_tls_a(&dir, &["-k"], &b_addr);
    let ca = printed_ca(&process.stdout);
    let waiting = process.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for connections from A ")
    });
    let port = waiting_port(&waiting);
    let mut clients = Vec::new();
    for n in 1..=2u8 {
        let (mut tls, mut tcp) = rustls_client(&ca, port);
        let mut b = accept_in_time(&b_listener);
        tls.writer().write_all(&[b'0' + n; 3]).unwrap();
        tls.complete_io(&mut tcp).unwrap();
        assert_eq!(read_exact(&mut b, 3), [b'0' + n; 3]);
        b.write_all(b"back").unwrap();
        b.shutdown(Shutdown::Write).unwrap();
        clients.push((tls, tcp, b));
    }
    for (mut tls, mut tcp, mut b) in clients {
        assert_eq!(tls_read_to_end(&mut tls, &mut tcp), b"back");
        // The client's close_notify is the end of its stream for B.
        tls.send_close_notify();
        tls.complete_io(&mut tcp).unwrap();
        assert_eq!(read_to_end(&mut b).unwrap(), b"");
    }
    process
        .stdout
        .wait_count("both summaries", 2, |l| l.contains("] Relayed A -> B"));
    process.signal(libc::SIGINT);
    assert_eq!(process.wait().code(), Some(0), "{}", process.stderr.text());
}

#[test]
fn tls_a_to_a_unix_b() {
    use std::os::unix::net::UnixListener;
    let dir = scratch_dir("tls-unix");
    let b_path = dir.join("b.sock");
    let b_listener = UnixListener::bind(&b_path).unwrap();
    let mut process = spawn_tls_a(&dir, &[], &format!("unix:{}", b_path.display()));
    let ca = printed_ca(&process.stdout);
    let (mut b, _) = b_listener.accept().unwrap();
    b.set_read_timeout(Some(DEADLINE)).unwrap();
    let (mut tls, mut tcp) = rustls_a(&process, &ca);
    tls.writer().write_all(b"over tls to unix\n").unwrap();
    tls.send_close_notify();
    tls.complete_io(&mut tcp).unwrap();
    let mut got = Vec::new();
    b.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"over tls to unix\n");
    b.write_all(b"and back\n").unwrap();
    b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(tls_read_to_end(&mut tls, &mut tcp), b"and back\n");
    assert_eq!(process.wait().code(), Some(0), "{}", process.stderr.text());
}

/// A TLS server in Python that, like many real ones, ends its side with a bare TCP
/// FIN and no close_notify (`openssl s_server -www` does send one): it greets, shuts
/// its write side down, waits for the client's end, and prints `PORT :n` first.
const PYTHON_BARE_FIN_SERVER: &str = r#"
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
print(f"PORT :{listener.getsockname()[1]}", flush=True)
raw, _ = listener.accept()
conn = ctx.wrap_socket(raw, server_side=True)
conn.sendall(b"hello from B\n")
# detach() hands back the descriptor without a TLS shutdown: only a FIN goes.
plain = socket.socket(fileno=conn.detach())
plain.shutdown(socket.SHUT_WR)
plain.settimeout(10)
while plain.recv(4096):
    pass
print("A ENDED", flush=True)
"#;

#[test]
fn a_tls_b_that_closes_without_close_notify_ends_its_direction_normally() {
    if !have_python_tls_tools() {
        return;
    }
    let dir = scratch_dir("tls-bare-fin-b");
    let (cert, server, port) = python_tls_server(&dir, PYTHON_BARE_FIN_SERVER);
    let mut process = Process::spawn(&strings(&[
        "-A",
        "127.0.0.1:0",
        "-B",
        &format!("tls:127.0.0.1:{}", port),
        "--tls-ca",
        &cert.display().to_string(),
    ]));
    let waiting = process.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A ")
    });
    let mut a = TcpStream::connect(("127.0.0.1", waiting_port(&waiting))).unwrap();
    a.set_read_timeout(Some(DEADLINE)).unwrap();
    // B's bare FIN reaches A as the end of B's stream, after all B said.
    assert_eq!(read_to_end(&mut a).unwrap(), b"hello from B\n");
    process
        .stdout
        .wait_line("B's end", |l| l == "B -> A flow shutdown");
    a.shutdown(Shutdown::Write).unwrap();
    server
        .stdout
        .wait_line("the server to see A's end", |l| l == "A ENDED");
    assert_eq!(process.wait().code(), Some(0), "{}", process.stderr.text());
    assert_eq!(process.stderr.text(), "");
}

#[test]
fn a_tls_client_that_closes_without_close_notify_ends_its_direction_normally() {
    let dir = scratch_dir("tls-bare-fin-a");
    let (b_listener, b_addr) = tcp_b();
    let mut process = spawn_tls_a(&dir, &[], &b_addr);
    let ca = printed_ca(&process.stdout);
    let mut b = accept_in_time(&b_listener);
    let (mut tls, mut tcp) = rustls_a(&process, &ca);
    tls.writer().write_all(b"then a bare FIN\n").unwrap();
    tls.complete_io(&mut tcp).unwrap();
    tcp.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_end(&mut b).unwrap(), b"then a bare FIN\n");
    process
        .stdout
        .wait_line("A's end", |l| l == "A -> B flow shutdown");
    b.write_all(b"still answered\n").unwrap();
    b.shutdown(Shutdown::Write).unwrap();
    assert_eq!(tls_read_to_end(&mut tls, &mut tcp), b"still answered\n");
    assert_eq!(process.wait().code(), Some(0), "{}", process.stderr.text());
    assert_eq!(process.stderr.text(), "");
}

/// A TLS relay (`-A tls:localhost:0 -B tls:` to B's `port`, with `flags`) between
/// `openssl s_client -alpn offered` and `openssl s_server -rev -alpn h2,http/1.1`
/// (which sends each line back reversed): the protocol s_client says it got, and
/// the relay's output.
fn alpn_through_tls_to_tls(dir: &Path, flags: &[&str], offered: &str) -> (String, String) {
    let (cert, key) = server_certificate(dir, "b");
    let (_server, b_port) = s_server_with(&cert, &key, &["-rev", "-alpn", "h2,http/1.1"]);
    let mut args = strings(&["-c", "--tls-ca", &cert.display().to_string()]);
    args.extend(strings(flags));
    args.extend(strings(&["-A", "tls:localhost:0"]));
    args.extend(strings(&["-B", &format!("tls:127.0.0.1:{b_port}")]));
    let mut process = Process::spawn_with(&args, &with_data_home(dir));
    let ca = printed_ca(&process.stdout).display().to_string();
    let waiting = process.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A ")
    });
    let connect = format!("127.0.0.1:{}", waiting_port(&waiting));
    let mut client = Helper::spawn(
        "openssl",
        &[
            "s_client",
            "-verify_return_error",
            "-servername",
            "localhost",
            "-CAfile",
            &ca,
            "-alpn",
            offered,
            "-connect",
            &connect,
        ],
        Stdio::piped(),
    );
    let mut to_client = client.child.stdin.take().unwrap();
    to_client.write_all(b"hello\n").unwrap();
    client.stdout.wait_line("B's answer", |l| l == "olleh");
    // s_client ends at the end of its input, with a close_notify.
    drop(to_client);
    assert_eq!(process.wait().code(), Some(0), "{}", process.stderr.text());
    let agreed = client.stdout.wait_line("s_client's ALPN line", |l| {
        l.starts_with("ALPN protocol: ") || l == "No ALPN negotiated"
    });
    (agreed, process.stdout.text())
}

#[test]
fn a_tls_a_offers_b_what_it_offered_and_gets_what_b_chose() {
    if !have_tls_tools() {
        return;
    }
    let dir = scratch_dir("tls-alpn-follow");
    let (agreed, out) = alpn_through_tls_to_tls(&dir, &[], "h2,http/1.1");
    assert_eq!(agreed, "ALPN protocol: h2");
    // B's handshake waited for A's ClientHello: it is told of once A is in.
    let lines: Vec<&str> = out.lines().collect();
    let at = |prefix: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {out}"))
    };
    assert!(at("Waiting for a connection from A") < at("TLS with B: "));
    assert!(at("TLS with B: ") < at("TLS with A: "));
    assert!(lines[at("TLS with B: ")].ends_with(", ALPN h2"), "{out}");
    assert!(lines[at("TLS with A: ")].ends_with(", ALPN h2"), "{out}");
    // A protocol B does not know is not chosen; one both know is.
    let (agreed, _) = alpn_through_tls_to_tls(&dir, &[], "spdy/1,http/1.1");
    assert_eq!(agreed, "ALPN protocol: http/1.1");
}

#[test]
fn tls_alpn_overrides_what_a_tls_a_offered() {
    if !have_tls_tools() {
        return;
    }
    let dir = scratch_dir("tls-alpn-override");
    let (agreed, out) = alpn_through_tls_to_tls(&dir, &["--tls-alpn", "http/1.1"], "h2,http/1.1");
    assert_eq!(agreed, "ALPN protocol: http/1.1");
    // B's handshake is done before A connects, as for a plain A.
    let b = out.find("TLS with B: ").unwrap_or(usize::MAX);
    let waiting = out.find("Waiting for a connection from A").unwrap_or(0);
    assert!(b < waiting, "{out}");
}

#[test]
fn curl_http2_through_tls_to_tls_gets_the_http_1_1_b_chose() {
    if !have_tls_tools() {
        return;
    }
    let dir = scratch_dir("tls-alpn-curl");
    let (cert, key) = server_certificate(&dir, "b");
    let (_server, b_port) = s_server(&cert, &key);
    let mut process = Process::spawn_with(
        &strings(&[
            "-q",
            "--tls-ca",
            &cert.display().to_string(),
            "-A",
            "tls:localhost:0",
            "-B",
            &format!("tls:127.0.0.1:{b_port}"),
        ]),
        &with_data_home(&dir),
    );
    let ca = printed_ca(&process.stdout);
    let waiting = process.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A ")
    });
    let curl = Command::new("curl")
        .args(["-v", "-sS", "--http2", "--max-time", "20", "--cacert"])
        .arg(&ca)
        .arg(format!("https://localhost:{}/", waiting_port(&waiting)))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&curl.stderr);
    assert!(curl.status.success(), "curl: {said}");
    // curl's offer reached B, which chose HTTP/1.1, and curl was given that.
    assert!(said.contains("ALPN: offers h2,http/1.1"), "{said}");
    assert!(said.contains("ALPN: server accepted http/1.1"), "{said}");
    assert!(String::from_utf8_lossy(&curl.stdout).contains("s_server -www"));
    assert_eq!(process.wait().code(), Some(0), "{}", process.stderr.text());
    let out = process.stdout.text();
    assert!(out.contains(", ALPN http/1.1\nTLS with A: "), "{out}");
}

#[test]
fn replay_as_b_over_tls_answers_curl_with_the_recorded_responses() {
    if !have_tls_tools() {
        return;
    }
    let dir = scratch_dir("tls-replay-b");
    let http = fixture("http.pcap");
    let mut process = Process::spawn_with(
        &strings(&[
            "replay",
            http.to_str().unwrap(),
            "-c",
            "--as",
            "b",
            "-A",
            "tls:localhost:0",
        ]),
        &with_data_home(&dir),
    );
    let ca = printed_ca(&process.stdout);
    let waiting = process.stdout.wait_line("the waiting line", |l| {
        l.starts_with("Waiting for a connection from A tls:localhost:")
    });
    let port = waiting_port(&waiting);
    // The requests recorded: curl 7.88.1 asking 127.0.0.1:18080 for /hello.txt, then
    // for /missing with a header of its own. Asked the other way round, the replay
    // tells them apart by their plaintext (a peek through TLS).
    let curl = |path: &str, extra: &[&str]| {
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "20", "--cacert"])
            .arg(&ca)
            .args(["-H", "Host: 127.0.0.1:18080", "-A", "curl/7.88.1"])
            .args(extra)
            .arg(format!("https://localhost:{port}{path}"))
            .output()
            .unwrap();
        let said = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "curl: {said}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let missing = curl("/missing", &["-H", "X-Fixture: second"]);
    assert!(missing.contains("Error code: 404"), "{missing}");
    assert_eq!(curl("/hello.txt", &[]), "Hello from a fixture.\n");
    let status = process.wait();
    let out = process.stdout.text();
    assert_eq!(status.code(), Some(0), "{out}{}", process.stderr.text());
    assert!(
        out.ends_with("Replay: 2 of 2 connections matched.\n"),
        "{out}"
    );
}

/// A TLS server in Python that plays B of `lines.pcap`: each line answered with
/// `OK ` and the line in capitals, `BYE` after the last, then the end once A's has
/// come. Prints `PORT :n` first, `DONE` last.
const PYTHON_LINES_SERVER: &str = r#"
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(sys.argv[1], sys.argv[2])
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
print(f"PORT :{listener.getsockname()[1]}", flush=True)
raw, _ = listener.accept()
raw.settimeout(10)
conn = ctx.wrap_socket(raw, server_side=True)
lines = conn.makefile("rb")
for n in range(5):
    reply = b"OK " + lines.readline().upper()
    conn.sendall(reply + (b"BYE\n" if n == 4 else b""))
assert lines.read() == b"", "A said more"
lines.close()
conn.unwrap().shutdown(socket.SHUT_WR)
print("DONE", flush=True)
"#;

#[test]
fn replay_as_a_over_tls_against_a_python_tls_server() {
    if !have_python_tls_tools() {
        return;
    }
    let dir = scratch_dir("tls-replay-a");
    let (cert, server, port) = python_tls_server(&dir, PYTHON_LINES_SERVER);
    let lines = fixture("lines.pcap");
    let (code, out, err) = run(&[
        "replay",
        lines.to_str().unwrap(),
        "-c",
        "--as",
        "a",
        "-B",
        &format!("tls:localhost:{}", port),
        "--tls-ca",
        cert.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.ends_with("Replay matched stream 0: 90 bytes A -> B, 109 bytes B -> A, 10 turns.\n"),
        "{out}"
    );
    server.stdout.wait_line("the server's end", |l| l == "DONE");
}

#[test]
fn a_bare_fin_from_a_tls_b_reaches_a_tls_a_as_a_bare_fin() {
    if !have_python_tls_tools() {
        return;
    }
    let dir = scratch_dir("tls-bare-fin-both");
    let (cert, server, port) = python_tls_server(&dir, PYTHON_BARE_FIN_SERVER);
    let b = format!("tls:127.0.0.1:{}", port);
    let mut process = spawn_tls_a(&dir, &["--tls-ca", cert.to_str().unwrap()], &b);
    let ca = printed_ca(&process.stdout);
    let (mut tls, mut tcp) = rustls_a(&process, &ca);
    // All B said, then the end as B made it: no close_notify, which rustls calls an
    // unexpected end. The relay does not make it look clean.
    let mut got = Vec::new();
    let end = loop {
        tls.complete_io(&mut tcp).unwrap();
        match tls.reader().read_to_end(&mut got) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            other => break other,
        }
    };
    assert_eq!(got, b"hello from B\n");
    assert_eq!(
        end.map_err(|e| e.kind()),
        Err(std::io::ErrorKind::UnexpectedEof)
    );
    tls.send_close_notify();
    tls.complete_io(&mut tcp).unwrap();
    server
        .stdout
        .wait_line("the server to see A's end", |l| l == "A ENDED");
    assert_eq!(process.wait().code(), Some(0), "{}", process.stderr.text());
    assert_eq!(process.stderr.text(), "");
}
