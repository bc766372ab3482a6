//! The download path, against a tiny HTTP server on 127.0.0.1 started by each test:
//! success, checksum mismatch, a connection dropped mid-file, and a mirror that is down.
//! After every failure the target folder must be empty: nothing that looks like a file.
//! Needs the `download` feature (on by default); without it this file is empty.
#![cfg(feature = "download")]

use std::collections::HashMap;
use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use cnn_from_scratch::data::{
    DataError, Dataset, DownloadPlan, FailureReason, RemoteFile, download_files, write_idx_images,
    write_idx_labels,
};
use ndarray::{Array1, Array4};
use sha2::{Digest, Sha256};

/// What the server answers for one path.
#[derive(Clone)]
enum Reply {
    /// 200 with this body.
    Body(Vec<u8>),
    /// 200 announcing `announced` bytes, then only `body`, then the connection closes.
    CutShort { body: Vec<u8>, announced: usize },
}

/// A one-thread HTTP/1.1 server for canned replies; any other path gets 404. It stops when
/// dropped, and by itself after 20 seconds in any case.
struct TestServer {
    base: String,
    stop: Arc<AtomicBool>,
    thread: Option<thread::JoinHandle<()>>,
}

impl TestServer {
    fn start(routes: HashMap<String, Reply>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stop = Arc::new(AtomicBool::new(false));
        let stop_flag = Arc::clone(&stop);
        let thread = thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(20);
            while !stop_flag.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((stream, _)) => serve(stream, &routes),
                    Err(_) => thread::sleep(Duration::from_millis(5)),
                }
            }
        });
        TestServer {
            base,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(stream: TcpStream, routes: &HashMap<String, Reply>) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Skip the headers.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) && line != "\r\n" {
        line.clear();
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_string();
    let mut stream = stream;
    let _ = match routes.get(&path) {
        Some(Reply::Body(body)) => respond(&mut stream, "200 OK", body.len(), body),
        Some(Reply::CutShort { body, announced }) => {
            respond(&mut stream, "200 OK", *announced, body)
        }
        None => respond(&mut stream, "404 Not Found", 9, b"not found"),
    };
    // Dropping the stream closes the connection.
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    length: usize,
    body: &[u8],
) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/octet-stream\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )?;
    stream.write_all(body)?;
    stream.flush()
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cnn-data-download-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

fn files_in(dir: &PathBuf) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

fn plan(mirrors: Vec<String>, files: Vec<(&str, String)>) -> DownloadPlan {
    DownloadPlan {
        mirrors,
        files: files
            .into_iter()
            .map(|(name, sha256)| RemoteFile {
                name: name.to_string(),
                sha256,
            })
            .collect(),
        timeout: Duration::from_secs(3),
        show_progress: false,
    }
}

/// A URL on which nothing listens: bind a port, then free it.
fn dead_mirror() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    drop(listener);
    format!("http://{address}/mnist/")
}

/// The four standard files of a tiny data set, as gzip bytes made by the crate's writer.
/// File names with their bytes.
type Files = Vec<(&'static str, Vec<u8>)>;

fn tiny_mnist() -> (Files, Array4<f32>, Array1<u8>) {
    let dir = scratch("tiny-source");
    let images = Array4::from_shape_fn((6, 1, 28, 28), |(i, _, r, c)| {
        ((i + r * c) % 256) as f32 / 255.0
    });
    let labels = Array1::from(vec![5, 0, 4, 1, 9, 2]);
    let names = [
        "train-images-idx3-ubyte.gz",
        "train-labels-idx1-ubyte.gz",
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ];
    write_idx_images(dir.join(names[0]), &images).unwrap();
    write_idx_labels(dir.join(names[1]), &labels).unwrap();
    write_idx_images(dir.join(names[2]), &images).unwrap();
    write_idx_labels(dir.join(names[3]), &labels).unwrap();
    let files = names
        .iter()
        .map(|&n| (n, fs::read(dir.join(n)).unwrap()))
        .collect();
    fs::remove_dir_all(dir).unwrap();
    (files, images, labels)
}

#[test]
fn downloads_verifies_and_loads_the_four_files() {
    let (files, images, labels) = tiny_mnist();
    let routes = files
        .iter()
        .map(|(name, bytes)| (format!("/mnist/{name}"), Reply::Body(bytes.clone())))
        .collect();
    let server = TestServer::start(routes);
    let dir = scratch("success");
    let plan = plan(
        vec![format!("{}/mnist/", server.base)],
        files.iter().map(|(n, b)| (*n, sha256_hex(b))).collect(),
    );
    download_files(&plan, &dir).unwrap();

    let mut expected: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
    expected.sort();
    assert_eq!(
        files_in(&dir),
        expected,
        "exactly the four files, no temporary left over"
    );
    for (name, bytes) in &files {
        assert_eq!(&fs::read(dir.join(name)).unwrap(), bytes, "{name}");
    }
    let data = Dataset::load_dir(&dir, "downloaded").unwrap();
    assert_eq!(data.train_images, images);
    assert_eq!(data.test_labels, labels);

    // Files already in place are not fetched again: with the server gone it still succeeds.
    drop(server);
    download_files(&plan, &dir).unwrap();
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn checksum_mismatch_is_rejected_and_leaves_no_file() {
    let body = b"these are not the bytes you are looking for".to_vec();
    let server = TestServer::start(HashMap::from([(
        "/m/file.gz".to_string(),
        Reply::Body(body.clone()),
    )]));
    let dir = scratch("checksum");
    let wanted = sha256_hex(b"the real file");
    let error = download_files(
        &plan(
            vec![format!("{}/m", server.base)],
            vec![("file.gz", wanted.clone())],
        ),
        &dir,
    )
    .unwrap_err();
    match &error {
        DataError::Download { file, attempts, .. } => {
            assert_eq!(file, "file.gz");
            assert_eq!(attempts.len(), 1);
            assert_eq!(attempts[0].url, format!("{}/m/file.gz", server.base));
            assert_eq!(
                attempts[0].reason,
                FailureReason::ChecksumMismatch {
                    expected: wanted,
                    found: sha256_hex(&body)
                }
            );
        }
        other => panic!("expected a download error, got {other:?}"),
    }
    assert!(error.to_string().contains("SHA-256"), "{error}");
    assert_eq!(files_in(&dir), Vec::<String>::new());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn connection_dropped_mid_file_leaves_no_file() {
    let full = vec![7u8; 100_000];
    let server = TestServer::start(HashMap::from([(
        "/m/big.gz".to_string(),
        Reply::CutShort {
            body: full[..40_000].to_vec(),
            announced: full.len(),
        },
    )]));
    let dir = scratch("dropped");
    let error = download_files(
        &plan(
            vec![format!("{}/m/", server.base)],
            vec![("big.gz", sha256_hex(&full))],
        ),
        &dir,
    )
    .unwrap_err();
    match &error {
        DataError::Download { attempts, .. } => match &attempts[0].reason {
            FailureReason::Interrupted {
                received, expected, ..
            } => {
                assert!(*received <= 40_000, "received {received}");
                assert_eq!(*expected, Some(100_000));
            }
            other => panic!("expected Interrupted, got {other:?}"),
        },
        other => panic!("expected a download error, got {other:?}"),
    }
    assert_eq!(files_in(&dir), Vec::<String>::new());
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn first_mirror_down_second_used() {
    let body = b"IDX bytes stand-in".to_vec();
    let server = TestServer::start(HashMap::from([(
        "/second/data.gz".to_string(),
        Reply::Body(body.clone()),
    )]));
    let dir = scratch("mirrors");
    let mirrors = vec![dead_mirror(), format!("{}/second/", server.base)];
    download_files(&plan(mirrors, vec![("data.gz", sha256_hex(&body))]), &dir).unwrap();
    assert_eq!(files_in(&dir), ["data.gz"]);
    assert_eq!(fs::read(dir.join("data.gz")).unwrap(), body);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn all_mirrors_down_says_what_was_tried_and_how_to_supply_files() {
    let server = TestServer::start(HashMap::new()); // answers 404 to everything
    let dir = scratch("all-down");
    let dead = dead_mirror();
    let mirrors = vec![dead.clone(), format!("{}/gone/", server.base)];
    let error = download_files(
        &plan(
            mirrors,
            vec![("train-images-idx3-ubyte.gz", "0".repeat(64))],
        ),
        &dir,
    )
    .unwrap_err();
    let DataError::Download { attempts, .. } = &error else {
        panic!("expected a download error, got {error:?}");
    };
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts
            .iter()
            .all(|a| matches!(a.reason, FailureReason::Unreachable(_))),
        "{attempts:?}"
    );
    let text = error.to_string();
    for expected in [
        format!("{dead}train-images-idx3-ubyte.gz"),
        format!("{}/gone/train-images-idx3-ubyte.gz", server.base),
        "MNIST_DIR".to_string(),
        "Source::Sample".to_string(),
    ] {
        assert!(
            text.contains(&expected),
            "message lacks {expected:?}:\n{text}"
        );
    }
    assert_eq!(files_in(&dir), Vec::<String>::new());
    fs::remove_dir_all(dir).unwrap();
}
