//! A small SMTP client (RFC 5321) over any byte stream: EHLO (HELO when the
//! server does not know EHLO), AUTH PLAIN and LOGIN (RFC 4954), MAIL, RCPT,
//! DATA with dot-stuffing, QUIT.
//!
//! Errors say whether a retry may help: a 4xx reply and a broken or refused
//! connection are transient, a 5xx reply (and a reply that makes no sense at
//! that point of the dialogue) is permanent.

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
    /// client knows (PLAIN, LOGIN). `Ok(false)`: none of them is offered.
    pub fn authenticate(
        &mut self,
        identity: &str,
        username: &str,
        password: &str,
    ) -> Result<bool, Failure> {
        let offered: Vec<String> = self
            .extension("AUTH")
            .unwrap_or("")
            .split_whitespace()
            .map(str::to_ascii_uppercase)
            .collect();
        for mechanism in offered {
            match mechanism.as_str() {
                "PLAIN" => {
                    let token = base64(format!("{identity}\0{username}\0{password}").as_bytes());
                    self.command_expect("AUTH PLAIN", &format!("AUTH PLAIN {token}"), &[235])?;
                    return Ok(true);
                }
                "LOGIN" => {
                    self.command_expect("AUTH LOGIN", "AUTH LOGIN", &[334])?;
                    self.command_expect(
                        "AUTH LOGIN username",
                        &base64(username.as_bytes()),
                        &[334],
                    )?;
                    self.command_expect(
                        "AUTH LOGIN password",
                        &base64(password.as_bytes()),
                        &[235],
                    )?;
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

/// Standard base64 with padding (RFC 4648), as AUTH wants it.
pub fn base64(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
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
        assert!(c.authenticate("", "u", "p").unwrap());
        assert!(written(c).contains("AUTH LOGIN\r\n"));
    }

    #[test]
    fn plain_then_mail_rcpt_data() {
        let s = server(
            "220 mx\n250-mx\n250 AUTH PLAIN\n235 ok\n250 ok\n250 ok\n251 forwarded\n354 go on\n250 queued\n",
        );
        let mut c = Client::open(s).unwrap();
        c.hello("h").unwrap();
        assert!(c.authenticate("id", "user", "pw").unwrap());
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
        let mut c = Client::open(server("220 mx\n250-mx\n250 STARTTLS\n220 go ahead\n")).unwrap();
        c.hello("h").unwrap();
        assert_eq!(c.extension("starttls"), Some(""));
        let c = c.starttls(Ok).unwrap();
        assert_eq!(c.extension("STARTTLS"), None);
        assert_eq!(written(c), "EHLO h\r\nSTARTTLS\r\n");

        let mut c = Client::open(server("220 mx\n250 mx\n454 not now\n")).unwrap();
        c.hello("h").unwrap();
        let e = PluginError::from(c.starttls(Ok).err().unwrap());
        assert!(matches!(e, PluginError::Transient(_)), "{e:?}");
    }

    #[test]
    fn login_answers_both_challenges() {
        let s =
            server("220 mx\n250-mx\n250 AUTH LOGIN\n334 VXNlcm5hbWU6\n334 UGFzc3dvcmQ6\n235 ok\n");
        let mut c = Client::open(s).unwrap();
        c.hello("h").unwrap();
        assert!(c.authenticate("", "user", "pw").unwrap());
        assert_eq!(written(c), "EHLO h\r\nAUTH LOGIN\r\ndXNlcg==\r\ncHc=\r\n");
    }

    #[test]
    fn helo_when_ehlo_is_unknown_and_no_auth_offered() {
        let s = server("220 mx\n502 what\n250 hi\n");
        let mut c = Client::open(s).unwrap();
        c.hello("h").unwrap();
        assert_eq!(c.extension("AUTH"), None);
        assert!(!c.authenticate("", "u", "p").unwrap());
        assert_eq!(written(c), "EHLO h\r\nHELO h\r\n");
    }

    #[test]
    fn reply_codes_decide_transient_or_permanent() {
        let mut c = Client::open(server("220 mx\n250 mx\n451 try later\n")).unwrap();
        c.hello("h").unwrap();
        let e = PluginError::from(c.send("a@x", &[], "x").unwrap_err());
        assert_eq!(
            e,
            PluginError::transient("MAIL FROM: the server answered 451 try later")
        );

        let mut c = Client::open(server("220 mx\n250 mx\n250 ok\n550 no such user\n")).unwrap();
        c.hello("h").unwrap();
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

    #[test]
    fn base64_pads() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
    }
}
