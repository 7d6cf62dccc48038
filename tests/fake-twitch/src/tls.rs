//! Test certificates for the fake's TLS mode: a throwaway CA and a server certificate for
//! `127.0.0.1`, `::1` and `localhost`, generated in memory at start. No I/O happens here.
//!
//! Clients trust the fake by trusting the CA ([`TlsMaterial::ca_cert_pem`]), for example through
//! a file named by `SSL_CERT_FILE`. Keys are P-256: generating and using them is fast, which
//! matters for benchmarks that open a thousand TLS connections.

use native_tls::{Identity, TlsAcceptor};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::ec::{EcGroup, EcKey};
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::x509::extension::{
    AuthorityKeyIdentifier, BasicConstraints, ExtendedKeyUsage, KeyUsage, SubjectAlternativeName,
    SubjectKeyIdentifier,
};
use openssl::x509::{X509Name, X509NameBuilder, X509};

/// How long the generated certificates are valid; a fake lives for one test or benchmark.
const VALID_DAYS: u32 = 30;
/// The certificates start being valid this long before now, so that a client whose clock is a
/// little behind still accepts them.
const BACKDATE_SECONDS: i64 = 3600;

/// The CA a client must trust and the server side of TLS built on the certificate it signed.
#[derive(Clone)]
pub(crate) struct TlsMaterial {
    /// The CA certificate, PEM-encoded.
    pub(crate) ca_cert_pem: String,
    /// Accepts TLS connections with the server certificate and its chain.
    pub(crate) acceptor: TlsAcceptor,
}

impl TlsMaterial {
    /// Generates a new CA and server certificate. Panics when OpenSSL cannot, which only
    /// happens on a broken installation.
    pub(crate) fn generate() -> TlsMaterial {
        let (ca_cert, server_cert, server_key) =
            generate_certificates().expect("generate fake twitch test certificates");
        let ca_cert_pem = pem_text(ca_cert.to_pem());
        let chain_pem = pem_text(server_cert.to_pem()) + &ca_cert_pem;
        let key_pem = pem_text(server_key.private_key_to_pem_pkcs8());
        let identity = Identity::from_pkcs8(chain_pem.as_bytes(), key_pem.as_bytes())
            .expect("load fake twitch server identity");
        let acceptor = TlsAcceptor::new(identity).expect("build fake twitch tls acceptor");
        TlsMaterial {
            ca_cert_pem,
            acceptor,
        }
    }
}

fn pem_text(pem: Result<Vec<u8>, ErrorStack>) -> String {
    let bytes = pem.expect("encode pem");
    String::from_utf8(bytes).expect("pem is ascii")
}

fn new_key() -> Result<PKey<Private>, ErrorStack> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    PKey::from_ec_key(EcKey::generate(&group)?)
}

fn name(common_name: &str) -> Result<X509Name, ErrorStack> {
    let mut builder = X509NameBuilder::new()?;
    builder.append_entry_by_nid(Nid::ORGANIZATIONNAME, "fake-twitch")?;
    builder.append_entry_by_nid(Nid::COMMONNAME, common_name)?;
    Ok(builder.build())
}

/// The common parts of both certificates: version 3, a random serial, the validity window.
fn certificate_builder(
    subject: &X509Name,
    key: &PKey<Private>,
) -> Result<openssl::x509::X509Builder, ErrorStack> {
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let mut serial = BigNum::new()?;
    serial.rand(127, MsbOption::MAYBE_ZERO, false)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(subject)?;
    builder.set_pubkey(key)?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64);
    let not_before = Asn1Time::from_unix((now - BACKDATE_SECONDS) as _)?;
    let not_after = Asn1Time::days_from_now(VALID_DAYS)?;
    builder.set_not_before(&not_before)?;
    builder.set_not_after(&not_after)?;
    Ok(builder)
}

/// A CA certificate and a server certificate signed by it, with the server's key.
fn generate_certificates() -> Result<(X509, X509, PKey<Private>), ErrorStack> {
    let ca_key = new_key()?;
    let ca_name = name("fake-twitch test CA")?;
    let mut ca = certificate_builder(&ca_name, &ca_key)?;
    ca.set_issuer_name(&ca_name)?;
    ca.append_extension(BasicConstraints::new().critical().ca().build()?)?;
    ca.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()?,
    )?;
    let ca_key_identifier = SubjectKeyIdentifier::new().build(&ca.x509v3_context(None, None))?;
    ca.append_extension(ca_key_identifier)?;
    ca.sign(&ca_key, MessageDigest::sha256())?;
    let ca_cert = ca.build();

    let server_key = new_key()?;
    let mut server = certificate_builder(&name("127.0.0.1")?, &server_key)?;
    server.set_issuer_name(ca_cert.subject_name())?;
    server.append_extension(BasicConstraints::new().critical().build()?)?;
    server.append_extension(
        KeyUsage::new()
            .critical()
            .digital_signature()
            .key_agreement()
            .build()?,
    )?;
    server.append_extension(ExtendedKeyUsage::new().server_auth().build()?)?;
    let alternative_names = SubjectAlternativeName::new()
        .ip("127.0.0.1")
        .ip("::1")
        .dns("localhost")
        .build(&server.x509v3_context(Some(&ca_cert), None))?;
    server.append_extension(alternative_names)?;
    let server_key_identifier =
        SubjectKeyIdentifier::new().build(&server.x509v3_context(Some(&ca_cert), None))?;
    server.append_extension(server_key_identifier)?;
    let authority_key_identifier = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&server.x509v3_context(Some(&ca_cert), None))?;
    server.append_extension(authority_key_identifier)?;
    server.sign(&ca_key, MessageDigest::sha256())?;
    Ok((ca_cert, server.build(), server_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_server_certificate_is_signed_by_the_ca_and_names_loopback() {
        let (ca_cert, server_cert, server_key) = generate_certificates().unwrap();
        let ca_key = ca_cert.public_key().unwrap();
        assert!(server_cert.verify(&ca_key).unwrap());
        assert!(ca_cert.verify(&ca_key).unwrap(), "the CA is self-signed");
        assert!(server_cert.public_key().unwrap().public_eq(
            &PKey::public_key_from_pem(&server_key.public_key_to_pem().unwrap()).unwrap()
        ));
        let names = server_cert.subject_alt_names().unwrap();
        let ips: Vec<Vec<u8>> = names
            .iter()
            .filter_map(|name| name.ipaddress().map(<[u8]>::to_vec))
            .collect();
        assert!(ips.contains(&vec![127, 0, 0, 1]), "{ips:?}");
        let dns: Vec<&str> = names.iter().filter_map(|name| name.dnsname()).collect();
        assert_eq!(dns, ["localhost"]);
    }

    #[test]
    fn every_generation_makes_a_new_ca() {
        let first = TlsMaterial::generate();
        let second = TlsMaterial::generate();
        assert!(first.ca_cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(first.ca_cert_pem, second.ca_cert_pem);
    }
}
