//! The authentication layer on top of syslog: the messages sshd, PAM, sudo, su, login
//! and klogind write when someone logs in, fails to, or uses a privilege, turned into
//! `EventKind::Auth` events with the fields brute-force, user-enumeration and
//! privilege-use detection need: `client_ip` (the remote address), `user`, and in
//! `extra` an `outcome` from the vocabulary below, `auth_method`, `port` (the client's
//! source port) and, when the remote side is logged by name, `rhost` (names are never
//! resolved: `client_ip` stays empty).
//!
//! Messages from these programs that carry no authentication fact (`Server listening
//! on …`, `Starting session: …`) stay `EventKind::Syslog`, and so do `CRON` and
//! `systemd` sessions. ftpd's `connection from IP (host)` stays `Syslog` but gets its
//! `client_ip`; its `ANONYMOUS FTP LOGIN FROM IP` is a `success` for `anonymous`.
//!
//! # Outcomes
//!
//! | outcome | meaning | examples |
//! | --- | --- | --- |
//! | `failure` | an authentication attempt failed | `Failed password for …`, `pam_unix(sshd:auth): authentication failure; …`, sudo `3 incorrect password attempts`, `FAILED su for …` |
//! | `success` | a user authenticated | `Accepted password\|publickey for …`, `Successful su for …` |
//! | `invalid_user` | a login named a user that does not exist | `Invalid user X from IP`, `input_userauth_request: invalid user X`, `check pass; user unknown` |
//! | `too_many_failures` | the server gave up on a client after repeated failures | `maximum authentication attempts exceeded …`, `Disconnecting: Too many authentication failures`, `PAM N more authentication failures; …` (`count` = N) |
//! | `break_in_attempt` | sshd's reverse-DNS check did not match the address | `reverse mapping checking getaddrinfo … POSSIBLE BREAK-IN ATTEMPT!`, `Address IP maps to H, but this does not map back …` |
//! | `disconnect` | a connection ended | `Received disconnect from …`, `Disconnected from …`, `Connection closed by …`, `Connection reset by …` |
//! | `connect` | a connection started | `Connection from IP port N on IP port N` |
//! | `protocol_error` | a client that is not a well-behaved SSH client (scanners) | `Did not receive identification string from …`, `Bad protocol version identification …`, `Unable to negotiate with …` |
//! | `denied` | refused by policy, not by a credential | `User X from IP not allowed because …`, sudo `user NOT in sudoers`, `ROOT LOGIN REFUSED FROM …` |
//! | `command` | sudo ran a command (`target_user`, `command`, `tty`, `pwd`) | `ubuntu : TTY=pts/0 ; PWD=/ ; USER=root ; COMMAND=/bin/ls` |
//! | `session_opened` / `session_closed` | PAM opened or closed a login session | `pam_unix(sshd:session): session opened for user X by (uid=0)` |
//!
//! One attempt is often logged several times: sshd writes `Invalid user X from IP`,
//! then `input_userauth_request: invalid user X` and PAM's `check pass; user unknown`;
//! a failed password is `Failed password …` from sshd and `authentication failure; …`
//! from PAM. PAM lines carry `pam_service` (and `pam_module` when logged), so a detector
//! can count sshd's own lines where they exist and PAM's elsewhere (the Linux
//! `sshd(pam_unix)` logs have only PAM's). A `failure` for a user that does not exist
//! also has `invalid_user` = `true`; `message repeated N times: [ … ]` is read as the
//! inner message with `repeated` = N.

use std::net::IpAddr;

use memchr::memmem;
use palisade_core::{Event, EventKind};

use crate::text::{ip, lossy};

/// An authentication attempt failed.
pub const FAILURE: &str = "failure";
/// A user authenticated.
pub const SUCCESS: &str = "success";
/// A login named a user that does not exist.
pub const INVALID_USER: &str = "invalid_user";
/// The server gave up on a client after repeated failures.
pub const TOO_MANY_FAILURES: &str = "too_many_failures";
/// The client's address and its reverse DNS name do not match.
pub const BREAK_IN_ATTEMPT: &str = "break_in_attempt";
/// A connection ended.
pub const DISCONNECT: &str = "disconnect";
/// A connection started.
pub const CONNECT: &str = "connect";
/// The client did not speak SSH properly (typically a scanner).
pub const PROTOCOL_ERROR: &str = "protocol_error";
/// Refused by policy rather than by a credential.
pub const DENIED: &str = "denied";
/// sudo ran a command.
pub const COMMAND: &str = "command";
/// PAM opened a session.
pub const SESSION_OPENED: &str = "session_opened";
/// PAM closed a session.
pub const SESSION_CLOSED: &str = "session_closed";

/// What the layer found in one message; applied to the event only when `outcome` is
/// set, so that an unrecognised message leaves the event untouched.
#[derive(Default)]
struct Fact<'a> {
    outcome: Option<&'static str>,
    user: Option<&'a [u8]>,
    /// The remote side: an address or a host name.
    remote: Option<&'a [u8]>,
    port: Option<&'a [u8]>,
    method: Option<&'a [u8]>,
    extra: Vec<(&'static str, &'a [u8])>,
}

impl<'a> Fact<'a> {
    fn new(outcome: &'static str) -> Self {
        Fact {
            outcome: Some(outcome),
            ..Fact::default()
        }
    }

    fn with(mut self, key: &'static str, value: &'a [u8]) -> Self {
        self.extra.push((key, value));
        self
    }

    fn user(mut self, user: &'a [u8]) -> Self {
        self.user = Some(user);
        self
    }

    fn addr(mut self, a: Addr<'a>) -> Self {
        self.remote = Some(a.host);
        self.port = a.port;
        self
    }
}

/// Recognises the authentication message of `program` (the syslog tag without its pid)
/// and fills `ev` in. Does nothing for programs or messages it does not know.
pub(crate) fn annotate(program: &[u8], message: &[u8], ev: &mut Event) {
    // `sshd(pam_unix)` is PAM speaking for sshd (old Red Hat syslog tags).
    let (base, pam_tag) = match memchr::memchr(b'(', program) {
        Some(i) => (program.get(..i).unwrap_or_default(), true),
        None => (program, false),
    };
    let mut msg = message;
    let mut repeated = None;
    if let Some(rest) = msg.strip_prefix(b"message repeated ")
        && let Some(sp) = memchr::memchr(b' ', rest)
        && let Some(inner) = rest
            .get(sp..)
            .and_then(|r| r.strip_prefix(b" times: [ "))
            .and_then(|r| r.strip_suffix(b"]"))
    {
        repeated = rest.get(..sp);
        msg = trim(inner);
    }

    let fact = match base {
        b"sshd" | b"sshd-session" | b"sshd-auth" => {
            if pam_tag {
                pam(base, None, msg)
            } else {
                pam_prefixed(msg).or_else(|| sshd(msg))
            }
        }
        b"sudo" => {
            if pam_tag {
                pam(base, None, msg)
            } else {
                pam_prefixed(msg).or_else(|| sudo(msg))
            }
        }
        b"su" => {
            if pam_tag {
                pam(base, None, msg)
            } else {
                pam_prefixed(msg).or_else(|| su(msg))
            }
        }
        b"login" => {
            if pam_tag {
                pam(base, None, msg)
            } else {
                pam_prefixed(msg).or_else(|| login(msg))
            }
        }
        b"gdm"
        | b"gdm-password"
        | b"kdm"
        | b"lightdm"
        | b"xscreensaver"
        | b"passwd"
        | b"polkit-agent-helper-1"
        | b"vsftpd"
        | b"dovecot" => {
            if pam_tag {
                pam(base, None, msg)
            } else {
                pam_prefixed(msg)
            }
        }
        b"klogind" => klogind(msg),
        b"ftpd" | b"in.ftpd" => ftpd(msg, ev),
        _ => None,
    };
    let Some(fact) = fact else { return };
    let Some(outcome) = fact.outcome else { return };
    ev.kind = EventKind::Auth;
    push(ev, "outcome", outcome.as_bytes());
    if let Some(user) = fact.user.map(trim).filter(|u| !u.is_empty()) {
        ev.user = Some(lossy(user));
    }
    if let Some(method) = fact.method {
        // `keyboard-interactive/pam` is keyboard-interactive done by PAM.
        let method = match memchr::memchr(b'/', method) {
            Some(i) => method.get(..i).unwrap_or_default(),
            None => method,
        };
        push(ev, "auth_method", method);
    }
    if let Some(remote) = fact.remote.filter(|r| !r.is_empty()) {
        set_remote(ev, remote);
    }
    if let Some(port) = fact.port {
        push(ev, "port", port);
    }
    for (k, v) in fact.extra {
        push(ev, k, v);
    }
    if let Some(n) = repeated {
        push(ev, "repeated", n);
    }
}

fn push(ev: &mut Event, key: &str, value: &[u8]) {
    ev.extra.push((key.to_owned(), lossy(value)));
}

/// An address becomes `client_ip`; a host name goes to `rhost` (never resolved).
fn set_remote(ev: &mut Event, remote: &[u8]) {
    match ip(remote) {
        Some(addr) => ev.client_ip = Some(addr),
        None => push(ev, "rhost", remote),
    }
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' '] = s {
        s = rest;
    }
    s
}

/// The remote part of a message: `HOST`, `HOST port N`, with what follows it.
struct Addr<'a> {
    host: &'a [u8],
    port: Option<&'a [u8]>,
}

/// Reads `HOST[ port N]` at the start of `s`, returning it and the rest.
fn addr(s: &[u8]) -> (Addr<'_>, &[u8]) {
    let end = memchr::memchr(b' ', s).unwrap_or(s.len());
    let host = s.get(..end).unwrap_or_default();
    let mut rest = s.get(end..).unwrap_or_default();
    let mut port = None;
    if let Some(r) = rest.strip_prefix(b" port ") {
        let n = r.iter().take_while(|b| b.is_ascii_digit()).count();
        if n > 0 {
            port = r.get(..n);
            rest = r.get(n..).unwrap_or_default();
        }
    }
    (Addr { host, port }, rest)
}

/// Splits at the last occurrence of `needle`.
fn rsplit<'a>(s: &'a [u8], needle: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let i = memmem::rfind(s, needle)?;
    Some((s.get(..i)?, s.get(i + needle.len()..)?))
}

/// Splits at the first occurrence of `needle`.
fn split<'a>(s: &'a [u8], needle: &[u8]) -> Option<(&'a [u8], &'a [u8])> {
    let i = memmem::find(s, needle)?;
    Some((s.get(..i)?, s.get(i + needle.len()..)?))
}

/// `invalid user X` / `illegal user X` (OpenSSH before 3.9): the name and whether the
/// prefix was there.
fn strip_invalid(user: &[u8]) -> (&[u8], bool) {
    for prefix in [&b"invalid user "[..], b"illegal user ", b"invalid user"] {
        if let Some(u) = user.strip_prefix(prefix) {
            return (u, true);
        }
    }
    (user, false)
}

/// `[authenticating |invalid ]user X HOST port N` or `HOST port N`, as sshd writes the
/// peer in `Disconnected from`, `Connection closed by` and `Connection reset by`. The
/// address is the last word before ` port` (user names may contain spaces).
fn peer_with_user(s: &[u8]) -> Fact<'_> {
    let (head, port) = match rsplit(s, b" port ") {
        Some((head, p)) if !p.is_empty() && p.iter().all(u8::is_ascii_digit) => (head, Some(p)),
        _ => (s, None),
    };
    let (user_part, host) = match memchr::memrchr(b' ', head) {
        Some(i) => (head.get(..i), head.get(i + 1..).unwrap_or_default()),
        None => (None, head),
    };
    let mut fact = Fact::new(DISCONNECT);
    fact.remote = Some(host);
    fact.port = port;
    if let Some(u) = user_part {
        let u = u
            .strip_prefix(b"authenticating ")
            .or_else(|| u.strip_prefix(b"invalid "))
            .unwrap_or(u);
        if let Some(name) = u.strip_prefix(b"user ") {
            fact.user = Some(name);
        }
        if user_part.is_some_and(|u| u.starts_with(b"invalid ")) {
            fact.extra.push(("invalid_user", b"true"));
        }
    }
    fact
}

/// The messages of sshd itself.
fn sshd(msg: &[u8]) -> Option<Fact<'_>> {
    let (msg, _preauth) = match msg.strip_suffix(b" [preauth]") {
        Some(m) => (m, true),
        None => (msg, false),
    };
    let msg = msg
        .strip_prefix(b"error: ")
        .or_else(|| msg.strip_prefix(b"fatal: "))
        .unwrap_or(msg);

    if let Some(rest) = msg.strip_prefix(b"Failed ") {
        return attempt(rest, FAILURE);
    }
    if let Some(rest) = msg.strip_prefix(b"Accepted ") {
        return attempt(rest, SUCCESS);
    }
    if let Some(rest) = msg
        .strip_prefix(b"Invalid user ")
        .or_else(|| msg.strip_prefix(b"Illegal user "))
    {
        // `Invalid user X from IP[ port N]`; the name may be empty or contain spaces.
        let (user, remote) = rsplit(rest, b" from ")
            .or_else(|| rest.strip_prefix(b"from ").map(|r| (&b""[..], r)))?;
        let (a, _) = addr(remote);
        return Some(Fact::new(INVALID_USER).user(user).addr(a));
    }
    if let Some(rest) = msg.strip_prefix(b"input_userauth_request: ") {
        let (user, invalid) = strip_invalid(rest);
        return invalid.then(|| Fact::new(INVALID_USER).user(user));
    }
    if let Some(rest) = msg.strip_prefix(b"Received disconnect from ") {
        return Some(received_disconnect(rest));
    }
    for prefix in [
        &b"Disconnected from "[..],
        b"Connection closed by ",
        b"Connection reset by ",
    ] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            return Some(peer_with_user(rest));
        }
    }
    if let Some(rest) = msg.strip_prefix(b"Disconnecting") {
        memmem::find(rest, b"Too many authentication failures")?;
        // `Disconnecting: Too many authentication failures[ for X]` (old) or
        // `Disconnecting invalid user X IP port N: Too many …` (OpenSSH 7.5+).
        if let Some(r) = rest.strip_prefix(b": Too many authentication failures") {
            let mut fact = Fact::new(TOO_MANY_FAILURES);
            if let Some(user) = r.strip_prefix(b" for ") {
                let (user, invalid) = strip_invalid(user);
                fact.user = Some(user);
                if invalid {
                    fact.extra.push(("invalid_user", b"true"));
                }
            }
            return Some(fact);
        }
        let peer = rest.strip_prefix(b" ")?;
        let (peer, _) = split(peer, b": ")?;
        let mut fact = peer_with_user(peer);
        fact.outcome = Some(TOO_MANY_FAILURES);
        return Some(fact);
    }
    if let Some(rest) = msg.strip_prefix(b"maximum authentication attempts exceeded for ") {
        let (user, remote) = rsplit(rest, b" from ")?;
        let (user, invalid) = strip_invalid(user);
        let (a, _) = addr(remote);
        let mut fact = Fact::new(TOO_MANY_FAILURES).user(user).addr(a);
        if invalid {
            fact.extra.push(("invalid_user", b"true"));
        }
        return Some(fact);
    }
    if let Some(rest) = msg.strip_prefix(b"reverse mapping checking getaddrinfo for ") {
        // `H [IP] failed - POSSIBLE BREAK-IN ATTEMPT!`
        let (name, rest) = split(rest, b" [")?;
        let (addr, _) = split(rest, b"]")?;
        let mut fact = Fact::new(BREAK_IN_ATTEMPT).with("rhost", name);
        fact.remote = Some(addr);
        return Some(fact);
    }
    if let Some(rest) = msg.strip_prefix(b"Address ")
        && memmem::find(rest, b"POSSIBLE BREAK-IN ATTEMPT").is_some()
    {
        // `IP maps to H, but this does not map back to the address - …`
        let (addr, rest) = split(rest, b" maps to ")?;
        let (name, _) = split(rest, b", ")?;
        let mut fact = Fact::new(BREAK_IN_ATTEMPT).with("rhost", name);
        fact.remote = Some(addr);
        return Some(fact);
    }
    if let Some(rest) = msg.strip_prefix(b"PAM ")
        && let Some((n, rest)) = split(rest, b" more authentication failure")
        && !n.is_empty()
        && n.iter().all(u8::is_ascii_digit)
    {
        let mut fact = Fact::new(TOO_MANY_FAILURES).with("count", n);
        if let Some((_, kv)) = split(rest, b"; ") {
            pam_fields(kv, &mut fact);
        }
        return Some(fact);
    }
    if let Some(rest) = msg.strip_prefix(b"PAM: Authentication failure for ") {
        let (user, remote) = rsplit(rest, b" from ")?;
        let (user, invalid) = strip_invalid(user);
        let (a, _) = addr(remote);
        let mut fact = Fact::new(FAILURE).user(user).addr(a);
        if invalid {
            fact.extra.push(("invalid_user", b"true"));
        }
        return Some(fact);
    }
    if let Some(rest) = msg.strip_prefix(b"Connection from ") {
        // `IP port N on IP port N[ rdomain "…"]`
        let (a, rest) = addr(rest);
        let mut fact = Fact::new(CONNECT).addr(a);
        if let Some(local) = rest.strip_prefix(b" on ") {
            let (local, _) = addr(local);
            fact.extra.push(("local_ip", local.host));
            if let Some(p) = local.port {
                fact.extra.push(("local_port", p));
            }
        }
        return Some(fact);
    }
    if let Some(rest) = msg.strip_prefix(b"Did not receive identification string from ") {
        let (a, _) = addr(rest);
        return Some(Fact::new(PROTOCOL_ERROR).addr(a));
    }
    if msg.starts_with(b"Bad protocol version identification ")
        || msg.starts_with(b"Protocol major versions differ")
    {
        let (_, remote) = rsplit(msg, b" from ")?;
        let (a, _) = addr(remote);
        return Some(Fact::new(PROTOCOL_ERROR).addr(a));
    }
    if let Some(rest) = msg.strip_prefix(b"Unable to negotiate with ") {
        let (a, _) = addr(rest);
        return Some(Fact::new(PROTOCOL_ERROR).addr(a));
    }
    if let Some(rest) = msg.strip_prefix(b"User ")
        && let Some((who, _)) = split(rest, b" not allowed because ")
    {
        let (user, remote) = rsplit(who, b" from ")?;
        let (a, _) = addr(remote);
        return Some(Fact::new(DENIED).user(user).addr(a));
    }
    if let Some(rest) = msg.strip_prefix(b"ROOT LOGIN REFUSED FROM ") {
        let (a, _) = addr(rest);
        return Some(Fact::new(DENIED).user(b"root").addr(a));
    }
    None
}

/// `METHOD for [invalid user ]USER from HOST port N ssh2[: KEY]` after `Failed ` or
/// `Accepted `.
fn attempt<'a>(rest: &'a [u8], outcome: &'static str) -> Option<Fact<'a>> {
    let (method, rest) = split(rest, b" for ")?;
    if method.is_empty() || method.contains(&b' ') {
        return None;
    }
    let (user, remote) = rsplit(rest, b" from ")?;
    let (user, invalid) = strip_invalid(user);
    let (a, tail) = addr(remote);
    let mut fact = Fact::new(outcome).user(user).addr(a);
    fact.method = Some(method);
    if invalid {
        fact.extra.push(("invalid_user", b"true"));
    }
    // ` ssh2: RSA SHA256:…` names the key used.
    if let Some((_, key)) = split(tail, b": ")
        && !key.is_empty()
    {
        fact.extra.push(("key", key));
    }
    Some(fact)
}

/// `HOST port N:CODE: TEXT` (OpenSSH 7.3+) or `HOST: CODE: TEXT` (older; an IPv6
/// host then ends in the `:`).
fn received_disconnect(rest: &[u8]) -> Fact<'_> {
    let mut fact = Fact::new(DISCONNECT);
    let end = memchr::memchr(b' ', rest).unwrap_or(rest.len());
    let host = rest.get(..end).unwrap_or_default();
    let mut after = rest.get(end..).unwrap_or_default();
    if let Some(h) = host.strip_suffix(b":") {
        fact.remote = Some(h);
    } else {
        fact.remote = Some(host);
        if let Some(r) = after.strip_prefix(b" port ") {
            let n = r.iter().take_while(|b| b.is_ascii_digit()).count();
            fact.port = r.get(..n).filter(|p| !p.is_empty());
            after = r.get(n..).unwrap_or_default();
        }
        after = after.strip_prefix(b":").unwrap_or(after);
    }
    let after = trim(after);
    let code_len = after.iter().take_while(|b| b.is_ascii_digit()).count();
    if code_len > 0 && after.get(code_len) == Some(&b':') {
        fact.extra
            .push(("code", after.get(..code_len).unwrap_or_default()));
    }
    fact
}

/// A message that starts with `pam_MODULE(SERVICE:TYPE): `.
fn pam_prefixed(msg: &[u8]) -> Option<Fact<'_>> {
    let rest = msg.strip_prefix(b"pam_")?;
    let open = memchr::memchr(b'(', rest)?;
    let module = msg.get(..open + 4)?;
    let (inside, body) = split(rest.get(open + 1..)?, b"): ")?;
    let service = match memchr::memchr(b':', inside) {
        Some(i) => inside.get(..i).unwrap_or_default(),
        None => inside,
    };
    // Cron and systemd's user manager open a session for every job: not a login.
    if matches!(service, b"cron" | b"systemd-user" | b"crond") {
        return None;
    }
    pam(service, Some(module), body)
}

/// What PAM says after its prefix, for `service`.
fn pam<'a>(service: &'a [u8], module: Option<&'a [u8]>, body: &'a [u8]) -> Option<Fact<'a>> {
    let mut fact = if let Some(kv) = body.strip_prefix(b"authentication failure; ") {
        let mut f = Fact::new(FAILURE);
        pam_fields(kv, &mut f);
        f
    } else if body == b"authentication failure;" {
        Fact::new(FAILURE)
    } else if body.starts_with(b"check pass; user unknown") {
        Fact::new(INVALID_USER)
    } else if let Some(rest) = body.strip_prefix(b"session opened for user ") {
        // `X by Y(uid=N)` or `X(uid=N) by (uid=0)` (PAM 1.5).
        let (user, by) = split(rest, b" by ").unwrap_or((rest, b""));
        let mut f = Fact::new(SESSION_OPENED).user(strip_uid(user));
        let by = strip_uid(by);
        if !by.is_empty() {
            f.extra.push(("by", by));
        }
        f
    } else if let Some(rest) = body.strip_prefix(b"session closed for user ") {
        Fact::new(SESSION_CLOSED).user(strip_uid(rest))
    } else {
        return None;
    };
    fact.extra.push(("pam_service", service));
    if let Some(m) = module {
        fact.extra.push(("pam_module", m));
    }
    Some(fact)
}

/// `root(uid=0)` → `root`.
fn strip_uid(s: &[u8]) -> &[u8] {
    let s = trim(s);
    match memchr::memchr(b'(', s) {
        Some(i) => s.get(..i).unwrap_or_default(),
        None => s,
    }
}

/// PAM's `logname= uid=0 euid=0 tty=ssh ruser= rhost=H  user=X`.
fn pam_fields<'a>(kv: &'a [u8], fact: &mut Fact<'a>) {
    for pair in kv.split(|&b| b == b' ').filter(|p| !p.is_empty()) {
        let Some(eq) = memchr::memchr(b'=', pair) else {
            continue;
        };
        let (k, v) = (
            pair.get(..eq).unwrap_or_default(),
            pair.get(eq + 1..).unwrap_or_default(),
        );
        if v.is_empty() {
            continue;
        }
        match k {
            b"user" => fact.user = Some(v),
            b"rhost" => fact.remote = Some(v),
            b"tty" => fact.extra.push(("tty", v)),
            b"ruser" => fact.extra.push(("ruser", v)),
            _ => {}
        }
    }
}

/// sudo's `USER : [STATUS ; ]TTY=… ; PWD=… ; USER=… ; COMMAND=…`.
fn sudo(msg: &[u8]) -> Option<Fact<'_>> {
    let (user, rest) = split(msg, b" : ")?;
    let user = trim(user);
    if user.is_empty() || user.contains(&b' ') {
        return None;
    }
    let mut fact = Fact::new(COMMAND).user(user);
    let mut rest = rest;
    let mut first = true;
    while !rest.is_empty() {
        // COMMAND is last and may itself contain ` ; `.
        if let Some(cmd) = rest.strip_prefix(b"COMMAND=") {
            fact.extra.push(("command", cmd));
            break;
        }
        let (field, next) = split(rest, b" ; ").unwrap_or((rest, b""));
        rest = next;
        let eq = memchr::memchr(b'=', field).filter(|&i| {
            field
                .get(..i)
                .is_some_and(|k| k.iter().all(u8::is_ascii_uppercase))
        });
        match eq {
            Some(i) => {
                let (k, v) = (
                    field.get(..i).unwrap_or_default(),
                    field.get(i + 1..).unwrap_or_default(),
                );
                match k {
                    b"TTY" => fact.extra.push(("tty", v)),
                    b"PWD" => fact.extra.push(("pwd", v)),
                    b"USER" => fact.extra.push(("target_user", v)),
                    _ => {}
                }
            }
            None if first => {
                // A status before the fields.
                fact.extra.push(("status", field));
                if let Some((n, _)) = split(field, b" incorrect password attempt") {
                    fact.outcome = Some(FAILURE);
                    fact.extra.push(("count", n));
                } else if field.starts_with(b"a password is required")
                    || field.starts_with(b"authentication failure")
                {
                    fact.outcome = Some(FAILURE);
                } else if memmem::find(field, b"NOT in sudoers").is_some()
                    || memmem::find(field, b"not allowed").is_some()
                    || memmem::find(field, b"NOT allowed").is_some()
                    || memmem::find(field, b"NOT authorized").is_some()
                {
                    fact.outcome = Some(DENIED);
                } else {
                    return None;
                }
            }
            None => {}
        }
        first = false;
    }
    Some(fact)
}

/// su's own lines (PAM's are handled by [`pam_prefixed`]).
fn su(msg: &[u8]) -> Option<Fact<'_>> {
    for (prefix, outcome) in [
        (&b"Successful su for "[..], SUCCESS),
        (b"FAILED su for ", FAILURE),
    ] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            let (user, by) = split(rest, b" by ")?;
            return Some(Fact::new(outcome).user(user).with("by", by));
        }
    }
    // util-linux: `(to root) alice on pts/0`, `FAILED SU (to root) alice on pts/0`.
    let (outcome, rest) = match msg.strip_prefix(b"FAILED SU ") {
        Some(r) => (FAILURE, r),
        None => (SUCCESS, msg),
    };
    if let Some(rest) = rest.strip_prefix(b"(to ") {
        let (user, rest) = split(rest, b") ")?;
        let (by, tty) = split(rest, b" on ").unwrap_or((rest, b""));
        let mut fact = Fact::new(outcome).user(user).with("by", by);
        if !tty.is_empty() {
            fact.extra.push(("tty", tty));
        }
        return Some(fact);
    }
    // Old shadow-utils: `+ /dev/pts/0 alice:root` (success), `- …` (failure).
    let (outcome, rest) = match msg {
        [b'+', b' ', rest @ ..] => (SUCCESS, rest),
        [b'-', b' ', rest @ ..] => (FAILURE, rest),
        _ => return None,
    };
    let (tty, pair) = split(rest, b" ")?;
    let (by, user) = split(pair, b":")?;
    Some(
        Fact::new(outcome)
            .user(user)
            .with("by", by)
            .with("tty", tty),
    )
}

/// login's own lines.
fn login(msg: &[u8]) -> Option<Fact<'_>> {
    if let Some(rest) = msg.strip_prefix(b"FAILED LOGIN ") {
        // `1 FROM tty1 FOR root, Authentication failure` or
        // `(1) on '/dev/tty1' FOR 'root', Authentication failure`.
        let (_, user) = split(rest, b" FOR ")?;
        let user = split(user, b", ").map_or(user, |(u, _)| u);
        let user = user
            .strip_prefix(b"'")
            .and_then(|u| u.strip_suffix(b"'"))
            .unwrap_or(user);
        return Some(Fact::new(FAILURE).user(user));
    }
    if msg.starts_with(b"ROOT LOGIN ") {
        return Some(Fact::new(SUCCESS).user(b"root"));
    }
    if let Some(rest) = msg.strip_prefix(b"LOGIN ON ") {
        let (_, user) = split(rest, b" BY ")?;
        return Some(Fact::new(SUCCESS).user(user));
    }
    None
}

/// klogind's `Authentication failed from IP (H): reason`.
fn klogind(msg: &[u8]) -> Option<Fact<'_>> {
    let rest = msg.strip_prefix(b"Authentication failed from ")?;
    let (a, _) = addr(rest);
    Some(Fact::new(FAILURE).addr(a))
}

/// wu-ftpd's `ANONYMOUS FTP LOGIN FROM IP,  (anonymous)`, a successful login, and its
/// `connection from IP (H) at …`: not an authentication event, but the address is
/// worth a field.
fn ftpd<'a>(msg: &'a [u8], ev: &mut Event) -> Option<Fact<'a>> {
    if let Some(rest) = msg.strip_prefix(b"ANONYMOUS FTP LOGIN FROM ") {
        let (host, _) = split(rest, b",").unwrap_or((rest, b""));
        let mut fact = Fact::new(SUCCESS).user(b"anonymous");
        fact.remote = Some(host);
        fact.method = Some(b"anonymous");
        return Some(fact);
    }
    let rest = msg.strip_prefix(b"connection from ")?;
    let (a, rest) = addr(rest);
    let addr: Option<IpAddr> = ip(a.host);
    if let Some(addr) = addr {
        ev.client_ip = Some(addr);
        if let Some(name) = rest
            .strip_prefix(b" (")
            .and_then(|r| split(r, b")"))
            .map(|(n, _)| n)
            .filter(|n| !n.is_empty())
        {
            push(ev, "rhost", name);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::LineParser;
    use crate::syslog::{SyslogOptions, SyslogParser};

    fn parse(prog_msg: &str) -> Event {
        let line = format!("Dec 10 06:55:46 host {prog_msg}");
        SyslogParser::new(SyslogOptions { year: Some(2020) })
            .parse(line.as_bytes())
            .unwrap()
    }

    fn extra<'a>(ev: &'a Event, key: &str) -> Option<&'a str> {
        ev.extra
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// (kind, outcome, user, client_ip, port)
    fn facts(
        ev: &Event,
    ) -> (
        EventKind,
        Option<&str>,
        Option<&str>,
        Option<String>,
        Option<&str>,
    ) {
        (
            ev.kind,
            extra(ev, "outcome"),
            ev.user.as_deref(),
            ev.client_ip.map(|i| i.to_string()),
            extra(ev, "port"),
        )
    }

    fn check(
        line: &str,
        outcome: &str,
        user: Option<&str>,
        ip: Option<&str>,
        port: Option<&str>,
    ) -> Event {
        let ev = parse(line);
        assert_eq!(
            facts(&ev),
            (
                EventKind::Auth,
                Some(outcome),
                user,
                ip.map(str::to_owned),
                port
            ),
            "{line}"
        );
        ev
    }

    #[test]
    fn sshd_failed_and_accepted() {
        let ev = check(
            "sshd[24200]: Failed password for root from 183.62.140.253 port 46418 ssh2",
            FAILURE,
            Some("root"),
            Some("183.62.140.253"),
            Some("46418"),
        );
        assert_eq!(extra(&ev, "auth_method"), Some("password"));
        assert_eq!(extra(&ev, "invalid_user"), None);
        assert_eq!(extra(&ev, "program"), Some("sshd"));
        let ev = check(
            "sshd[1]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2",
            FAILURE,
            Some("webmaster"),
            Some("173.234.31.186"),
            Some("38926"),
        );
        assert_eq!(extra(&ev, "invalid_user"), Some("true"));
        // An empty name, and a name with spaces and the word "from" in it.
        let ev = check(
            "sshd[1]: Failed password for invalid user  from 1.2.3.4 port 5 ssh2",
            FAILURE,
            None,
            Some("1.2.3.4"),
            Some("5"),
        );
        assert_eq!(extra(&ev, "invalid_user"), Some("true"));
        check(
            "sshd[1]: Failed password for invalid user a from b from 1.2.3.4 port 5 ssh2",
            FAILURE,
            Some("a from b"),
            Some("1.2.3.4"),
            Some("5"),
        );
        let ev = check(
            "sshd[1]: Failed none for invalid user 0 from 5.5.5.5 port 1 ssh2",
            FAILURE,
            Some("0"),
            Some("5.5.5.5"),
            Some("1"),
        );
        assert_eq!(extra(&ev, "auth_method"), Some("none"));
        let ev = check(
            "sshd[1]: Failed publickey for git from 10.0.0.1 port 22 ssh2: RSA SHA256:aC3UQe",
            FAILURE,
            Some("git"),
            Some("10.0.0.1"),
            Some("22"),
        );
        assert_eq!(extra(&ev, "key"), Some("RSA SHA256:aC3UQe"));
        let ev = check(
            "sshd[1]: Accepted password for fztu from 119.137.62.142 port 49116 ssh2",
            SUCCESS,
            Some("fztu"),
            Some("119.137.62.142"),
            Some("49116"),
        );
        assert_eq!(extra(&ev, "auth_method"), Some("password"));
        let ev = check(
            "sshd[1]: Accepted publickey for ubuntu from 85.245.107.41 port 54259 ssh2: RSA SHA256:Kl8k",
            SUCCESS,
            Some("ubuntu"),
            Some("85.245.107.41"),
            Some("54259"),
        );
        assert_eq!(extra(&ev, "auth_method"), Some("publickey"));
        let ev = check(
            "sshd[1]: Accepted keyboard-interactive/pam for bob from ::1 port 2 ssh2",
            SUCCESS,
            Some("bob"),
            Some("::1"),
            Some("2"),
        );
        assert_eq!(extra(&ev, "auth_method"), Some("keyboard-interactive"));
        // UseDNS: a host name, kept as rhost and never resolved.
        let ev = check(
            "sshd[1]: Failed password for root from host.example.com port 22 ssh2",
            FAILURE,
            Some("root"),
            None,
            Some("22"),
        );
        assert_eq!(extra(&ev, "rhost"), Some("host.example.com"));
        // Old OpenSSH wording.
        check(
            "sshd[1]: Failed password for illegal user x from 1.1.1.1 port 3 ssh2",
            FAILURE,
            Some("x"),
            Some("1.1.1.1"),
            Some("3"),
        );
    }

    #[test]
    fn repeated_messages_are_unwrapped() {
        let ev = check(
            "sshd[24227]: message repeated 5 times: [ Failed password for root from 5.36.59.76 port 42393 ssh2]",
            FAILURE,
            Some("root"),
            Some("5.36.59.76"),
            Some("42393"),
        );
        assert_eq!(extra(&ev, "repeated"), Some("5"));
        assert!(ev.message.unwrap().starts_with("message repeated"));
    }

    #[test]
    fn sshd_invalid_users() {
        check(
            "sshd[24200]: Invalid user webmaster from 173.234.31.186",
            INVALID_USER,
            Some("webmaster"),
            Some("173.234.31.186"),
            None,
        );
        check(
            "sshd[1]: Invalid user admin from 2001:db8::1 port 4242",
            INVALID_USER,
            Some("admin"),
            Some("2001:db8::1"),
            Some("4242"),
        );
        check(
            "sshd[1]: Invalid user  from 10.1.1.1",
            INVALID_USER,
            None,
            Some("10.1.1.1"),
            None,
        );
        check(
            "sshd[1]: input_userauth_request: invalid user webmaster [preauth]",
            INVALID_USER,
            Some("webmaster"),
            None,
            None,
        );
        check(
            "sshd[1]: input_userauth_request: invalid user  [preauth]",
            INVALID_USER,
            None,
            None,
            None,
        );
    }

    #[test]
    fn sshd_disconnects() {
        let ev = check(
            "sshd[1]: Received disconnect from 183.62.140.253: 11: Bye Bye [preauth]",
            DISCONNECT,
            None,
            Some("183.62.140.253"),
            None,
        );
        assert_eq!(extra(&ev, "code"), Some("11"));
        let ev = check(
            "sshd[1]: Received disconnect from 24.151.103.17 port 56252:11: disconnected by user",
            DISCONNECT,
            None,
            Some("24.151.103.17"),
            Some("56252"),
        );
        assert_eq!(extra(&ev, "code"), Some("11"));
        let ev = check(
            "sshd[1]: error: Received disconnect from 1.2.3.4: 3: com.jcraft.jsch.JSchException: Auth fail [preauth]",
            DISCONNECT,
            None,
            Some("1.2.3.4"),
            None,
        );
        assert_eq!(extra(&ev, "code"), Some("3"));
        check(
            "sshd[1]: Received disconnect from 1.2.3.4 port 9:11:  [preauth]",
            DISCONNECT,
            None,
            Some("1.2.3.4"),
            Some("9"),
        );
        check(
            "sshd[1]: Disconnected from 1.2.3.4 port 5 [preauth]",
            DISCONNECT,
            None,
            Some("1.2.3.4"),
            Some("5"),
        );
        check(
            "sshd[1]: Disconnected from authenticating user root 1.2.3.4 port 5 [preauth]",
            DISCONNECT,
            Some("root"),
            Some("1.2.3.4"),
            Some("5"),
        );
        let ev = check(
            "sshd[1]: Disconnected from invalid user oracle 1.2.3.4 port 5 [preauth]",
            DISCONNECT,
            Some("oracle"),
            Some("1.2.3.4"),
            Some("5"),
        );
        assert_eq!(extra(&ev, "invalid_user"), Some("true"));
        check(
            "sshd[1]: Disconnected from user alice 1.2.3.4 port 5",
            DISCONNECT,
            Some("alice"),
            Some("1.2.3.4"),
            Some("5"),
        );
        check(
            "sshd[1]: Connection closed by 1.2.3.4 [preauth]",
            DISCONNECT,
            None,
            Some("1.2.3.4"),
            None,
        );
        check(
            "sshd[1]: Connection closed by authenticating user root 1.2.3.4 port 22 [preauth]",
            DISCONNECT,
            Some("root"),
            Some("1.2.3.4"),
            Some("22"),
        );
        check(
            "sshd[1]: Connection reset by 1.2.3.4 port 7 [preauth]",
            DISCONNECT,
            None,
            Some("1.2.3.4"),
            Some("7"),
        );
    }

    #[test]
    fn sshd_break_in_and_too_many() {
        let ev = check(
            "sshd[1]: reverse mapping checking getaddrinfo for ns.marryaldkfaczcz.com [173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!",
            BREAK_IN_ATTEMPT,
            None,
            Some("173.234.31.186"),
            None,
        );
        assert_eq!(extra(&ev, "rhost"), Some("ns.marryaldkfaczcz.com"));
        let ev = check(
            "sshd[1]: Address 1.2.3.4 maps to foo.example, but this does not map back to the address - POSSIBLE BREAK-IN ATTEMPT!",
            BREAK_IN_ATTEMPT,
            None,
            Some("1.2.3.4"),
            None,
        );
        assert_eq!(extra(&ev, "rhost"), Some("foo.example"));
        let ev = check(
            "sshd[1]: error: maximum authentication attempts exceeded for invalid user admin from 1.2.3.4 port 22 ssh2 [preauth]",
            TOO_MANY_FAILURES,
            Some("admin"),
            Some("1.2.3.4"),
            Some("22"),
        );
        assert_eq!(extra(&ev, "invalid_user"), Some("true"));
        check(
            "sshd[1]: error: maximum authentication attempts exceeded for root from 1.2.3.4 port 22 ssh2 [preauth]",
            TOO_MANY_FAILURES,
            Some("root"),
            Some("1.2.3.4"),
            Some("22"),
        );
        check(
            "sshd[1]: Disconnecting: Too many authentication failures for admin [preauth]",
            TOO_MANY_FAILURES,
            Some("admin"),
            None,
            None,
        );
        check(
            "sshd[1]: Disconnecting: Too many authentication failures [preauth]",
            TOO_MANY_FAILURES,
            None,
            None,
            None,
        );
        check(
            "sshd[1]: Disconnecting invalid user admin 1.2.3.4 port 22: Too many authentication failures [preauth]",
            TOO_MANY_FAILURES,
            Some("admin"),
            Some("1.2.3.4"),
            Some("22"),
        );
        let ev = check(
            "sshd[1]: PAM 5 more authentication failures; logname= uid=0 euid=0 tty=ssh ruser= rhost=183.62.140.253  user=root",
            TOO_MANY_FAILURES,
            Some("root"),
            Some("183.62.140.253"),
            None,
        );
        assert_eq!(extra(&ev, "count"), Some("5"));
        assert_eq!(extra(&ev, "tty"), Some("ssh"));
        let ev = check(
            "sshd[1]: PAM 1 more authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=h.example",
            TOO_MANY_FAILURES,
            None,
            None,
            None,
        );
        assert_eq!(extra(&ev, "rhost"), Some("h.example"));
        // Not an authentication fact: stays Syslog.
        let ev = parse("sshd[1]: PAM service(sshd) ignoring max retries; 6 > 3");
        assert_eq!(ev.kind, EventKind::Syslog);
        assert_eq!(extra(&ev, "outcome"), None);
    }

    #[test]
    fn sshd_connections_and_probes() {
        let ev = check(
            "sshd[1]: Connection from 24.151.103.17 port 51580 on 10.77.20.248 port 22",
            CONNECT,
            None,
            Some("24.151.103.17"),
            Some("51580"),
        );
        assert_eq!(extra(&ev, "local_ip"), Some("10.77.20.248"));
        assert_eq!(extra(&ev, "local_port"), Some("22"));
        check(
            "sshd[1]: Did not receive identification string from 1.2.3.4",
            PROTOCOL_ERROR,
            None,
            Some("1.2.3.4"),
            None,
        );
        check(
            "sshd[1]: Bad protocol version identification 'GET / HTTP/1.1' from 1.2.3.4 port 80",
            PROTOCOL_ERROR,
            None,
            Some("1.2.3.4"),
            Some("80"),
        );
        check(
            "sshd[1]: fatal: Unable to negotiate with 1.2.3.4 port 9: no matching cipher found. Their offer: aes [preauth]",
            PROTOCOL_ERROR,
            None,
            Some("1.2.3.4"),
            Some("9"),
        );
        check(
            "sshd[1]: User root from 1.2.3.4 not allowed because not listed in AllowUsers",
            DENIED,
            Some("root"),
            Some("1.2.3.4"),
            None,
        );
        check(
            "sshd[1]: ROOT LOGIN REFUSED FROM 1.2.3.4 port 22",
            DENIED,
            Some("root"),
            Some("1.2.3.4"),
            Some("22"),
        );
        check(
            "sshd[1]: error: PAM: Authentication failure for illegal user bob from h.example",
            FAILURE,
            Some("bob"),
            None,
            None,
        );
        for other in [
            "sshd[1]: Server listening on 0.0.0.0 port 22.",
            "sshd[1]: Starting session: shell on pts/0 for ubuntu from 1.2.3.4 port 5 id 0",
            "sshd[1]: fatal: Write failed: Connection reset by peer [preauth]",
            "sshd[1]: input_userauth_request: something else",
            "sshd[1]: Failed to frob",
            "sshd[1]: Disconnecting: something",
        ] {
            let ev = parse(other);
            assert_eq!(ev.kind, EventKind::Syslog, "{other}");
            assert_eq!(ev.client_ip, None, "{other}");
        }
    }

    #[test]
    fn pam_lines() {
        let ev = check(
            "sshd[1]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=112.95.230.3  user=root",
            FAILURE,
            Some("root"),
            Some("112.95.230.3"),
            None,
        );
        assert_eq!(extra(&ev, "pam_service"), Some("sshd"));
        assert_eq!(extra(&ev, "pam_module"), Some("pam_unix"));
        let ev = check(
            "sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=n219076184117.netvigator.com  user=root",
            FAILURE,
            Some("root"),
            None,
            None,
        );
        assert_eq!(extra(&ev, "rhost"), Some("n219076184117.netvigator.com"));
        assert_eq!(extra(&ev, "pam_service"), Some("sshd"));
        assert_eq!(extra(&ev, "pam_module"), None);
        check(
            "sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost=218.188.2.4 ",
            FAILURE,
            None,
            Some("218.188.2.4"),
            None,
        );
        check(
            "sshd(pam_unix)[19937]: check pass; user unknown",
            INVALID_USER,
            None,
            None,
            None,
        );
        check(
            "sshd[1]: pam_unix(sshd:auth): check pass; user unknown",
            INVALID_USER,
            None,
            None,
            None,
        );
        let ev = check(
            "sshd[1]: pam_unix(sshd:session): session opened for user fztu by (uid=0)",
            SESSION_OPENED,
            Some("fztu"),
            None,
            None,
        );
        assert_eq!(extra(&ev, "by"), None);
        let ev = check(
            "sudo: pam_unix(sudo:session): session opened for user root by ubuntu(uid=0)",
            SESSION_OPENED,
            Some("root"),
            None,
            None,
        );
        assert_eq!(extra(&ev, "by"), Some("ubuntu"));
        check(
            "sshd[1]: pam_unix(sshd:session): session opened for user bob(uid=1000) by (uid=0)",
            SESSION_OPENED,
            Some("bob"),
            None,
            None,
        );
        check(
            "su(pam_unix)[2]: session closed for user news",
            SESSION_CLOSED,
            Some("news"),
            None,
            None,
        );
        check(
            "login(pam_unix)[2]: session opened for user root by LOGIN(uid=0)",
            SESSION_OPENED,
            Some("root"),
            None,
            None,
        );
        let ev = check(
            "sudo: pam_unix(sudo:auth): authentication failure; logname=alice uid=1000 euid=0 tty=/dev/pts/0 ruser=alice rhost=  user=alice",
            FAILURE,
            Some("alice"),
            None,
            None,
        );
        assert_eq!(extra(&ev, "ruser"), Some("alice"));
        assert_eq!(extra(&ev, "rhost"), None);
        check(
            "gdm(pam_unix)[2]: authentication failure; logname= uid=0 euid=0 tty=:0 ruser= rhost= ",
            FAILURE,
            None,
            None,
            None,
        );
        // Cron sessions and other PAM chatter stay Syslog.
        for other in [
            "CRON[1]: pam_unix(cron:session): session opened for user root by (uid=0)",
            "sshd[1]: pam_unix(cron:session): session opened for user root by (uid=0)",
            "systemd: pam_unix(systemd-user:session): session opened for user x by (uid=0)",
            "su[1]: pam_systemd(su:session): Cannot create session: Already running in a session",
            "chpasswd[1]: pam_unix(chpasswd:chauthtok): password changed for x",
            "crond(pam_unix)[2915]: session closed for user root",
        ] {
            assert_eq!(parse(other).kind, EventKind::Syslog, "{other}");
        }
    }

    #[test]
    fn sudo_lines() {
        let ev = check(
            "sudo:   ubuntu : TTY=pts/0 ; PWD=/home/ubuntu ; USER=root ; COMMAND=/usr/bin/vim /etc/hosts",
            COMMAND,
            Some("ubuntu"),
            None,
            None,
        );
        assert_eq!(extra(&ev, "tty"), Some("pts/0"));
        assert_eq!(extra(&ev, "pwd"), Some("/home/ubuntu"));
        assert_eq!(extra(&ev, "target_user"), Some("root"));
        assert_eq!(extra(&ev, "command"), Some("/usr/bin/vim /etc/hosts"));
        let ev = check(
            "sudo: alice : 3 incorrect password attempts ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/sh -c a ; b",
            FAILURE,
            Some("alice"),
            None,
            None,
        );
        assert_eq!(extra(&ev, "count"), Some("3"));
        assert_eq!(extra(&ev, "command"), Some("/bin/sh -c a ; b"));
        check(
            "sudo: mallory : user NOT in sudoers ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/ls",
            DENIED,
            Some("mallory"),
            None,
            None,
        );
        check(
            "sudo: bob : command not allowed ; TTY=pts/1 ; PWD=/ ; USER=root ; COMMAND=/bin/ls",
            DENIED,
            Some("bob"),
            None,
            None,
        );
        let ev = check(
            "sudo: bob : TTY=pts/1 ; PWD=/ ; USER=root ; ENV=A=1 ; COMMAND=/bin/ls",
            COMMAND,
            Some("bob"),
            None,
            None,
        );
        assert_eq!(extra(&ev, "command"), Some("/bin/ls"));
        assert_eq!(parse("sudo: something else").kind, EventKind::Syslog);
        assert_eq!(
            parse("sudo: bob : weird status ; TTY=x").kind,
            EventKind::Syslog
        );
    }

    #[test]
    fn su_login_klogind_ftpd() {
        let ev = check(
            "su[1]: Successful su for root by ubuntu",
            SUCCESS,
            Some("root"),
            None,
            None,
        );
        assert_eq!(extra(&ev, "by"), Some("ubuntu"));
        check(
            "su[1]: FAILED su for root by eve",
            FAILURE,
            Some("root"),
            None,
            None,
        );
        let ev = check(
            "su[1]: (to root) alice on pts/0",
            SUCCESS,
            Some("root"),
            None,
            None,
        );
        assert_eq!(extra(&ev, "by"), Some("alice"));
        assert_eq!(extra(&ev, "tty"), Some("pts/0"));
        check(
            "su[1]: FAILED SU (to root) eve on pts/3",
            FAILURE,
            Some("root"),
            None,
            None,
        );
        let ev = check(
            "su[1]: + /dev/pts/0 ubuntu:root",
            SUCCESS,
            Some("root"),
            None,
            None,
        );
        assert_eq!(extra(&ev, "by"), Some("ubuntu"));
        check(
            "su[1]: - /dev/pts/0 eve:root",
            FAILURE,
            Some("root"),
            None,
            None,
        );
        check(
            "su: pam_unix(su:auth): authentication failure; logname=eve uid=1000 euid=0 tty=/dev/pts/0 ruser=eve rhost=  user=root",
            FAILURE,
            Some("root"),
            None,
            None,
        );
        check(
            "login[1]: FAILED LOGIN 1 FROM tty1 FOR root, Authentication failure",
            FAILURE,
            Some("root"),
            None,
            None,
        );
        check(
            "login[1]: FAILED LOGIN (1) on '/dev/tty1' FOR 'admin', Authentication failure",
            FAILURE,
            Some("admin"),
            None,
            None,
        );
        check(
            "login[1]: ROOT LOGIN ON tty2",
            SUCCESS,
            Some("root"),
            None,
            None,
        );
        check(
            "login[1]: LOGIN ON tty1 BY bob",
            SUCCESS,
            Some("bob"),
            None,
            None,
        );
        check(
            "klogind[19272]: Authentication failed from 163.27.187.39 (163.27.187.39): Permission denied in replay cache code",
            FAILURE,
            None,
            Some("163.27.187.39"),
            None,
        );
        assert_eq!(
            parse("klogind[1]: Kerberos authentication failed").kind,
            EventKind::Syslog
        );
        let ev = parse(
            "ftpd[29504]: connection from 24.54.76.216 (24-54-76-216.bflony.adelphia.net) at Fri Jun 17 07:07:00 2005",
        );
        assert_eq!(ev.kind, EventKind::Syslog);
        assert_eq!(ev.client_ip, Some("24.54.76.216".parse().unwrap()));
        assert_eq!(
            extra(&ev, "rhost"),
            Some("24-54-76-216.bflony.adelphia.net")
        );
        let ev = parse("ftpd[1]: connection from 1.2.3.4 () at Fri Jun 17 07:07:00 2005");
        assert_eq!(extra(&ev, "rhost"), None);
        let ev = check(
            "ftpd[16781]: ANONYMOUS FTP LOGIN FROM 84.102.20.2,  (anonymous)",
            SUCCESS,
            Some("anonymous"),
            Some("84.102.20.2"),
            None,
        );
        assert_eq!(extra(&ev, "auth_method"), Some("anonymous"));
    }
}
