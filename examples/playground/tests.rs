//! The playground's tests: a real server on a free port, spoken to over TCP with hand-written
//! HTTP, its answers checked against the network and the plain-loop convolution of
//! `multichannel`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::Duration;

use cnn_from_scratch::data::Dataset;
use cnn_from_scratch::full_cnn::trainer::Trainer;
use cnn_from_scratch::full_cnn::{Adam, Network, SimpleConvNetConfig, simple_conv_net, softmax};
use cnn_from_scratch::multichannel::conv_filter_bank;
use ndarray::{Array3, Array4, s};
use serde_json::{Value, json};

use crate::api::{App, TestDigits};
use crate::http::{Limits, Running, serve};
use crate::model::Model;

/// One trained network and one server for all tests (they run in parallel against it).
struct Fixture {
    addr: SocketAddr,
    app: Arc<App>,
    net: Network,
    data: Dataset,
    _server: Running,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let data = Dataset::sample();
        let mut net = simple_conv_net(&SimpleConvNetConfig::default(), 0).unwrap();
        // The playground's recipe (batches of 50, Adam at 0.002), one epoch: ~90% right.
        let mut trainer = Trainer {
            epochs: 1,
            batch_size: 50,
            optimizer: Box::new(Adam::new(0.002, 0.9, 0.999)),
            eval_subset: Some(0),
            show_progress: false,
            ..Trainer::default()
        };
        trainer.fit(&mut net, &data).unwrap();
        let model = Model::from_simple_conv_net(net.clone(), "trained by the tests".into());
        let digits = TestDigits {
            source: "MNIST sample (embedded), test split".into(),
            images: data.test_images.clone(),
            labels: data.test_labels.clone(),
        };
        let app = Arc::new(App::new(vec![model], digits));
        let server = start(&app, Limits::default());
        Fixture {
            addr: server.addr(),
            app,
            net,
            data,
            _server: server,
        }
    })
}

fn start(app: &Arc<App>, limits: Limits) -> Running {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let app = Arc::clone(app);
    serve(
        listener,
        limits,
        Arc::new(move |r: &crate::http::Request| app.handle(r)),
    )
    .unwrap()
}

/// One parsed HTTP response.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// Sends `raw` on a fresh connection, reads until the server closes it, and parses every
/// response on it (more than one for pipelined requests); a `100 Continue` is skipped.
fn exchange_all(addr: SocketAddr, raw: &[u8]) -> Vec<Reply> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    // A server that answers early (413) may stop reading; what it sent back still counts.
    stream.write_all(raw).ok();
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes).ok();
    let mut replies = Vec::new();
    let mut rest = &bytes[..];
    while !rest.is_empty() {
        let end = rest
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or_else(|| panic!("no end of head in {:?}", String::from_utf8_lossy(rest)));
        let head = std::str::from_utf8(&rest[..end]).unwrap();
        let mut lines = head.split("\r\n");
        let status: u16 = lines
            .next()
            .unwrap()
            .split(' ')
            .nth(1)
            .unwrap()
            .parse()
            .unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.trim().to_string(), v.trim().to_string())
            })
            .collect();
        rest = &rest[end + 4..];
        if status == 100 {
            continue;
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().unwrap())
            .expect("every response has a Content-Length");
        let body = String::from_utf8(rest[..length].to_vec()).unwrap();
        rest = &rest[length..];
        replies.push(Reply {
            status,
            headers,
            body,
        });
    }
    replies
}

fn exchange(addr: SocketAddr, raw: &[u8]) -> Reply {
    let mut replies = exchange_all(addr, raw);
    assert_eq!(replies.len(), 1, "{replies:?}");
    replies.remove(0)
}

fn request(method: &str, path: &str, body: &[u8], close: bool) -> Vec<u8> {
    let mut raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{}\r\n",
        body.len(),
        if close { "Connection: close\r\n" } else { "" }
    )
    .into_bytes();
    raw.extend_from_slice(body);
    raw
}

fn post(path: &str, body: &Value) -> Reply {
    exchange(
        fixture().addr,
        &request("POST", path, body.to_string().as_bytes(), true),
    )
}

fn get(path: &str) -> Reply {
    exchange(fixture().addr, &request("GET", path, b"", true))
}

fn pixels_of(data: &Dataset, i: usize) -> Vec<f32> {
    data.test_images
        .slice(s![i, 0, .., ..])
        .iter()
        .copied()
        .collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect()
}

/// The network's own answer for one image: `predict` on a batch of one, then softmax.
fn expected_probabilities(pixels: &[f32]) -> (usize, Vec<f32>) {
    let x = Array4::from_shape_vec((1, 1, 28, 28), pixels.to_vec()).unwrap();
    let scores = fixture().net.clone().predict(x.view());
    let p = softmax(scores.view()).row(0).to_vec();
    let label = (0..10).fold(0, |best, k| if p[k] > p[best] { k } else { best });
    (label, p)
}

/// ReLU feature maps and 2x2 max-pooled maps by plain loops (`multichannel`'s convolution).
fn expected_maps(pixels: &[f32]) -> (Array3<f32>, Array3<f32>) {
    let params = fixture().net.params();
    let image = Array3::from_shape_vec((1, 28, 28), pixels.to_vec()).unwrap();
    let w1 = params["W1"]
        .clone()
        .into_dimensionality::<ndarray::Ix4>()
        .unwrap();
    let b1 = params["b1"]
        .clone()
        .into_dimensionality::<ndarray::Ix1>()
        .unwrap();
    let conv = conv_filter_bank(&image, &w1, &b1, 0, 1)
        .unwrap()
        .mapv(|v| v.max(0.0));
    let (f, h, w) = conv.dim();
    let pooled = Array3::from_shape_fn((f, h / 2, w / 2), |(k, i, j)| {
        let window = conv.slice(s![k, 2 * i..2 * i + 2, 2 * j..2 * j + 2]);
        window.fold(f32::NEG_INFINITY, |m, &v| m.max(v))
    });
    (conv, pooled)
}

fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: lengths");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!(
            (g - w).abs() <= 1e-4 * (1.0 + w.abs()),
            "{what}[{i}]: got {g}, want {w}"
        );
    }
}

#[test]
fn predictions_for_real_test_digits_are_the_networks_own() {
    let f = fixture();
    let mut correct = 0;
    for i in 0..60 {
        let pixels = pixels_of(&f.data, i);
        let reply = post("/api/predict", &json!({ "pixels": pixels }));
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.header("content-type"), Some("application/json"));
        let answer = reply.json();
        let (label, probabilities) = expected_probabilities(&pixels);
        assert_eq!(answer["label"], label, "digit {i}");
        assert_eq!(
            floats(&answer["probabilities"]),
            probabilities,
            "digit {i}: bit for bit"
        );
        assert_eq!(answer["network"], "simple_conv_net");
        assert!(answer.get("maps").is_none(), "maps only when asked for");
        correct += usize::from(label == f.data.test_labels[i] as usize);
    }
    // One epoch on the sample already gets most of them right: the server runs a trained net.
    assert!(correct >= 45, "{correct} of 60 right");
}

#[test]
fn feature_maps_match_the_plain_loop_convolution() {
    let f = fixture();
    for i in [0, 7, 42] {
        let pixels = pixels_of(&f.data, i);
        let answer = post("/api/predict", &json!({ "pixels": pixels, "maps": true })).json();
        let maps = &answer["maps"];
        assert_eq!(maps["conv_size"], json!([24, 24]));
        assert_eq!(maps["pooled_size"], json!([12, 12]));
        let (conv, pooled) = expected_maps(&pixels);
        for k in 0..30 {
            let want: Vec<f32> = conv.slice(s![k, .., ..]).iter().copied().collect();
            assert_close(
                &floats(&maps["conv"][k]),
                &want,
                &format!("digit {i} conv map {k}"),
            );
            let want: Vec<f32> = pooled.slice(s![k, .., ..]).iter().copied().collect();
            assert_close(
                &floats(&maps["pooled"][k]),
                &want,
                &format!("digit {i} pooled map {k}"),
            );
        }
        let strength: Vec<f32> = (0..30)
            .map(|k| conv.slice(s![k, .., ..]).mean().unwrap())
            .collect();
        assert_close(&floats(&maps["strength"]), &strength, "strength");
        // The marked maps are the five strongest, strongest first.
        let strongest: Vec<usize> = maps["strongest"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(strongest.len(), 5);
        let weakest_marked = strength[*strongest.last().unwrap()];
        for k in (0..30).filter(|k| !strongest.contains(k)) {
            assert!(
                strength[k] <= weakest_marked + 1e-5,
                "map {k} is stronger than a marked one"
            );
        }
        assert!(
            strongest
                .windows(2)
                .all(|w| strength[w[0]] >= strength[w[1]] - 1e-5)
        );
        // The prediction with maps is the same prediction.
        assert_eq!(
            floats(&answer["probabilities"]),
            expected_probabilities(&pixels).1
        );
    }
}

#[test]
fn the_shift_experiment_moves_the_input_and_measures_the_change() {
    let f = fixture();
    let pixels = pixels_of(&f.data, 3);
    let image = Array3::from_shape_vec((1, 28, 28), pixels.clone()).unwrap();
    for (dx, dy) in [(1i64, 0i64), (-2, 0), (0, 3), (0, -1), (2, -3), (0, 0)] {
        let reply = post(
            "/api/shift",
            &json!({ "pixels": pixels, "dx": dx, "dy": dy }),
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
        let answer = reply.json();
        // The moved image, by slicing: out[y][x] = in[y - dy][x - dx], zeros where that is outside.
        let mut moved = Array3::<f32>::zeros((1, 28, 28));
        let (x0, y0) = (dx.max(0) as usize, dy.max(0) as usize);
        let (w, h) = (
            28 - dx.unsigned_abs() as usize,
            28 - dy.unsigned_abs() as usize,
        );
        let (sx, sy) = ((-dx).max(0) as usize, (-dy).max(0) as usize);
        moved
            .slice_mut(s![0, y0..y0 + h, x0..x0 + w])
            .assign(&image.slice(s![0, sy..sy + h, sx..sx + w]));
        let moved: Vec<f32> = moved.iter().copied().collect();
        assert_eq!(floats(&answer["pixels"]), moved, "shift ({dx}, {dy})");

        let (label_before, before) = expected_probabilities(&pixels);
        let (label_after, after) = expected_probabilities(&moved);
        assert_eq!(floats(&answer["before"]["probabilities"]), before);
        assert_eq!(floats(&answer["after"]["probabilities"]), after);
        assert_eq!(answer["label_changed"], label_before != label_after);
        let tv: f32 = 0.5
            * before
                .iter()
                .zip(&after)
                .map(|(b, a)| (a - b).abs())
                .sum::<f32>();
        assert_close(
            &[answer["probability_change"].as_f64().unwrap() as f32],
            &[tv],
            "probability change",
        );

        let (conv_b, pooled_b) = expected_maps(&pixels);
        let (conv_a, pooled_a) = expected_maps(&moved);
        let change = |b: &Array3<f32>, a: &Array3<f32>| {
            let diff = (a - b).mapv(|v| v * v).sum().sqrt();
            diff / b.mapv(|v| v * v).sum().sqrt()
        };
        let got = |key: &str| answer[key].as_f64().unwrap() as f32;
        assert_close(
            &[got("conv_change")],
            &[change(&conv_b, &conv_a)],
            "conv change",
        );
        assert_close(
            &[got("pooled_change")],
            &[change(&pooled_b, &pooled_a)],
            "pooled change",
        );
        if (dx, dy) == (0, 0) {
            assert_eq!(got("conv_change"), 0.0);
        }
        assert!(
            answer["after"]["maps"]["conv"].is_array(),
            "the page shows the moved maps"
        );
    }
    // A blank image has no change to measure relative to.
    let blank = post(
        "/api/shift",
        &json!({ "pixels": vec![0.0; 784], "dx": 1, "dy": 0 }),
    )
    .json();
    assert!(blank["conv_change"].is_null() || blank["conv_change"].as_f64() == Some(0.0));
}

#[test]
fn a_test_digit_comes_with_its_label() {
    let f = fixture();
    let answer = get("/api/test-digit?index=17").json();
    assert_eq!(answer["index"], 17);
    assert_eq!(answer["label"], f.data.test_labels[17]);
    assert_eq!(floats(&answer["pixels"]), pixels_of(&f.data, 17));
    for _ in 0..5 {
        let answer = get("/api/test-digit").json();
        let i = answer["index"].as_u64().unwrap() as usize;
        assert!(i < f.data.test_labels.len());
        assert_eq!(answer["label"], f.data.test_labels[i]);
        assert_eq!(floats(&answer["pixels"]), pixels_of(&f.data, i));
    }
}

#[test]
fn info_lists_the_network_and_its_filters() {
    let f = fixture();
    let answer = get("/api/info").json();
    let nets = answer["networks"].as_array().unwrap();
    assert_eq!(nets.len(), 1);
    assert_eq!(nets[0]["id"], "simple_conv_net");
    assert_eq!(nets[0]["filters"]["size"], json!([5, 5]));
    let values = nets[0]["filters"]["values"].as_array().unwrap();
    assert_eq!(values.len(), 30);
    let w1 = f.net.params()["W1"].clone();
    for (got, filter) in values.iter().zip(w1.outer_iter()) {
        let want: Vec<f32> = filter.iter().copied().collect(); // one channel
        assert_eq!(floats(got), want);
    }
    let accuracy = nets[0]["test_accuracy"].as_f64().unwrap() as f32;
    assert_eq!(accuracy, f.app.accuracies()[0].1);
    assert_eq!(answer["test_digits"], 1000);
    assert_eq!(answer["max_shift"], 3);
}

#[test]
fn the_page_is_served_and_needs_nothing_from_elsewhere() {
    let reply = get("/");
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    assert!(reply.body.contains("<canvas id=\"draw\""));
    for outside in [
        "src=\"http",
        "href=\"http",
        "src=\"//",
        "href=\"//",
        "@import",
        "url(http",
    ] {
        assert!(
            !reply.body.contains(outside),
            "the page loads something from elsewhere: {outside}"
        );
    }
}

/// A request that should fail, and the status it should fail with.
struct Bad {
    what: &'static str,
    raw: Vec<u8>,
    status: u16,
}

fn bad_requests() -> Vec<Bad> {
    let f = fixture();
    let good: Vec<f32> = pixels_of(&f.data, 0);
    let with = |change: &dyn Fn(&mut Vec<Value>)| {
        let mut pixels: Vec<Value> = good.iter().map(|&v| json!(v)).collect();
        change(&mut pixels);
        json!({ "pixels": pixels }).to_string()
    };
    let predict = |body: &str| request("POST", "/api/predict", body.as_bytes(), true);
    let pixels_text = json!(good).to_string();
    let mut big = format!("{{\"pixels\": {pixels_text}, \"network\": \"");
    big.push_str(&"x".repeat(70 * 1024));
    big.push_str("\"}");
    vec![
        Bad { what: "not JSON", raw: predict("{pixels: [0.5]"), status: 400 },
        Bad { what: "empty body", raw: predict(""), status: 400 },
        Bad { what: "truncated JSON", raw: predict(&format!("{{\"pixels\": {}", &pixels_text[..100])), status: 400 },
        Bad { what: "NaN (not JSON)", raw: predict(&with(&|p| p[5] = json!("__NAN__")).replace("\"__NAN__\"", "NaN")), status: 400 },
        Bad { what: "Infinity (not JSON)", raw: predict(&with(&|p| p[5] = json!("__INF__")).replace("\"__INF__\"", "Infinity")), status: 400 },
        Bad { what: "a number too large for any float", raw: predict(&with(&|p| p[5] = json!("__BIG__")).replace("\"__BIG__\"", "1e400")), status: 400 },
        Bad { what: "invalid UTF-8", raw: request("POST", "/api/predict", b"{\"pixels\": [\xff]}", true), status: 400 },
        Bad { what: "783 pixels", raw: predict(&with(&|p| { p.pop(); })), status: 422 },
        Bad { what: "785 pixels", raw: predict(&with(&|p| p.push(json!(0.0)))), status: 422 },
        Bad { what: "no pixels", raw: predict("{\"pixels\": []}"), status: 422 },
        Bad { what: "a pixel of 1.5", raw: predict(&with(&|p| p[100] = json!(1.5))), status: 422 },
        Bad { what: "a pixel of -0.01", raw: predict(&with(&|p| p[783] = json!(-0.01))), status: 422 },
        Bad { what: "a pixel of 1e30", raw: predict(&with(&|p| p[0] = json!(1e30))), status: 422 },
        Bad { what: "a null pixel", raw: predict(&with(&|p| p[3] = Value::Null)), status: 422 },
        Bad { what: "a string pixel", raw: predict(&with(&|p| p[3] = json!("0.5"))), status: 422 },
        Bad { what: "pixels not a list", raw: predict("{\"pixels\": 0.5}"), status: 422 },
        Bad { what: "a list, not an object", raw: predict(&pixels_text), status: 422 },
        Bad { what: "missing pixels", raw: predict("{\"maps\": true}"), status: 422 },
        Bad { what: "an unknown field", raw: predict(&format!("{{\"pixels\": {pixels_text}, \"map\": true}}")), status: 422 },
        Bad { what: "an unknown network", raw: predict(&format!("{{\"pixels\": {pixels_text}, \"network\": \"lenet\"}}")), status: 422 },
        Bad { what: "maps not a boolean", raw: predict(&format!("{{\"pixels\": {pixels_text}, \"maps\": 1}}")), status: 422 },
        Bad { what: "a shift of 4", raw: request("POST", "/api/shift", format!("{{\"pixels\": {pixels_text}, \"dx\": 4, \"dy\": 0}}").as_bytes(), true), status: 422 },
        Bad { what: "a shift of -9", raw: request("POST", "/api/shift", format!("{{\"pixels\": {pixels_text}, \"dx\": 0, \"dy\": -9}}").as_bytes(), true), status: 422 },
        Bad { what: "a shift of 1.5", raw: request("POST", "/api/shift", format!("{{\"pixels\": {pixels_text}, \"dx\": 1.5, \"dy\": 0}}").as_bytes(), true), status: 422 },
        Bad { what: "a shift without dy", raw: request("POST", "/api/shift", format!("{{\"pixels\": {pixels_text}, \"dx\": 1}}").as_bytes(), true), status: 422 },
        Bad { what: "a body over 64 KiB", raw: predict(&big), status: 413 },
        Bad {
            what: "a body declared as a petabyte, never sent",
            raw: b"POST /api/predict HTTP/1.1\r\nHost: t\r\nContent-Length: 1000000000000000\r\n\r\n{".to_vec(),
            status: 413,
        },
        Bad {
            what: "a length with more digits than any number",
            raw: format!("POST /api/predict HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n", "9".repeat(40)).into_bytes(),
            status: 413,
        },
        Bad { what: "a Content-Length that is not a number", raw: b"POST /api/predict HTTP/1.1\r\nContent-Length: -5\r\n\r\n".to_vec(), status: 400 },
        Bad {
            what: "two different Content-Lengths",
            raw: b"POST /api/predict HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}".to_vec(),
            status: 400,
        },
        Bad {
            what: "a chunked body",
            raw: b"POST /api/predict HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n".to_vec(),
            status: 411,
        },
        Bad { what: "an unknown path", raw: request("GET", "/api/nothing", b"", true), status: 404 },
        Bad { what: "a path outside the site", raw: request("GET", "/../../etc/passwd", b"", true), status: 404 },
        Bad { what: "GET on a POST route", raw: request("GET", "/api/predict", b"", true), status: 405 },
        Bad { what: "POST on a GET route", raw: request("POST", "/api/info", b"{}", true), status: 405 },
        Bad { what: "DELETE on the page", raw: request("DELETE", "/", b"", true), status: 405 },
        Bad { what: "a made-up method", raw: request("BREW", "/api/predict", b"", true), status: 405 },
        Bad { what: "a lower-case method", raw: request("post", "/api/predict", b"{}", true), status: 405 },
        Bad { what: "a test digit out of range", raw: request("GET", "/api/test-digit?index=1000", b"", true), status: 404 },
        Bad { what: "a test digit index that is no number", raw: request("GET", "/api/test-digit?index=-1", b"", true), status: 400 },
        Bad { what: "an unknown query", raw: request("GET", "/api/test-digit?label=3", b"", true), status: 400 },
        Bad { what: "not HTTP at all", raw: b"hello there\r\n\r\n".to_vec(), status: 400 },
        Bad { what: "a request line with a bad version", raw: b"GET / HTTP/7\r\n\r\n".to_vec(), status: 400 },
        Bad { what: "binary garbage", raw: (0..=255u8).cycle().take(3000).chain(*b"\r\n\r\n").collect(), status: 400 },
        Bad {
            what: "headers over 16 KiB",
            raw: format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(20 * 1024)).into_bytes(),
            status: 431,
        },
        Bad {
            what: "a head that never ends, over 16 KiB",
            raw: format!("GET /{}", "a".repeat(40 * 1024)).into_bytes(),
            status: 431,
        },
        Bad {
            what: "more than 64 headers",
            raw: format!("GET / HTTP/1.1\r\n{}\r\n", (0..70).map(|i| format!("X-{i}: 1\r\n")).collect::<String>()).into_bytes(),
            status: 431,
        },
        Bad { what: "an unknown expectation", raw: b"POST /api/predict HTTP/1.1\r\nExpect: magic\r\nContent-Length: 2\r\n\r\n{}".to_vec(), status: 417 },
    ]
}

#[test]
fn every_bad_request_gets_its_status_and_a_one_line_json_error() {
    let f = fixture();
    for bad in bad_requests() {
        let reply = exchange(f.addr, &bad.raw);
        assert_eq!(reply.status, bad.status, "{}: {}", bad.what, reply.body);
        assert_eq!(
            reply.header("content-type"),
            Some("application/json"),
            "{}",
            bad.what
        );
        assert_eq!(
            reply.body.trim_end().lines().count(),
            1,
            "{}: {:?}",
            bad.what,
            reply.body
        );
        let error = reply.json();
        let message = error["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{}: {error}", bad.what));
        assert!(!message.is_empty(), "{}", bad.what);
        if reply.status == 405 {
            assert!(
                matches!(reply.header("allow"), Some("GET" | "POST")),
                "{}",
                bad.what
            );
        }
    }
    // After all that, the server still answers, and correctly.
    let pixels = pixels_of(&f.data, 5);
    let answer = post("/api/predict", &json!({ "pixels": pixels })).json();
    assert_eq!(
        floats(&answer["probabilities"]),
        expected_probabilities(&pixels).1
    );
}

#[test]
fn concurrent_requests_from_eight_threads_are_all_answered() {
    let f = fixture();
    let expected: Vec<usize> = (0..40)
        .map(|i| expected_probabilities(&pixels_of(&f.data, i)).0)
        .collect();
    let expected = Arc::new(expected);
    let threads: Vec<_> = (0..8)
        .map(|t| {
            let expected = Arc::clone(&expected);
            thread::spawn(move || {
                let mut answered = 0;
                for r in 0..25 {
                    let i = (t * 25 + r) % 40;
                    let maps = r % 5 == 0;
                    let body = json!({ "pixels": pixels_of(&fixture().data, i), "maps": maps });
                    let reply = post("/api/predict", &body);
                    assert_eq!(reply.status, 200, "{}", reply.body);
                    let answer = reply.json();
                    assert_eq!(answer["label"], expected[i]);
                    assert_eq!(answer["maps"].is_object(), maps);
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    let answered: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    assert_eq!(answered, 200);
}

#[test]
fn one_connection_carries_several_requests() {
    let f = fixture();
    let body = json!({ "pixels": pixels_of(&f.data, 2) }).to_string();
    // Three requests back to back on one connection (the last one closes it), one of them
    // with `Expect: 100-continue` as curl sends for larger bodies.
    let mut raw = request("POST", "/api/predict", body.as_bytes(), false);
    raw.extend(request("GET", "/api/test-digit?index=4", b"", false));
    raw.extend(
        format!(
            "POST /api/predict HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    );
    let replies = exchange_all(f.addr, &raw);
    assert_eq!(replies.len(), 3, "{replies:?}");
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(replies[0].header("connection"), Some("keep-alive"));
    assert_eq!(replies[2].header("connection"), Some("close"));
    assert_eq!(
        replies[0].json()["probabilities"],
        replies[2].json()["probabilities"]
    );
    assert_eq!(replies[1].json()["index"], 4);
}

#[test]
fn slow_clients_time_out_and_surplus_connections_are_turned_away() {
    let f = fixture();
    let limits = Limits {
        max_connections: 2,
        io_timeout: Duration::from_millis(300),
        idle_timeout: Duration::from_secs(30),
        ..Limits::default()
    };
    let server = start(&f.app, limits);
    let addr = server.addr();

    // A request that starts and stops halfway: 408 once the time is up.
    let reply = exchange(
        addr,
        b"POST /api/predict HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"pix",
    );
    assert_eq!(reply.status, 408, "{}", reply.body);
    let reply = exchange(addr, b"GET /api/info HTTP/1.1\r\nHost: t");
    assert_eq!(reply.status, 408, "{}", reply.body);

    // Two idle connections fill the server; the third is answered 503 at once. One request
    // on each proves it is open (a bounded number of tries: the timed-out connections above
    // may still be closing).
    let open_idle = || {
        for _ in 0..100 {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(30)))
                .unwrap();
            stream
                .write_all(&request("GET", "/api/test-digit?index=1", b"", false))
                .unwrap();
            let mut first = [0u8; 12];
            stream.read_exact(&mut first).unwrap();
            if &first == b"HTTP/1.1 200" {
                return stream;
            }
            thread::sleep(Duration::from_millis(20));
        }
        panic!("the server never accepted an idle connection");
    };
    let idle = [open_idle(), open_idle()];
    let reply = exchange(addr, &request("GET", "/api/info", b"", true));
    assert_eq!(reply.status, 503, "{}", reply.body);
    drop(idle);
    // Once they are closed the server takes new connections again (their threads notice
    // the close at once; a bounded number of tries allows for the thread to finish).
    let status = (0..100)
        .map(|_| {
            thread::sleep(Duration::from_millis(20));
            exchange(addr, &request("GET", "/api/test-digit?index=1", b"", true)).status
        })
        .find(|&s| s == 200);
    assert_eq!(status, Some(200));
}
