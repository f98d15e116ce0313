//! A small load generator for `tools/bench`: the two ends of a transfer, verified.
//!
//! `sink` accepts one connection and reads it to the end, checking every byte
//! against the pattern `source` sends, so a benchmark row whose bytes were not relayed
//! exactly is void. `echo` and `ping` measure round trips of small messages. Built as
//! a cargo example (`cargo build --release --example loadgen`) so it needs nothing
//! beyond the project's own toolchain; all traffic stays on loopback.
//!
//! ```text
//! loadgen sink HOST:PORT            prints "listening PORT", then "received N bytes, verified"
//! loadgen source HOST:PORT BYTES    prints "sent N bytes in S s"
//! loadgen echo HOST:PORT            echoes one connection until EOF
//! loadgen ping HOST:PORT COUNT SIZE prints "p50 X us p99 Y us"
//! loadgen tls-sink HOST:PORT CERT   as sink, over TLS with a certificate for
//!                                   127.0.0.1 that it makes and writes to CERT
//! loadgen tls-source HOST:PORT BYTES CA   as source, over TLS, trusting CA
//! ```

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

const BLOCK: usize = 64 * 1024;
const DEADLINE: Duration = Duration::from_secs(120);

/// The bytes at stream offsets [start, start + out.len()): a pseudo-random block,
/// with each 64 KiB block stamped with its number so a lost, repeated or reordered
/// block is caught too.
struct Pattern {
    block: Vec<u8>,
}

impl Pattern {
    fn new() -> Pattern {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let block = (0..BLOCK)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                (x >> 32) as u8
            })
            .collect();
        Pattern { block }
    }

    /// Fills `out` with the pattern at `offset`.
    fn fill(&self, offset: u64, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            let at = offset + done as u64;
            let in_block = (at % BLOCK as u64) as usize;
            let n = (BLOCK - in_block).min(out.len() - done);
            out[done..done + n].copy_from_slice(&self.block[in_block..in_block + n]);
            // Stamp: the first 8 bytes of each block are its number.
            let stamp = (at / BLOCK as u64).to_le_bytes();
            for (i, &b) in stamp.iter().enumerate() {
                if in_block <= i && i < in_block + n {
                    out[done + i - in_block] = b;
                }
            }
            done += n;
        }
    }
}

fn sink(addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!("listening {}", listener.local_addr()?.port());
    io::stdout().flush()?;
    let (mut conn, _) = listener.accept()?;
    conn.set_read_timeout(Some(DEADLINE))?;
    let total = verify_all(&mut conn)?;
    conn.shutdown(Shutdown::Write)?;
    println!("received {total} bytes, verified");
    Ok(())
}

/// Reads to the end, checking every byte against the pattern; how many there were.
fn verify_all(conn: &mut impl Read) -> io::Result<u64> {
    let pattern = Pattern::new();
    let mut buf = vec![0u8; BLOCK];
    let mut expected = vec![0u8; BLOCK];
    let mut total: u64 = 0;
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            break;
        }
        pattern.fill(total, &mut expected[..n]);
        if buf[..n] != expected[..n] {
            let at = buf[..n]
                .iter()
                .zip(&expected[..n])
                .position(|(a, b)| a != b)
                .unwrap_or(0);
            println!("MISMATCH at offset {}", total + at as u64);
            return Err(io::Error::other("mismatch"));
        }
        total += n as u64;
    }
    Ok(total)
}

/// Writes `bytes` bytes of the pattern.
fn send_pattern(conn: &mut impl Write, bytes: u64) -> io::Result<u64> {
    let pattern = Pattern::new();
    let mut buf = vec![0u8; BLOCK];
    let mut sent: u64 = 0;
    while sent < bytes {
        let n = (bytes - sent).min(BLOCK as u64) as usize;
        pattern.fill(sent, &mut buf[..n]);
        conn.write_all(&buf[..n])?;
        sent += n as u64;
    }
    Ok(sent)
}

fn source(addr: &str, bytes: u64) -> io::Result<()> {
    let start = Instant::now();
    let mut conn = TcpStream::connect(addr)?;
    conn.set_read_timeout(Some(DEADLINE))?;
    let sent = send_pattern(&mut conn, bytes)?;
    conn.shutdown(Shutdown::Write)?;
    // The transfer is over when the sink, having read everything, closes back.
    let mut rest = Vec::new();
    conn.read_to_end(&mut rest)?;
    let seconds = start.elapsed().as_secs_f64();
    println!("sent {sent} bytes in {seconds:.6} s");
    Ok(())
}

fn echo(addr: &str) -> io::Result<()> {
    let listener = TcpListener::bind(addr)?;
    println!("listening {}", listener.local_addr()?.port());
    io::stdout().flush()?;
    let (mut conn, _) = listener.accept()?;
    conn.set_nodelay(true)?;
    let mut buf = vec![0u8; BLOCK];
    loop {
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return conn.shutdown(Shutdown::Write);
        }
        conn.write_all(&buf[..n])?;
    }
}

fn ping(addr: &str, count: usize, size: usize) -> io::Result<()> {
    let mut conn = TcpStream::connect(addr)?;
    conn.set_nodelay(true)?;
    conn.set_read_timeout(Some(DEADLINE))?;
    let message = vec![b'p'; size];
    let mut reply = vec![0u8; size];
    let mut times = Vec::with_capacity(count);
    for _ in 0..count {
        let start = Instant::now();
        conn.write_all(&message)?;
        conn.read_exact(&mut reply)?;
        times.push(start.elapsed());
        if reply != message {
            println!("MISMATCH in a reply");
            return Err(io::Error::other("mismatch"));
        }
    }
    conn.shutdown(Shutdown::Write)?;
    times.sort();
    let pct = |p: usize| times[(times.len() * p / 100).min(times.len() - 1)].as_secs_f64() * 1e6;
    println!("p50 {:.1} us p99 {:.1} us", pct(50), pct(99));
    Ok(())
}

fn tls_provider() -> std::sync::Arc<rustls::crypto::CryptoProvider> {
    std::sync::Arc::new(rustls::crypto::ring::default_provider())
}

/// `sink` over TLS: a certificate for 127.0.0.1 made here, written to `cert_path`
/// before listening, so that the relay can trust it.
fn tls_sink(addr: &str, cert_path: &str) -> io::Result<()> {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()])
        .map_err(io::Error::other)?;
    std::fs::write(cert_path, made.cert.pem())?;
    let key = rustls::pki_types::PrivateKeyDer::try_from(made.key_pair.serialize_der())
        .map_err(io::Error::other)?;
    let config = rustls::ServerConfig::builder_with_provider(tls_provider())
        .with_safe_default_protocol_versions()
        .and_then(|b| {
            b.with_no_client_auth()
                .with_single_cert(vec![made.cert.der().clone()], key)
        })
        .map_err(io::Error::other)?;
    let listener = TcpListener::bind(addr)?;
    println!("listening {}", listener.local_addr()?.port());
    io::stdout().flush()?;
    let (tcp, _) = listener.accept()?;
    tcp.set_read_timeout(Some(DEADLINE))?;
    let state =
        rustls::ServerConnection::new(std::sync::Arc::new(config)).map_err(io::Error::other)?;
    let mut conn = rustls::StreamOwned::new(state, tcp);
    let total = verify_all(&mut conn)?;
    conn.conn.send_close_notify();
    conn.flush()?;
    conn.sock.shutdown(Shutdown::Write)?;
    println!("received {total} bytes, verified");
    Ok(())
}

/// `source` over TLS, trusting the CA in `ca_path` for 127.0.0.1.
fn tls_source(addr: &str, bytes: u64, ca_path: &str) -> io::Result<()> {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in
        rustls::pki_types::CertificateDer::pem_file_iter(ca_path).map_err(io::Error::other)?
    {
        roots
            .add(cert.map_err(io::Error::other)?)
            .map_err(io::Error::other)?;
    }
    let config = rustls::ClientConfig::builder_with_provider(tls_provider())
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let name = rustls::pki_types::ServerName::try_from("127.0.0.1").map_err(io::Error::other)?;
    let state = rustls::ClientConnection::new(std::sync::Arc::new(config), name)
        .map_err(io::Error::other)?;
    let start = Instant::now();
    let tcp = TcpStream::connect(addr)?;
    tcp.set_read_timeout(Some(DEADLINE))?;
    let mut conn = rustls::StreamOwned::new(state, tcp);
    let sent = send_pattern(&mut conn, bytes)?;
    conn.conn.send_close_notify();
    conn.flush()?;
    conn.sock.shutdown(Shutdown::Write)?;
    // The transfer is over when the sink, having read everything, closes back.
    let mut rest = Vec::new();
    match conn.read_to_end(&mut rest) {
        Ok(_) => {}
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {}
        Err(e) => return Err(e),
    }
    let seconds = start.elapsed().as_secs_f64();
    println!("sent {sent} bytes in {seconds:.6} s");
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or("");
    let number = |i: usize| {
        arg(i)
            .parse::<u64>()
            .map_err(|_| io::Error::other(format!("bad number {:?}", arg(i))))
    };
    let result = match arg(0) {
        "sink" => sink(arg(1)),
        "source" => number(2).and_then(|n| source(arg(1), n)),
        "echo" => echo(arg(1)),
        "tls-sink" => tls_sink(arg(1), arg(2)),
        "tls-source" => number(2).and_then(|n| tls_source(arg(1), n, arg(3))),
        "ping" => {
            number(2).and_then(|c| number(3).and_then(|s| ping(arg(1), c as usize, s as usize)))
        }
        _ => Err(io::Error::other("usage: loadgen sink|source|echo|ping ...")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pattern_is_the_same_however_it_is_cut() {
        let p = Pattern::new();
        let mut whole = vec![0u8; 3 * BLOCK + 100];
        p.fill(0, &mut whole);
        let mut pieces = vec![0u8; whole.len()];
        let mut at = 0;
        for n in [5, 3, BLOCK - 1, 7, BLOCK, 2 * BLOCK] {
            let end = (at + n).min(whole.len());
            p.fill(at as u64, &mut pieces[at..end]);
            at = end;
        }
        assert_eq!(whole, pieces);
        assert_eq!(&whole[BLOCK..BLOCK + 8], &1u64.to_le_bytes());
    }
}
