//! TLS for `-A tls:` and `-B tls:`: the rustls settings, made once before anything
//! connects, and each side's handshake. The relay and the replay both use it.
//!
//! B's certificate is verified against the system's roots, or `--tls-ca`, or not at
//! all with `--tls-insecure` (a warning says so). A is shown `--tls-cert`, or a
//! certificate made at start-up for the names A may use (localhost, 127.0.0.1, ::1,
//! `-A`'s host and B's host), signed by a local CA. That CA is made once and kept in
//! `$XDG_DATA_HOME/tiburoncin/` (`~/.local/share/tiburoncin/` by default): `ca.pem`,
//! the certificate to trust, and `ca-key.pem`, its key, readable by its owner only.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use socket2::Socket;

use crate::cli::addr::Address;
use crate::cli::config::TlsOptions;
use crate::error::Error;
use crate::relay::stream::{Stream, tls_error};

/// A handshake step (a flight of messages) that takes longer than this fails.
const HANDSHAKE_STEP: Duration = Duration::from_secs(10);

/// The local CA's common name, as a trust store lists it.
const CA_NAME: &str = "tiburoncin local CA";

/// The rustls settings for each TLS side.
#[derive(Clone, Default)]
pub(crate) struct TlsSetup {
    /// With `-B tls:`: how to connect to B, and the name B's certificate must have.
    client: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    /// With `-A tls:`: how to answer A.
    server: Option<Arc<ServerConfig>>,
    /// Both sides speak TLS and `--tls-alpn` is not given: B's handshake waits for
    /// A's ClientHello, so that B is offered the protocols A offered.
    follows_a: bool,
}

/// B's side once connected: ready to relay, or (see `TlsSetup::follows_a`)
/// connected, its TLS handshake waiting for A's ClientHello. (One is made per
/// connection and moved a few times: its size does not matter.)
#[allow(clippy::large_enum_variant)]
pub(crate) enum BSide {
    Ready(Stream),
    AwaitingA(Arc<Socket>),
}

/// What the handshakes with A (and, when it waited for A, with B) end with.
pub(crate) struct Handshaken {
    /// A's TLS connection, with `-A tls:`.
    pub(crate) a: Option<rustls::Connection>,
    pub(crate) b: Stream,
    /// B's handshake was done just now, after A's ClientHello.
    pub(crate) b_just_now: bool,
}

impl TlsSetup {
    /// Reads or makes every certificate and key the run needs for A and B (the
    /// replay has only one of them), and says with `say` where the local CA is when
    /// A is shown a certificate it signed.
    pub(crate) fn prepare(
        a: Option<&Address>,
        b: Option<&Address>,
        options: &TlsOptions,
        say: impl Fn(std::fmt::Arguments),
    ) -> Result<TlsSetup, Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key_log: Option<Arc<dyn rustls::KeyLog>> = match &options.keylog {
            Some(path) => Some(Arc::new(KeyLogFile::open(path)?)),
            None => None,
        };
        let mut setup = TlsSetup::default();
        if let Some(Address::Tls(b_endpoint)) = b {
            let name = ServerName::try_from(b_endpoint.host.clone())
                .map_err(|e| Error::Tls(format!("-B tls:{b_endpoint}: {e}")))?;
            let mut client = client_config(options, provider.clone())?;
            client.alpn_protocols = options.alpn.clone();
            if let Some(key_log) = &key_log {
                client.key_log = key_log.clone();
            }
            setup.client = Some((Arc::new(client), name));
        }
        if let Some(Address::Tls(a)) = a {
            let (chain, key) = match &options.cert_and_key {
                Some((cert, key)) => (read_chain(cert)?, read_key(key)?),
                None => {
                    let mut names = vec![a.host.clone()];
                    names.extend(b.and_then(Address::endpoint).map(|b| b.host.clone()));
                    made_certificate(&names, say)?
                }
            };
            let mut server = ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .and_then(|b| b.with_no_client_auth().with_single_cert(chain, key))
                .map_err(|e| Error::Tls(format!("the certificate for A: {e}")))?;
            if let Some(key_log) = key_log {
                server.key_log = key_log;
            }
            server.alpn_protocols = options.alpn.clone();
            setup.server = Some(Arc::new(server));
        }
        setup.follows_a =
            setup.client.is_some() && setup.server.is_some() && options.alpn.is_empty();
        Ok(setup)
    }

    /// B's side, connected: with TLS, once the handshake is done, unless it waits
    /// for A's.
    pub(crate) fn b_side(&self, socket: Socket) -> io::Result<BSide> {
        let socket = Arc::new(socket);
        match &self.client {
            None => Ok(BSide::Ready(Stream::plain(socket))),
            Some(_) if self.follows_a => Ok(BSide::AwaitingA(socket)),
            Some((config, name)) => b_handshake(socket, config.clone(), name).map(BSide::Ready),
        }
    }

    /// A's side alone (the replay, which has no B): with `-A tls:`, once the
    /// handshake is done.
    pub(crate) fn a_side(&self, socket: Socket) -> io::Result<Stream> {
        let socket = Arc::new(socket);
        let Some(config) = &self.server else {
            return Ok(Stream::plain(socket));
        };
        let mut state = rustls::ServerConnection::new(config.clone())
            .map_err(|e| tls_error(io::Error::other(e)))?
            .into();
        Stream::handshake(&socket, &mut state, HANDSHAKE_STEP)?;
        Ok(Stream::tls(socket, state))
    }

    /// With `-A tls:`, the handshake with A, on its accepted socket; and B's, if it
    /// waited for A's ClientHello. Whatever the order, A and B must end up speaking
    /// the same protocol (ALPN): A is offered only the one B chose, or none.
    pub(crate) fn handshakes(&self, a: &Socket, b: BSide) -> Result<Handshaken, Error> {
        let b = match b {
            BSide::Ready(b) => b,
            BSide::AwaitingA(b) => return self.b_after_a(a, b),
        };
        let Some(config) = &self.server else {
            return Ok(Handshaken {
                a: None,
                b,
                b_just_now: false,
            });
        };
        let config = match &self.client {
            None => config.clone(),
            Some(_) => with_alpn(config, b.alpn().into_iter().collect()),
        };
        let mut state = rustls::ServerConnection::new(config)
            .map_err(|e| Error::Accept(tls_error(io::Error::other(e))))?
            .into();
        Stream::handshake(a, &mut state, HANDSHAKE_STEP).map_err(Error::Accept)?;
        Ok(Handshaken {
            a: Some(state),
            b,
            b_just_now: false,
        })
    }

    /// Reads A's ClientHello, does B's handshake offering what A offered, then
    /// finishes A's with what B chose.
    fn b_after_a(&self, a: &Socket, b: Arc<Socket>) -> Result<Handshaken, Error> {
        let (Some(server), Some((client, name))) = (&self.server, &self.client) else {
            return Err(Error::Tls("B's handshake waited for a TLS A".into()));
        };
        let hello = Stream::client_hello(a, HANDSHAKE_STEP).map_err(Error::Accept)?;
        let offered = hello
            .client_hello()
            .alpn()
            .map(|list| list.map(<[u8]>::to_vec).collect())
            .unwrap_or_default();
        let mut client = ClientConfig::clone(client);
        client.alpn_protocols = offered;
        let b = b_handshake(b, Arc::new(client), name).map_err(Error::Connect)?;
        let config = with_alpn(server, b.alpn().into_iter().collect());
        let state =
            Stream::answer_client_hello(a, hello, config, HANDSHAKE_STEP).map_err(Error::Accept)?;
        Ok(Handshaken {
            a: Some(state),
            b,
            b_just_now: true,
        })
    }
}

/// `config`, offering only `protocols`.
fn with_alpn(config: &Arc<ServerConfig>, protocols: Vec<Vec<u8>>) -> Arc<ServerConfig> {
    let mut config = ServerConfig::clone(config);
    config.alpn_protocols = protocols;
    Arc::new(config)
}

fn b_handshake(
    socket: Arc<Socket>,
    config: Arc<ClientConfig>,
    name: &ServerName<'static>,
) -> io::Result<Stream> {
    let mut state = rustls::ClientConnection::new(config, name.clone())
        .map_err(|e| tls_error(io::Error::other(e)))?
        .into();
    Stream::handshake(&socket, &mut state, HANDSHAKE_STEP)?;
    Ok(Stream::tls(socket, state))
}

fn client_config(
    options: &TlsOptions,
    provider: Arc<rustls::crypto::CryptoProvider>,
) -> Result<ClientConfig, Error> {
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::Tls(e.to_string()))?;
    if options.insecure {
        eprintln!(
            "Warning: --tls-insecure: B's certificate is not verified; whoever answers as B is trusted"
        );
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(insecure::AnyCertificate(provider)))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    match &options.ca {
        Some(ca) => {
            for cert in read_chain(ca)? {
                roots
                    .add(cert)
                    .map_err(|e| Error::Tls(format!("--tls-ca {}: {e}", ca.display())))?;
            }
        }
        None => {
            // A store that cannot be read in part still verifies with the rest.
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
        }
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, Error> {
    let unreadable =
        |reason: String| Error::Tls(format!("cannot read {}: {reason}", path.display()));
    let chain = CertificateDer::pem_file_iter(path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| unreadable(pem_reason(e)))?;
    if chain.is_empty() {
        return Err(unreadable("no PEM certificate in it".to_string()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| Error::Tls(format!("cannot read {}: {}", path.display(), pem_reason(e))))
}

fn pem_reason(error: rustls::pki_types::pem::Error) -> String {
    match error {
        rustls::pki_types::pem::Error::Io(e) => crate::error::os_text(&e),
        rustls::pki_types::pem::Error::NoItemsFound => "no PEM item of that kind in it".into(),
        other => format!("{other:?}"),
    }
}

/// A certificate for `names` and the usual local ones, signed by the local CA.
fn made_certificate(
    names: &[String],
    say: impl Fn(std::fmt::Arguments),
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), Error> {
    let dir = ca_dir()?;
    let (ca_cert, ca_key) = local_ca(&dir)?;
    let mut all = vec!["localhost".to_string(), "127.0.0.1".into(), "::1".into()];
    for name in names {
        if !all.contains(name) {
            all.push(name.clone());
        }
    }
    let failed = |e: rcgen::Error| Error::Tls(format!("making A's certificate: {e}"));
    let params = CertificateParams::new(all).map_err(failed)?;
    let key = KeyPair::generate().map_err(failed)?;
    let cert = params.signed_by(&key, &ca_cert, &ca_key).map_err(failed)?;
    let ca_path = dir.join("ca.pem");
    say(format_args!(
        "A is shown a certificate signed by the local CA {}; trust it (curl --cacert {}, or add it to the system's store) to see no warning",
        ca_path.display(),
        ca_path.display()
    ));
    let key =
        PrivateKeyDer::try_from(key.serialize_der()).map_err(|e| Error::Tls(e.to_string()))?;
    Ok((vec![cert.der().clone(), ca_cert.der().clone()], key))
}

/// `$XDG_DATA_HOME/tiburoncin`, or `~/.local/share/tiburoncin`.
fn ca_dir() -> Result<PathBuf, Error> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| Path::new(&home).join(".local/share")))
        .ok_or_else(|| Error::Tls("no place for the local CA: set XDG_DATA_HOME or HOME".into()))?;
    Ok(base.join("tiburoncin"))
}

/// The local CA: read from `dir`, or made and saved there the first time.
fn local_ca(dir: &Path) -> Result<(rcgen::Certificate, KeyPair), Error> {
    let key_path = dir.join("ca-key.pem");
    let cert_path = dir.join("ca.pem");
    let failed = |what: &Path, e: io::Error| {
        Error::Tls(format!(
            "local CA {}: {}",
            what.display(),
            crate::error::os_text(&e)
        ))
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| failed(dir, e))?;
    let key = match fs::read_to_string(&key_path) {
        Ok(pem) => KeyPair::from_pem(&pem)
            .map_err(|e| Error::Tls(format!("local CA {}: {e}", key_path.display())))?,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let key = KeyPair::generate().map_err(|e| Error::Tls(e.to_string()))?;
            write_new(&key_path, key.serialize_pem().as_bytes(), 0o600)
                .map_err(|e| failed(&key_path, e))?;
            key
        }
        Err(e) => return Err(failed(&key_path, e)),
    };
    // The CA certificate is the same each time for the same key: the same name and
    // the same key identify it, so what it signs verifies against the saved copy.
    let mut params = CertificateParams::default();
    params.distinguished_name.push(DnType::CommonName, CA_NAME);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let cert = params
        .self_signed(&key)
        .map_err(|e| Error::Tls(e.to_string()))?;
    if !cert_path.exists() {
        write_new(&cert_path, cert.pem().as_bytes(), 0o644).map_err(|e| failed(&cert_path, e))?;
    }
    Ok((cert, key))
}

fn write_new(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)?;
    file.write_all(bytes)
}

/// `--tls-keylog`: each secret as a line of NSS's key log format (what
/// SSLKEYLOGFILE files hold), written at once, so a run that is killed has logged
/// every session it opened. Readable by its owner only: these keys open the traffic.
#[derive(Debug)]
struct KeyLogFile {
    file: std::sync::Mutex<fs::File>,
}

impl KeyLogFile {
    fn open(path: &Path) -> Result<KeyLogFile, Error> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| {
                Error::Tls(format!(
                    "--tls-keylog {}: {}",
                    path.display(),
                    crate::error::os_text(&e)
                ))
            })?;
        Ok(KeyLogFile {
            file: std::sync::Mutex::new(file),
        })
    }
}

impl rustls::KeyLog for KeyLogFile {
    fn log(&self, label: &str, client_random: &[u8], secret: &[u8]) {
        let hex = |bytes: &[u8]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        let line = format!("{label} {} {}\n", hex(client_random), hex(secret));
        let mut file = self
            .file
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        // A key log that cannot be written costs the key log, not the relay.
        let _ = file.write_all(line.as_bytes());
    }
}

/// `--tls-insecure`: a verifier that accepts any certificate. The signatures of the
/// handshake are still checked, so the connection is still encrypted to whoever
/// answered; only who that is goes unchecked.
mod insecure {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{DigitallySignedStruct, SignatureScheme};

    #[derive(Debug)]
    pub(super) struct AnyCertificate(pub(super) Arc<CryptoProvider>);

    impl ServerCertVerifier for AnyCertificate {
        fn verify_server_cert(
            &self,
            _end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            Ok(ServerCertVerified::assertion())
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls12_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            verify_tls13_signature(
                message,
                cert,
                dss,
                &self.0.signature_verification_algorithms,
            )
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.0.signature_verification_algorithms.supported_schemes()
        }
    }
}
