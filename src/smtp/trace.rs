//! The `Received:` trace header the receiver prepends (RFC 5321 §4.4).
//!
//! It records who delivered the message and how: the peer's claimed name and
//! real address, the protocol (`ESMTPS` when TLS was on, RFC 3848; `UTF8`
//! forms from RFC 6531) and the negotiated TLS version and cipher (as
//! RFC 8314 §4.3 suggests), so the case can show how the report arrived.
//! It is a pure function: the caller supplies the time.

use super::session::Envelope;

/// Builds the header, folded, CRLF-terminated.
pub fn received_header(
    envelope: &Envelope,
    hostname: &str,
    queue_id: &str,
    unix_time: i64,
) -> String {
    let with = match (envelope.smtputf8, envelope.tls.is_some()) {
        (false, false) => "ESMTP",
        (false, true) => "ESMTPS",
        (true, false) => "UTF8SMTP",
        (true, true) => "UTF8SMTPS",
    };
    let tls = match &envelope.tls {
        Some(t) => format!("\r\n\t(using {} with cipher {})", t.version, t.cipher),
        None => "\r\n\t(no TLS)".to_owned(),
    };
    // Only one recipient is named, as RFC 5321 §4.4 advises, to avoid
    // disclosing the others.
    let rcpt = match envelope.rcpt_to.as_slice() {
        [one] => format!("\r\n\tfor <{one}>"),
        _ => String::new(),
    };
    format!(
        "Received: from {helo} ([{ip}])\r\n\tby {hostname} (disclosure-mx) with {with} id {queue_id}{tls}{rcpt};\r\n\t{date}\r\n",
        helo = envelope.helo,
        ip = envelope.peer.ip(),
        date = rfc5322_date(unix_time),
    )
}

/// Formats a Unix time as an RFC 5322 date in UTC, e.g.
/// `Mon, 23 Nov 2026 05:56:38 +0000`.
pub fn rfc5322_date(unix_time: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix_time.div_euclid(86_400);
    let secs = unix_time.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} +0000",
        DAYS[days.rem_euclid(7) as usize],
        d,
        MONTHS[(m - 1) as usize],
        y,
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
/// Howard Hinnant's `civil_from_days`.
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::smtp::session::TlsInfo;

    #[test]
    fn dates() {
        assert_eq!(rfc5322_date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        assert_eq!(rfc5322_date(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
        assert_eq!(
            rfc5322_date(1_795_413_398),
            "Mon, 23 Nov 2026 05:56:38 +0000"
        );
    }

    #[test]
    fn header_names_tls_and_single_recipient() {
        let env = Envelope {
            peer: "192.0.2.7:4444".parse().unwrap(),
            helo: "mail.reporter.example".into(),
            tls: Some(TlsInfo {
                version: "TLSv1.3".into(),
                cipher: "TLS13_AES_256_GCM_SHA384".into(),
            }),
            mail_from: "r@reporter.example".into(),
            rcpt_to: vec!["security@magenta.example".into()],
            smtputf8: false,
        };
        let h = received_header(&env, "mx.test", "Q1", 0);
        assert!(h.starts_with("Received: from mail.reporter.example ([192.0.2.7])\r\n"));
        assert!(h.contains("with ESMTPS id Q1"));
        assert!(h.contains("(using TLSv1.3 with cipher TLS13_AES_256_GCM_SHA384)"));
        assert!(h.contains("for <security@magenta.example>;"));
        assert!(h.ends_with("+0000\r\n"));
    }
}
