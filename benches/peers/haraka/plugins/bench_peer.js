// Haraka as a `make bench` peer: the two settings its configuration files
// cannot express.

// No reverse DNS: Haraka's core calls dns.reverse for every connection
// unless a lookup_rdns hook answers first.
exports.hook_lookup_rdns = function (next) {
    next(OK, 'unresolved.bench')
}

// STARTTLS required before MAIL, as Postfix's smtpd_tls_security_level =
// encrypt and Exim's `!encrypted` ACL require it.
exports.hook_mail = function (next, connection) {
    if (connection.tls.enabled) return next()
    next(DENY, 'STARTTLS required')
}
