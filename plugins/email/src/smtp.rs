//! A small SMTP client (RFC 5321) over any byte stream: EHLO (HELO when the
//! server does not know EHLO), AUTH CRAM-MD5 (RFC 2195), PLAIN and LOGIN
//! (RFC 4954), MAIL, RCPT, DATA with dot-stuffing, QUIT.
//!
//! Errors say whether a retry may help: a 4xx reply and a broken or refused
//! connection are transient, a 5xx reply (and a reply that makes no sense at
//! that point of the dialogue) is permanent.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use pharos_sdk::PluginError;
use std::io::{self, BufRead, BufReader, Read, Write};

/// Longest reply line kept (RFC 5321 allows 512 bytes; servers exceed it in
/// EHLO lists, never by this much).
const MAX_LINE: usize = 4096;
/// Most lines one multi-line reply may have.
const MAX_LINES: usize = 256;

/// One server reply: its code and the text of each line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    pub lines: Vec<String>,
}

impl Reply {
    fn text(&self) -> String {
        self.lines.join(" / ")
    }
}

/// What went wrong in a dialogue.
#[derive(Debug)]
pub enum Failure {
    /// The server answered `reply` to `step` where it should have accepted.
    Rejected { step: String, reply: Reply },
    /// Reading or writing failed.
    Io { step: String, error: io::Error },
    /// The server spoke something other than SMTP.
    Protocol { step: String, detail: String },
}

impl From<Failure> for PluginError {
    fn from(f: Failure) -> PluginError {
        match f {
            Failure::Rejected { step, reply } => {
                let message = format!(
                    "{step}: the server answered {} {}",
                    reply.code,
                    reply.text()
                );
                if (400..500).contains(&reply.code) {
                    PluginError::transient(message)
                } else {
                    PluginError::permanent(message)
                }
            }
            Failure::Io { step, error } => PluginError::transient(format!("{step}: {error}")),
            Failure::Protocol { step, detail } => {
                PluginError::permanent(format!("{step}: {detail}"))
            }
        }
    }
}

/// An open SMTP session on `S`.
pub struct Client<S: Read + Write> {
    stream: BufReader<S>,
    /// The EHLO keywords and their parameters, upper-cased keywords.
    extensions: Vec<(String, String)>,
}

impl<S: Read + Write> Client<S> {
    /// Reads the server's greeting, which must be 220.
    pub fn open(stream: S) -> Result<Client<S>, Failure> {
        let mut client = Client {
            stream: BufReader::new(stream),
            extensions: Vec::new(),
        };
        client.expect("reading the greeting", &[220])?;
        Ok(client)
    }

    /// Introduces the client as `name`: EHLO, or HELO when the server does
    /// not implement EHLO (a 5xx answer).
    pub fn hello(&mut self, name: &str) -> Result<(), Failure> {
        let reply = self.command("EHLO", &format!("EHLO {name}"))?;
        if reply.code == 250 {
            self.extensions = reply
                .lines
                .iter()
                .skip(1)
                .map(|line| {
                    let (keyword, params) = line.split_once(' ').unwrap_or((line, ""));
                    (keyword.to_ascii_uppercase(), params.to_owned())
                })
                .collect();
            return Ok(());
        }
        if reply.code >= 500 {
            self.extensions.clear();
            return self
                .command_expect("HELO", &format!("HELO {name}"), &[250])
                .map(drop);
        }
        Err(Failure::Rejected {
            step: "EHLO".to_owned(),
            reply,
        })
    }

    /// Upgrades the session with STARTTLS (RFC 3207): the server must accept
    /// the command, then `wrap` runs the handshake over the connection. The
    /// caller says EHLO again afterwards; what the server announced before is
    /// forgotten.
    pub fn starttls<T: Read + Write>(
        mut self,
        wrap: impl FnOnce(S) -> Result<T, Failure>,
    ) -> Result<Client<T>, Failure> {
        self.command_expect("STARTTLS", "STARTTLS", &[220])?;
        if !self.stream.buffer().is_empty() {
            return Err(Failure::Protocol {
                step: "STARTTLS".to_owned(),
                detail: "the server sent more before the handshake".to_owned(),
            });
        }
        Ok(Client {
            stream: BufReader::new(wrap(self.stream.into_inner())?),
            extensions: Vec::new(),
        })
    }

    /// The parameters of an extension the server announced, if it did.
    pub fn extension(&self, keyword: &str) -> Option<&str> {
        self.extensions
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(keyword))
            .map(|(_, params)| params.as_str())
    }

    /// Authenticates with the first mechanism the server lists that the
    /// credentials can serve, as upstream chooses: CRAM-MD5 with a secret, PLAIN
    /// and LOGIN with a password. `Ok(false)`: none of them.
    pub fn authenticate(&mut self, credentials: &Credentials<'_>) -> Result<bool, Failure> {
        let Credentials {
            identity,
            username,
            password,
            secret,
        } = *credentials;
        let offered: Vec<String> = self
            .extension("AUTH")
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_ascii_uppercase)
            .collect();
        for mechanism in offered {
            match mechanism.as_str() {
                "CRAM-MD5" if !secret.is_empty() => {
                    let reply = self.command_expect("AUTH CRAM-MD5", "AUTH CRAM-MD5", &[334])?;
                    let challenge = reply
                        .lines
                        .first()
                        .and_then(|line| BASE64.decode(line.trim()).ok())
                        .ok_or_else(|| Failure::Protocol {
                            step: "AUTH CRAM-MD5".to_owned(),
                            detail: format!("the challenge is not base64: {}", reply.text()),
                        })?;
                    let answer = format!("{username} {}", cram_md5(secret, &challenge));
                    self.command_expect("AUTH CRAM-MD5 answer", &BASE64.encode(answer), &[235])?;
                    return Ok(true);
                }
                "PLAIN" if !password.is_empty() => {
                    let token = BASE64.encode(format!("{identity}\0{username}\0{password}"));
                    self.command_expect("AUTH PLAIN", &format!("AUTH PLAIN {token}"), &[235])?;
                    return Ok(true);
                }
                "LOGIN" if !password.is_empty() => {
                    self.command_expect("AUTH LOGIN", "AUTH LOGIN", &[334])?;
                    self.command_expect("AUTH LOGIN username", &BASE64.encode(username), &[334])?;
                    self.command_expect("AUTH LOGIN password", &BASE64.encode(password), &[235])?;
                    return Ok(true);
                }
                _ => {}
            }
        }
        Ok(false)
    }

    /// Sends one message: MAIL FROM, RCPT TO for each recipient, DATA with
    /// `message` (lines ending in CRLF) dot-stuffed.
    pub fn send(&mut self, from: &str, to: &[String], message: &str) -> Result<(), Failure> {
        self.command_expect("MAIL FROM", &format!("MAIL FROM:<{from}>"), &[250])?;
        for rcpt in to {
            self.command_expect("RCPT TO", &format!("RCPT TO:<{rcpt}>"), &[250, 251])?;
        }
        self.command_expect("DATA", "DATA", &[354])?;
        let body = dot_stuff(message);
        self.write("sending the message", body.as_bytes())?;
        self.expect("ending the message", &[250])?;
        Ok(())
    }

    /// Ends the session politely; the message is already accepted, so the
    /// answer does not matter.
    pub fn quit(mut self) {
        let _ = self.command("QUIT", "QUIT");
    }

    /// Sends `line` and returns whatever the server answered.
    fn command(&mut self, step: &str, line: &str) -> Result<Reply, Failure> {
        self.write(step, format!("{line}\r\n").as_bytes())?;
        self.read_reply(step)
    }

    /// Sends `line` and fails unless the answer's code is one of `codes`.
    fn command_expect(&mut self, step: &str, line: &str, codes: &[u16]) -> Result<Reply, Failure> {
        self.write(step, format!("{line}\r\n").as_bytes())?;
        self.expect(step, codes)
    }

    fn expect(&mut self, step: &str, codes: &[u16]) -> Result<Reply, Failure> {
        let reply = self.read_reply(step)?;
        if codes.contains(&reply.code) {
            Ok(reply)
        } else {
            Err(Failure::Rejected {
                step: step.to_owned(),
                reply,
            })
        }
    }

    fn write(&mut self, step: &str, bytes: &[u8]) -> Result<(), Failure> {
        let stream = self.stream.get_mut();
        stream
            .write_all(bytes)
            .and_then(|()| stream.flush())
            .map_err(|error| Failure::Io {
                step: step.to_owned(),
                error,
            })
    }

    /// Reads one reply: lines `NNN-text` then a last `NNN text`, all with the
    /// same code.
    fn read_reply(&mut self, step: &str) -> Result<Reply, Failure> {
        let protocol = |detail: String| Failure::Protocol {
            step: step.to_owned(),
            detail,
        };
        let mut lines = Vec::new();
        let mut code = None;
        loop {
            let mut raw = Vec::new();
            let read = (&mut self.stream)
                .take(MAX_LINE as u64 + 2)
                .read_until(b'\n', &mut raw)
                .map_err(|error| Failure::Io {
                    step: step.to_owned(),
                    error,
                })?;
            if read == 0 {
                return Err(Failure::Io {
                    step: step.to_owned(),
                    error: io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    ),
                });
            }
            if raw.last() != Some(&b'\n') {
                return Err(protocol(format!(
                    "a reply line is longer than {MAX_LINE} bytes"
                )));
            }
            let line = String::from_utf8_lossy(&raw);
            let line = line.trim_end_matches(['\r', '\n']);
            let this: u16 = line
                .get(..3)
                .filter(|c| c.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| protocol(format!("not an SMTP reply: {line:?}")))?;
            if code.is_some_and(|c| c != this) {
                return Err(protocol(format!(
                    "reply codes differ within one reply: {line:?}"
                )));
            }
            code = Some(this);
            let (more, text) = match line.as_bytes().get(3) {
                Some(b'-') => (true, &line[4..]),
                Some(b' ') => (false, &line[4..]),
                None => (false, ""),
                Some(_) => return Err(protocol(format!("not an SMTP reply: {line:?}"))),
            };
            lines.push(text.to_owned());
            if !more {
                return Ok(Reply { code: this, lines });
            }
            if lines.len() >= MAX_LINES {
                return Err(protocol(format!("a reply has more than {MAX_LINES} lines")));
            }
        }
    }
}

/// The DATA payload for `message`: every line ends in CRLF, a line starting
/// with `.` gets a second one, and the terminating `.` line follows.
pub fn dot_stuff(message: &str) -> String {
    let mut out = String::with_capacity(message.len() + 16);
    let body = message
        .strip_suffix('\n')
        .map_or(message, |m| m.strip_suffix('\r').unwrap_or(m));
    if !body.is_empty() {
        for line in body.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.starts_with('.') {
                out.push('.');
            }
            out.push_str(line);
            out.push_str("\r\n");
        }
    }
    out.push_str(".\r\n");
    out
}

/// What AUTH may use: upstream's `auth_identity`, `auth_username`,
/// `auth_password` and `auth_secret`.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    pub identity: &'a str,
    pub username: &'a str,
    pub password: &'a str,
    pub secret: &'a str,
}

/// The CRAM-MD5 digest of `challenge` (RFC 2195): HMAC-MD5 keyed with the shared
/// secret, in lower-case hex.
fn cram_md5(secret: &str, challenge: &[u8]) -> String {
    use std::fmt::Write as _;
    // HMAC takes a key of any length, so this cannot fail.
    let Ok(mut mac) = Hmac::<md5::Md5>::new_from_slice(secret.as_bytes()) else {
        return String::new();
    };
    mac.update(challenge);
    mac.finalize()
        .into_bytes()
        .iter()
        .fold(String::with_capacity(32), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    /// A server scripted in advance: what it says, and what the client wrote.
    struct Scripted {
        replies: Cursor<Vec<u8>>,
        written: Vec<u8>,
    }

    impl Read for Scripted {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.replies.read(buf)
        }
    }

    impl Write for Scripted {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn server(replies: &str) -> Scripted {
        Scripted {
            replies: Cursor::new(replies.replace('\n', "\r\n").into_bytes()),
            written: Vec::new(),
        }
    }

    /// A client that has read the greeting and said EHLO (or HELO) as `h`.
    fn greeted(s: Scripted) -> Client<Scripted> {
        let mut c = Client::open(s).unwrap();
        c.hello("h").unwrap();
        c
    }

    fn written(c: Client<Scripted>) -> String {
        String::from_utf8_lossy(&c.stream.into_inner().written).into_owned()
    }

    #[test]
    fn extensions_are_read_and_the_servers_mechanism_order_wins() {
        let s = server(
            "220 mx ESMTP\n250-mx greets you\n250-SIZE 1000\n250 AUTH LOGIN PLAIN\n\
             334 VXNlcm5hbWU6\n334 UGFzc3dvcmQ6\n235 ok\n",
        );
        let mut c = Client::open(s).unwrap();
        c.hello("pharos.example").unwrap();
        assert_eq!(c.extension("size"), Some("1000"));
        assert_eq!(c.extension("STARTTLS"), None);
        assert!(c.authenticate(&with_password("", "u", "p")).unwrap());
        assert!(written(c).contains("AUTH LOGIN\r\n"));
    }

    #[test]
    fn plain_then_mail_rcpt_data() {
        let s = server(
            "220 mx\n250-mx\n250 AUTH PLAIN\n235 ok\n250 ok\n250 ok\n251 forwarded\n354 go on\n250 queued\n",
        );
        let mut c = greeted(s);
        assert!(c.authenticate(&with_password("id", "user", "pw")).unwrap());
        c.send(
            "a@x",
            &["b@y".to_owned(), "c@z".to_owned()],
            "Subject: s\r\n\r\n.hidden\r\nok\r\n",
        )
        .unwrap();
        assert_eq!(
            written(c),
            "EHLO h\r\nAUTH PLAIN aWQAdXNlcgBwdw==\r\nMAIL FROM:<a@x>\r\nRCPT TO:<b@y>\r\n\
             RCPT TO:<c@z>\r\nDATA\r\nSubject: s\r\n\r\n..hidden\r\nok\r\n.\r\n"
        );
    }

    #[test]
    fn starttls_hands_the_connection_over_and_forgets_extensions() {
        let c = greeted(server("220 mx\n250-mx\n250 STARTTLS\n220 go ahead\n"));
        assert_eq!(c.extension("starttls"), Some(""));
        let c = c.starttls(Ok).unwrap();
        assert_eq!(c.extension("STARTTLS"), None);
        assert_eq!(written(c), "EHLO h\r\nSTARTTLS\r\n");

        let c = greeted(server("220 mx\n250 mx\n454 not now\n"));
        let e = PluginError::from(c.starttls(Ok).err().unwrap());
        assert!(matches!(e, PluginError::Transient(_)), "{e:?}");
    }

    #[test]
    fn login_answers_both_challenges() {
        let s =
            server("220 mx\n250-mx\n250 AUTH LOGIN\n334 VXNlcm5hbWU6\n334 UGFzc3dvcmQ6\n235 ok\n");
        let mut c = greeted(s);
        assert!(c.authenticate(&with_password("", "user", "pw")).unwrap());
        assert_eq!(written(c), "EHLO h\r\nAUTH LOGIN\r\ndXNlcg==\r\ncHc=\r\n");
    }

    #[test]
    fn helo_when_ehlo_is_unknown_and_no_auth_offered() {
        let s = server("220 mx\n502 what\n250 hi\n");
        let mut c = greeted(s);
        assert_eq!(c.extension("AUTH"), None);
        assert!(!c.authenticate(&with_password("", "u", "p")).unwrap());
        assert_eq!(written(c), "EHLO h\r\nHELO h\r\n");
    }

    #[test]
    fn reply_codes_decide_transient_or_permanent() {
        let mut c = greeted(server("220 mx\n250 mx\n451 try later\n"));
        let e = PluginError::from(c.send("a@x", &[], "x").unwrap_err());
        assert_eq!(
            e,
            PluginError::transient("MAIL FROM: the server answered 451 try later")
        );

        let mut c = greeted(server("220 mx\n250 mx\n250 ok\n550 no such user\n"));
        let e = PluginError::from(c.send("a@x", &["b@y".to_owned()], "x").unwrap_err());
        assert_eq!(
            e,
            PluginError::permanent("RCPT TO: the server answered 550 no such user")
        );

        // A connection that ends early is transient; garbage is permanent.
        let e = PluginError::from(Client::open(server("")).err().unwrap());
        assert!(matches!(e, PluginError::Transient(_)), "{e:?}");
        let e = PluginError::from(Client::open(server("hello\n")).err().unwrap());
        assert!(matches!(e, PluginError::Permanent(_)), "{e:?}");
        let e = PluginError::from(Client::open(server("554 go away\n")).err().unwrap());
        assert!(matches!(e, PluginError::Permanent(_)), "{e:?}");
        let e = PluginError::from(Client::open(server("220-a\n221 b\n")).err().unwrap());
        assert!(matches!(e, PluginError::Permanent(_)), "{e:?}");
    }

    #[test]
    fn long_lines_and_endless_replies_are_refused() {
        let long = format!("220 {}\n", "x".repeat(MAX_LINE + 10));
        assert!(matches!(
            Client::open(server(&long)),
            Err(Failure::Protocol { .. })
        ));
        let endless = "220-x\n".repeat(MAX_LINES + 1);
        assert!(matches!(
            Client::open(server(&endless)),
            Err(Failure::Protocol { .. })
        ));
    }

    #[test]
    fn dot_stuffing_and_line_ends() {
        assert_eq!(dot_stuff("a\n.b\r\n..c\n"), "a\r\n..b\r\n...c\r\n.\r\n");
        assert_eq!(dot_stuff(""), ".\r\n");
        assert_eq!(dot_stuff("."), "..\r\n.\r\n");
    }

    fn with_password<'a>(
        identity: &'a str,
        username: &'a str,
        password: &'a str,
    ) -> Credentials<'a> {
        Credentials {
            identity,
            username,
            password,
            secret: "",
        }
    }

    #[test]
    fn cram_md5_answers_rfc_2195s_example() {
        // RFC 2195's example: user "tim", secret "tanstaaftanstaaf".
        let challenge = b"<1896.697170952@postoffice.reston.mci.net>";
        assert_eq!(
            cram_md5("tanstaaftanstaaf", challenge),
            "b913a602c7eda7a495b4e6e7334d3890"
        );
        let mut c = greeted(server(
            "220 mx\n250-mx\n250 AUTH CRAM-MD5 PLAIN\n\
             334 PDE4OTYuNjk3MTcwOTUyQHBvc3RvZmZpY2UucmVzdG9uLm1jaS5uZXQ+\n235 ok\n",
        ));
        let tim = Credentials {
            identity: "",
            username: "tim",
            password: "pw",
            secret: "tanstaaftanstaaf",
        };
        assert!(c.authenticate(&tim).unwrap());
        assert_eq!(
            written(c),
            "EHLO h\r\nAUTH CRAM-MD5\r\ndGltIGI5MTNhNjAyYzdlZGE3YTQ5NWI0ZTZlNzMzNGQzODkw\r\n"
        );
    }

    #[test]
    fn mechanisms_the_credentials_cannot_serve_are_passed_over() {
        // No secret: CRAM-MD5 is skipped for the next the server lists.
        let mut c = greeted(server("220 mx\n250-mx\n250 AUTH CRAM-MD5 PLAIN\n235 ok\n"));
        let password_only = Credentials {
            identity: "",
            username: "u",
            password: "p",
            secret: "",
        };
        assert!(c.authenticate(&password_only).unwrap());
        assert!(written(c).contains("AUTH PLAIN AHUAcA==\r\n"));
        // No password: PLAIN and LOGIN cannot be used.
        let mut c = greeted(server("220 mx\n250-mx\n250 AUTH PLAIN LOGIN\n"));
        let secret_only = Credentials {
            password: "",
            secret: "s",
            ..password_only
        };
        assert!(!c.authenticate(&secret_only).unwrap());
    }
}
