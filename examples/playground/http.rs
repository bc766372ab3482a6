//! A small HTTP/1.1 server on `std::net`, with every limit in one place ([`Limits`]).
//!
//! `httparse` parses each request's head; this module reads the bytes, enforces the limits,
//! reads the body (only with a `Content-Length`, at most [`Limits::max_body`] bytes), hands a
//! [`Request`] to the handler and writes its [`Response`]. One thread per connection, at most
//! [`Limits::max_connections`] at a time; keep-alive so the page's many small requests reuse
//! their connections. Whatever a client sends, the worst it gets is a 4xx and a closed
//! connection: nothing here panics on input, and a panic in the handler (a bug) becomes a 500
//! for that one request.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// What one client may ask of the server.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Bytes of a request line plus headers.
    pub max_head: usize,
    /// Bytes of a request body (larger ones get 413).
    pub max_body: usize,
    /// Open connections at once (more get 503).
    pub max_connections: usize,
    /// How long a kept-alive connection may sit idle before it is closed.
    pub idle_timeout: Duration,
    /// How long a started request may take to arrive (slower ones get 408).
    pub io_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_head: 16 * 1024,
            max_body: 64 * 1024,
            max_connections: 64,
            idle_timeout: Duration::from_secs(15),
            io_timeout: Duration::from_secs(10),
        }
    }
}

/// A request as the handler sees it.
#[derive(Debug)]
pub struct Request {
    /// `GET`, `POST`, ... exactly as sent (methods are case-sensitive).
    pub method: String,
    /// The path without the query, e.g. `/api/predict`.
    pub path: String,
    /// What followed `?`, or `""`.
    pub query: String,
    /// The body, at most [`Limits::max_body`] bytes.
    pub body: Vec<u8>,
}

/// A response: status, content type, body, and for 405 the methods the path allows.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub allow: Option<&'static str>,
}

impl Response {
    /// A JSON response; `body` is already serialised.
    pub fn json(status: u16, body: Vec<u8>) -> Response {
        Response {
            status,
            content_type: "application/json",
            body,
            allow: None,
        }
    }

    /// The one-line JSON error every failure answers with: `{"error":"..."}`.
    pub fn error(status: u16, message: &str) -> Response {
        // A one-line message stays one line: JSON escapes any newline inside the string.
        let body = serde_json::json!({ "error": message }).to_string() + "\n";
        Response::json(status, body.into_bytes())
    }
}

/// The handler the server calls for every request, from many threads at once.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A server running in the background; dropping it stops accepting connections (requests
/// already being answered finish on their own).
pub struct Running {
    addr: SocketAddr,
    stopping: Arc<AtomicBool>,
    accept_thread: Option<JoinHandle<()>>,
}

impl Running {
    /// The address the server listens on (with the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Blocks for as long as the server runs (the playground's `main` ends here).
    pub fn wait(mut self) {
        if let Some(thread) = self.accept_thread.take() {
            thread.join().ok();
        }
    }

    fn stop_accepting(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // `accept` blocks; one connection to ourselves wakes it up to see the flag.
        TcpStream::connect(self.addr).ok();
        if let Some(thread) = self.accept_thread.take() {
            thread.join().ok();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.accept_thread.is_some() {
            self.stop_accepting();
        }
    }
}

/// Serves `listener` in the background with `handler`.
pub fn serve(listener: TcpListener, limits: Limits, handler: Handler) -> io::Result<Running> {
    let addr = listener.local_addr()?;
    let stopping = Arc::new(AtomicBool::new(false));
    let open = Arc::new(AtomicUsize::new(0));
    let flag = Arc::clone(&stopping);
    let accept_thread = thread::Builder::new()
        .name("playground-accept".into())
        .spawn(move || accept_loop(listener, limits, handler, &flag, &open))?;
    Ok(Running {
        addr,
        stopping,
        accept_thread: Some(accept_thread),
    })
}

fn accept_loop(
    listener: TcpListener,
    limits: Limits,
    handler: Handler,
    stopping: &AtomicBool,
    open: &Arc<AtomicUsize>,
) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                // E.g. out of file descriptors: wait a moment rather than spin.
                eprintln!("playground: accept failed: {e}");
                thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if open.fetch_add(1, Ordering::SeqCst) >= limits.max_connections {
            open.fetch_sub(1, Ordering::SeqCst);
            stream.set_write_timeout(Some(limits.io_timeout)).ok();
            let busy = Response::error(503, "too many open connections; try again");
            write_response(&mut stream, &busy, false).ok();
            continue;
        }
        let guard = OpenConnection(Arc::clone(open));
        let handler = Arc::clone(&handler);
        let spawned = thread::Builder::new()
            .name("playground-connection".into())
            .spawn(move || {
                let _guard = guard;
                serve_connection(stream, &limits, &handler);
            });
        if let Err(e) = spawned {
            eprintln!("playground: cannot start a thread for a connection: {e}");
        }
    }
}

/// Counts an open connection until dropped, even if its thread ends by a panic.
struct OpenConnection(Arc<AtomicUsize>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Why a connection stops: quietly (the client left) or after telling the client.
enum Stop {
    Quietly,
    With(Response),
}

fn serve_connection(mut stream: TcpStream, limits: &Limits, handler: &Handler) {
    stream.set_nodelay(true).ok();
    stream.set_write_timeout(Some(limits.io_timeout)).ok();
    // Bytes read from the socket but not used yet (the start of the next request, if the
    // client sends requests back to back).
    let mut pending = Vec::new();
    loop {
        match next_request(&mut stream, &mut pending, limits) {
            Ok((request, keep_alive)) => {
                let response =
                    catch_unwind(AssertUnwindSafe(|| handler(&request))).unwrap_or_else(|_| {
                        Response::error(500, "internal error (a bug; see the server's terminal)")
                    });
                if write_response(&mut stream, &response, keep_alive).is_err() || !keep_alive {
                    stream.shutdown(Shutdown::Both).ok();
                    return;
                }
            }
            Err(Stop::Quietly) => return,
            Err(Stop::With(response)) => {
                if write_response(&mut stream, &response, false).is_ok() {
                    linger(&mut stream);
                }
                return;
            }
        }
    }
}

/// Reads the next request on the connection, and whether the connection stays open after it.
fn next_request(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    limits: &Limits,
) -> Result<(Request, bool), Stop> {
    let head_len = read_head(stream, pending, limits)?;
    let head = parse_head(&pending[..head_len])?;
    pending.drain(..head_len);

    let Some(length) = head.content_length else {
        let keep_alive = head.keep_alive;
        return Ok((head.into_request(Vec::new()), keep_alive));
    };
    if length > limits.max_body {
        return Err(Stop::With(Response::error(
            413,
            &format!(
                "request body of {length} bytes is over the limit of {} bytes",
                limits.max_body
            ),
        )));
    }
    if head.expects_continue && length > pending.len() {
        stream
            .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
            .map_err(|_| Stop::Quietly)?;
    }
    stream.set_read_timeout(Some(limits.io_timeout)).ok();
    while pending.len() < length {
        match read_some(stream, pending) {
            Ok(0) => return Err(Stop::Quietly),
            Ok(_) => {}
            Err(e) if is_timeout(&e) => {
                return Err(Stop::With(Response::error(
                    408,
                    "the request body did not arrive in time",
                )));
            }
            Err(_) => return Err(Stop::Quietly),
        }
    }
    let body: Vec<u8> = pending.drain(..length).collect();
    let keep_alive = head.keep_alive;
    Ok((head.into_request(body), keep_alive))
}

/// Reads until `pending` holds a whole head (request line and headers, up to the empty
/// line) and returns its length.
fn read_head(
    stream: &mut TcpStream,
    pending: &mut Vec<u8>,
    limits: &Limits,
) -> Result<usize, Stop> {
    let mut searched = 0usize;
    loop {
        // Search only the new bytes (and the three before them, for a split "\r\n\r\n").
        let from = searched.saturating_sub(3);
        if let Some(at) = pending[from..].windows(4).position(|w| w == b"\r\n\r\n") {
            let len = from + at + 4;
            if len > limits.max_head {
                break;
            }
            return Ok(len);
        }
        searched = pending.len();
        if pending.len() > limits.max_head {
            break;
        }
        // Between requests a connection may idle; once a request has begun it must hurry.
        let timeout = if pending.is_empty() {
            limits.idle_timeout
        } else {
            limits.io_timeout
        };
        stream.set_read_timeout(Some(timeout)).ok();
        match read_some(stream, pending) {
            Ok(0) => return Err(Stop::Quietly),
            Ok(_) => {}
            Err(e) if is_timeout(&e) && !pending.is_empty() => {
                return Err(Stop::With(Response::error(
                    408,
                    "the request did not arrive in time",
                )));
            }
            Err(_) => return Err(Stop::Quietly),
        }
    }
    Err(Stop::With(Response::error(
        431,
        &format!(
            "request line and headers are over the limit of {} bytes",
            limits.max_head
        ),
    )))
}

/// The parts of a request head the server acts on.
struct Head {
    method: String,
    target: String,
    content_length: Option<usize>,
    keep_alive: bool,
    expects_continue: bool,
}

impl Head {
    fn into_request(self, body: Vec<u8>) -> Request {
        let (path, query) = self.target.split_once('?').unwrap_or((&self.target, ""));
        Request {
            method: self.method,
            path: path.to_string(),
            query: query.to_string(),
            body,
        }
    }
}

fn parse_head(bytes: &[u8]) -> Result<Head, Stop> {
    let bad = |message: &str| Stop::With(Response::error(400, message));
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut parsed = httparse::Request::new(&mut headers);
    match parsed.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {}
        Ok(httparse::Status::Partial) => return Err(bad("incomplete request head")),
        Err(httparse::Error::TooManyHeaders) => {
            return Err(Stop::With(Response::error(
                431,
                "more than 64 request headers",
            )));
        }
        Err(e) => return Err(bad(&format!("malformed HTTP request: {e}"))),
    }
    let (Some(method), Some(target), Some(minor)) = (parsed.method, parsed.path, parsed.version)
    else {
        return Err(bad("malformed HTTP request line"));
    };

    let mut content_length = None;
    let mut connection = String::new();
    let mut expects_continue = false;
    for header in parsed.headers.iter() {
        let value = std::str::from_utf8(header.value).unwrap_or("").trim();
        if header.name.eq_ignore_ascii_case("content-length") {
            // Digits only: "+5", "5, 5" or a second, different length are refused, so no two
            // programs can disagree about where this body ends.
            if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad("Content-Length is not a number"));
            }
            // Too many digits for a usize is simply too large.
            let length = value.parse::<usize>().unwrap_or(usize::MAX);
            if content_length.is_some_and(|earlier| earlier != length) {
                return Err(bad("two different Content-Length headers"));
            }
            content_length = Some(length);
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            return Err(Stop::With(Response::error(
                411,
                "chunked request bodies are not supported; send a Content-Length",
            )));
        } else if header.name.eq_ignore_ascii_case("connection") {
            connection = value.to_ascii_lowercase();
        } else if header.name.eq_ignore_ascii_case("expect") {
            if !value.eq_ignore_ascii_case("100-continue") {
                return Err(Stop::With(Response::error(
                    417,
                    "only Expect: 100-continue is supported",
                )));
            }
            expects_continue = true;
        }
    }
    // HTTP/1.1 keeps a connection open unless told otherwise; HTTP/1.0 closes it unless told.
    let keep_alive = if minor == 1 {
        !connection.contains("close")
    } else {
        connection.contains("keep-alive")
    };
    Ok(Head {
        method: method.to_string(),
        target: target.to_string(),
        content_length,
        keep_alive,
        expects_continue,
    })
}

fn read_some(stream: &mut TcpStream, into: &mut Vec<u8>) -> io::Result<usize> {
    let mut chunk = [0u8; 8192];
    let n = stream.read(&mut chunk)?;
    into.extend_from_slice(&chunk[..n]);
    Ok(n)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// After an error response on a connection whose request was not read to its end: stop
/// writing, then read and drop what the client is still sending, for a moment. Closing at
/// once with unread bytes makes the kernel reset the connection, and the client could lose
/// the response it has not read yet.
fn linger(stream: &mut TcpStream) {
    stream.shutdown(Shutdown::Write).ok();
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok();
    let mut chunk = [0u8; 8192];
    let mut drained = 0;
    while drained < 1024 * 1024 {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        411 => "Length Required",
        413 => "Content Too Large",
        417 => "Expectation Failed",
        422 => "Unprocessable Content",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        _ => "",
    }
}

fn write_response(stream: &mut TcpStream, response: &Response, keep_alive: bool) -> io::Result<()> {
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nCache-Control: no-store\r\nX-Content-Type-Options: nosniff\r\nConnection: {}\r\n",
        response.status,
        reason(response.status),
        response.content_type,
        response.body.len(),
        if keep_alive { "keep-alive" } else { "close" },
    );
    if let Some(allow) = response.allow {
        head.push_str(&format!("Allow: {allow}\r\n"));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes())?;
    stream.write_all(&response.body)?;
    stream.flush()
}
