//! The subject of a TLS client certificate, from which Kafka's `DefaultKafkaPrincipalBuilder`
//! makes the principal (`User:` and the subject as `ssl.principal.mapping.rules` maps it,
//! `principal_mapping.rs`): in RFC 2253 form, as Java's `X500Principal.getName()` prints it
//! (`CN=alice,O=Gregor`: the last relative name first; the RFC's keywords, other
//! attributes as a dotted OID with the value's DER in hex).

/// A DER element: (tag, contents, what follows).
fn element(buf: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = buf.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let len = rest[..n]
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, &rest[n..])
    };
    if rest.len() < len {
        return None;
    }
    Some((tag, &rest[..len], &rest[len..]))
}

/// The subject Name of a DER certificate (its contents).
fn subject(cert: &[u8]) -> Option<&[u8]> {
    let (_, certificate, _) = element(cert)?;
    let (_, mut tbs, _) = element(certificate)?;
    if tbs.first() == Some(&0xa0) {
        tbs = element(tbs)?.2; // version
    }
    for _ in 0..4 {
        tbs = element(tbs)?.2; // serial, signature algorithm, issuer, validity
    }
    let (tag, name, _) = element(tbs)?;
    (tag == 0x30).then_some(name)
}

fn oid_text(oid: &[u8]) -> Option<String> {
    let (&first, rest) = oid.split_first()?;
    let mut parts = vec![u64::from(first / 40), u64::from(first % 40)];
    let mut value = 0u64;
    for &b in rest {
        value = (value << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            parts.push(value);
            value = 0;
        }
    }
    Some(
        parts
            .iter()
            .map(u64::to_string)
            .collect::<Vec<_>>()
            .join("."),
    )
}

fn keyword(oid: &str) -> Option<&'static str> {
    Some(match oid {
        "2.5.4.3" => "CN",
        "2.5.4.6" => "C",
        "2.5.4.7" => "L",
        "2.5.4.8" => "ST",
        "2.5.4.9" => "STREET",
        "2.5.4.10" => "O",
        "2.5.4.11" => "OU",
        "0.9.2342.19200300.100.1.25" => "DC",
        "0.9.2342.19200300.100.1.1" => "UID",
        _ => return None,
    })
}

/// RFC 2253's escaping of a string value.
fn escape(value: &str) -> String {
    let mut out = String::new();
    let last = value.chars().count().saturating_sub(1);
    for (i, c) in value.chars().enumerate() {
        let special = matches!(c, ',' | '+' | '"' | '\\' | '<' | '>' | ';')
            || (i == 0 && (c == '#' || c == ' '))
            || (i == last && c == ' ');
        if special {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn attribute(tlv: &[u8]) -> Option<String> {
    let (_, seq, _) = element(tlv)?;
    let (tag, oid, value_tlv) = element(seq)?;
    if tag != 0x06 {
        return None;
    }
    let oid = oid_text(oid)?;
    let (value_tag, value, _) = element(value_tlv)?;
    match keyword(&oid) {
        Some(name) => {
            let text = match value_tag {
                // UTF8String, PrintableString, T61String, IA5String, VisibleString
                0x0c | 0x13 | 0x14 | 0x16 | 0x1a => String::from_utf8_lossy(value).into_owned(),
                // BMPString: UTF-16BE
                0x1e => {
                    let units: Vec<u16> = value
                        .chunks_exact(2)
                        .map(|c| u16::from_be_bytes([c[0], c[1]]))
                        .collect();
                    String::from_utf16_lossy(&units)
                }
                _ => return Some(format!("{name}=#{}", hex(value_tlv_bytes(value_tlv)?))),
            };
            Some(format!("{name}={}", escape(&text)))
        }
        None => Some(format!("{oid}=#{}", hex(value_tlv_bytes(value_tlv)?))),
    }
}

/// The bytes of the first element of `buf`, tag and length included.
fn value_tlv_bytes(buf: &[u8]) -> Option<&[u8]> {
    let (_, _, rest) = element(buf)?;
    Some(&buf[..buf.len() - rest.len()])
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes.iter().fold(String::new(), |mut out, b| {
        let _ = write!(out, "{b:02x}");
        out
    })
}

/// The subject of a DER certificate in RFC 2253 form; `None` if it does not parse.
pub fn certificate_subject(cert: &[u8]) -> Option<String> {
    let mut name = subject(cert)?;
    let mut rdns = Vec::new();
    while !name.is_empty() {
        let (tag, set, rest) = element(name)?;
        if tag != 0x31 {
            return None;
        }
        let mut values = Vec::new();
        let mut attrs = set;
        while !attrs.is_empty() {
            let (_, _, after) = element(attrs)?;
            values.push(attribute(&attrs[..attrs.len() - after.len()])?);
            attrs = after;
        }
        rdns.push(values.join("+"));
        name = rest;
    }
    rdns.reverse();
    Some(rdns.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A hand-built certificate skeleton: only what the parser walks.
    fn certificate(subject: &[u8]) -> Vec<u8> {
        fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
            let mut out = vec![tag];
            if content.len() < 0x80 {
                out.push(content.len() as u8);
            } else {
                out.push(0x82);
                out.extend_from_slice(&(content.len() as u16).to_be_bytes());
            }
            out.extend_from_slice(content);
            out
        }
        let mut tbs = tlv(0xa0, &tlv(0x02, &[2]));
        tbs.extend(tlv(0x02, &[1])); // serial
        tbs.extend(tlv(0x30, &[])); // signature algorithm
        tbs.extend(tlv(0x30, &[])); // issuer
        tbs.extend(tlv(0x30, &[])); // validity
        tbs.extend(tlv(0x30, subject));
        tlv(0x30, &tlv(0x30, &tbs))
    }

    fn rdn(oid: &[u8], tag: u8, value: &str) -> Vec<u8> {
        let mut attr = vec![0x06, oid.len() as u8];
        attr.extend_from_slice(oid);
        attr.extend([tag, value.len() as u8]);
        attr.extend_from_slice(value.as_bytes());
        let mut seq = vec![0x30, attr.len() as u8];
        seq.extend(attr);
        let mut set = vec![0x31, seq.len() as u8];
        set.extend(seq);
        set
    }

    #[test]
    fn the_subject_prints_as_java_does() {
        // openssl -subj /CN=alice/O=Gregor, Co: CN first in the certificate.
        let mut subject = rdn(&[0x55, 0x04, 0x03], 0x0c, "alice");
        subject.extend(rdn(&[0x55, 0x04, 0x0a], 0x13, "Gregor, Co"));
        subject.extend(rdn(
            &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01],
            0x16,
            "a@b",
        ));
        assert_eq!(
            certificate_subject(&certificate(&subject)).as_deref(),
            Some("1.2.840.113549.1.9.1=#1603614062,O=Gregor\\, Co,CN=alice")
        );
        assert_eq!(certificate_subject(&[0x30, 0x05, 1]), None);
    }
}

#[cfg(test)]
mod openssl_tests {
    use super::*;

    /// A certificate made by openssl (`-subj /CN=alice/O=Gregor`): Java prints its subject
    /// last relative name first. Skipped without openssl.
    #[test]
    fn an_openssl_certificate_gives_the_java_principal() {
        let dir = tempfile::tempdir().unwrap();
        let made = std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=alice/O=Gregor",
                "-outform",
                "DER",
                "-keyout",
            ])
            .arg(dir.path().join("k.pem"))
            .arg("-out")
            .arg(dir.path().join("c.der"))
            .output();
        match made {
            Ok(out) if out.status.success() => {}
            _ => {
                eprintln!("SKIPPED an_openssl_certificate_gives_the_java_principal: openssl is not installed");
                return;
            }
        }
        let der = std::fs::read(dir.path().join("c.der")).unwrap();
        assert_eq!(
            certificate_subject(&der).as_deref(),
            Some("O=Gregor,CN=alice")
        );
    }
}
