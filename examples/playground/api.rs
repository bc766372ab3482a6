//! The playground's routes: the page, and the JSON API it calls (documented in `main.rs`).
//!
//! Every handler checks its input completely before the network sees it: JSON that does not
//! parse is a 400, JSON that parses but asks for something impossible (783 pixels, a pixel of
//! 1.5, a shift of 9) is a 422, each with a one-line `{"error": "..."}` saying what was wrong.

use std::sync::Mutex;

use ndarray::{Array1, Array3, Array4, Axis, s};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::http::{Request, Response};
use crate::model::{FeatureMaps, Model, PIXELS, Pixels, Prediction, SIDE};

/// The page, plain HTML and JavaScript, compiled into the binary.
const PAGE: &str = include_str!("page.html");
/// The largest shift the shift experiment offers, in pixels, each way.
pub const MAX_SHIFT: i64 = 3;
/// How many of the strongest feature maps a prediction marks.
pub const STRONGEST: usize = 5;

/// Digits to show with their labels (the test split of a data set).
pub struct TestDigits {
    /// Where they come from, e.g. "MNIST sample (embedded), test split".
    pub source: String,
    /// `(N, 1, 28, 28)`, values in `0..=1`.
    pub images: Array4<f32>,
    pub labels: Array1<u8>,
}

/// One network, with spare copies so that requests on several threads need not wait for
/// each other (the network's forward pass keeps scratch state, so it takes `&mut`).
struct Slot {
    template: Model,
    spare: Mutex<Vec<Model>>,
    test_accuracy: f32,
}

impl Slot {
    fn with_model<R>(&self, f: impl FnOnce(&mut Model) -> R) -> R {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let mut model = spare.unwrap_or_else(|| self.template.clone());
        let result = f(&mut model);
        self.spare
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(model);
        result
    }
}

/// Everything the server answers from.
pub struct App {
    slots: Vec<Slot>,
    digits: TestDigits,
}

impl App {
    /// An app serving `models` (the first is the default) and `digits`; measures each
    /// model's accuracy on the digits once.
    pub fn new(models: Vec<Model>, digits: TestDigits) -> App {
        assert!(!models.is_empty(), "App::new: at least one model");
        let slots = models
            .into_iter()
            .map(|mut model| Slot {
                test_accuracy: model.accuracy(&digits.images, &digits.labels),
                template: model,
                spare: Mutex::new(Vec::new()),
            })
            .collect();
        App { slots, digits }
    }

    /// Test accuracy of each model, by id, as measured in [`App::new`].
    pub fn accuracies(&self) -> Vec<(&'static str, f32)> {
        self.slots
            .iter()
            .map(|s| (s.template.id(), s.test_accuracy))
            .collect()
    }

    /// Answers one request.
    pub fn handle(&self, request: &Request) -> Response {
        let result = match (request.method.as_str(), request.path.as_str()) {
            ("GET", "/" | "/index.html") => Ok(Response {
                status: 200,
                content_type: "text/html; charset=utf-8",
                body: PAGE.as_bytes().to_vec(),
                allow: None,
            }),
            ("GET", "/api/info") => self.info(),
            ("POST", "/api/predict") => self.predict(&request.body),
            ("POST", "/api/shift") => self.shift(&request.body),
            ("GET", "/api/test-digit") => self.test_digit(&request.query),
            (_, "/" | "/index.html" | "/api/info" | "/api/test-digit") => {
                Err(not_allowed(request, "GET"))
            }
            (_, "/api/predict" | "/api/shift") => Err(not_allowed(request, "POST")),
            _ => Err(Response::error(
                404,
                &format!("no such page: {}", one_line(&request.path)),
            )),
        };
        result.unwrap_or_else(|error| error)
    }

    fn info(&self) -> Result<Response, Response> {
        let networks = self
            .slots
            .iter()
            .map(|slot| {
                let model = &slot.template;
                NetworkInfo {
                    id: model.id(),
                    name: model.name(),
                    origin: model.origin().to_string(),
                    architecture: model.architecture(),
                    test_accuracy: slot.test_accuracy,
                    filters: model.filters().map(|f| {
                        let (_, _, h, w) = f.dim();
                        FiltersJson {
                            size: [h, w],
                            // One flat, row-major list per filter (channel 0: the input is grey).
                            values: f
                                .axis_iter(Axis(0))
                                .map(|filter| filter.slice(s![0, .., ..]).iter().copied().collect())
                                .collect(),
                        }
                    }),
                }
            })
            .collect();
        ok(&InfoResponse {
            networks,
            test_digits: self.digits.labels.len(),
            test_digits_source: &self.digits.source,
            max_shift: MAX_SHIFT,
            strongest: STRONGEST,
        })
    }

    fn predict(&self, body: &[u8]) -> Result<Response, Response> {
        let request: PredictRequest = parse_json(body)?;
        let pixels = check_pixels(&request.pixels)?;
        let slot = self.slot(request.network.as_deref())?;
        let answer = slot.with_model(|model| {
            let prediction = model.probabilities(&pixels);
            let maps = request
                .maps
                .then(|| model.maps(&pixels).map(MapsJson::from));
            PredictResponse::new(model.id(), prediction, maps)
        });
        ok(&answer)
    }

    fn shift(&self, body: &[u8]) -> Result<Response, Response> {
        let request: ShiftRequest = parse_json(body)?;
        let pixels = check_pixels(&request.pixels)?;
        for (name, value) in [("dx", request.dx), ("dy", request.dy)] {
            if value.abs() > MAX_SHIFT {
                return Err(Response::error(
                    422,
                    &format!(
                        "{name} is {value}; shifts go from -{MAX_SHIFT} to {MAX_SHIFT} pixels"
                    ),
                ));
            }
        }
        let slot = self.slot(request.network.as_deref())?;
        let shifted = shift_pixels(&pixels, request.dx, request.dy);
        let answer = slot.with_model(|model| {
            let before = model.probabilities(&pixels);
            let after = model.probabilities(&shifted);
            let maps_before = model.maps(&pixels);
            let maps_after = model.maps(&shifted);
            let (conv_change, pooled_change) = match (&maps_before, &maps_after) {
                (Some(b), Some(a)) => (
                    relative_change(&b.conv, &a.conv),
                    relative_change(&b.pooled, &a.pooled),
                ),
                _ => (None, None),
            };
            let probability_change = 0.5
                * before
                    .probabilities
                    .iter()
                    .zip(&after.probabilities)
                    .map(|(b, a)| (a - b).abs())
                    .sum::<f32>();
            ShiftResponse {
                dx: request.dx,
                dy: request.dy,
                pixels: shifted.to_vec(),
                label_changed: before.label != after.label,
                conv_change,
                pooled_change,
                probability_change,
                before: PredictResponse::new(model.id(), before, None),
                after: PredictResponse::new(
                    model.id(),
                    after,
                    Some(maps_after.map(MapsJson::from)),
                ),
            }
        });
        ok(&answer)
    }

    fn test_digit(&self, query: &str) -> Result<Response, Response> {
        let count = self.digits.labels.len();
        let index = match query.split_once('=') {
            _ if query.is_empty() => rand::random_range(0..count),
            Some(("index", value)) => value.parse::<usize>().map_err(|_| {
                Response::error(
                    400,
                    &format!("index must be a whole number, got {:?}", one_line(value)),
                )
            })?,
            _ => {
                return Err(Response::error(
                    400,
                    &format!(
                        "unknown query {:?}; the only one is ?index=N",
                        one_line(query)
                    ),
                ));
            }
        };
        if index >= count {
            return Err(Response::error(
                404,
                &format!("no test digit {index}: there are {count}, numbered from 0"),
            ));
        }
        let pixels = self
            .digits
            .images
            .slice(s![index, 0, .., ..])
            .iter()
            .copied()
            .collect();
        ok(&TestDigitResponse {
            index,
            label: self.digits.labels[index],
            source: &self.digits.source,
            pixels,
        })
    }

    /// The model a request names (`None`: the first).
    fn slot(&self, id: Option<&str>) -> Result<&Slot, Response> {
        let Some(id) = id else {
            return Ok(&self.slots[0]);
        };
        self.slots
            .iter()
            .find(|s| s.template.id() == id)
            .ok_or_else(|| {
                let known: Vec<_> = self.slots.iter().map(|s| s.template.id()).collect();
                Response::error(
                    422,
                    &format!(
                        "unknown network {:?}; this server has {}",
                        one_line(id),
                        known.join(", ")
                    ),
                )
            })
    }
}

/// `image` moved `dx` pixels right and `dy` down (negative: left, up); pixels that enter
/// are background, pixels pushed over the edge are lost.
pub fn shift_pixels(image: &Pixels, dx: i64, dy: i64) -> Pixels {
    let mut out = [0.0; PIXELS];
    let side = SIDE as i64;
    for y in 0..side {
        for x in 0..side {
            let (from_x, from_y) = (x - dx, y - dy);
            if (0..side).contains(&from_x) && (0..side).contains(&from_y) {
                out[(y * side + x) as usize] = image[(from_y * side + from_x) as usize];
            }
        }
    }
    out
}

/// `‖after − before‖ / ‖before‖` over all maps (Frobenius norms), as in the pooling
/// section's shift experiment; `None` if `before` is all zeros.
pub fn relative_change(before: &Array3<f32>, after: &Array3<f32>) -> Option<f32> {
    let norm = before.iter().map(|v| v * v).sum::<f32>().sqrt();
    let diff = before
        .iter()
        .zip(after)
        .map(|(b, a)| (a - b) * (a - b))
        .sum::<f32>()
        .sqrt();
    (norm > 0.0).then(|| diff / norm)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictRequest {
    pixels: Vec<f64>,
    #[serde(default)]
    maps: bool,
    #[serde(default)]
    network: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShiftRequest {
    pixels: Vec<f64>,
    dx: i64,
    dy: i64,
    #[serde(default)]
    network: Option<String>,
}

#[derive(Serialize)]
struct InfoResponse<'a> {
    networks: Vec<NetworkInfo>,
    test_digits: usize,
    test_digits_source: &'a str,
    max_shift: i64,
    strongest: usize,
}

#[derive(Serialize)]
struct NetworkInfo {
    id: &'static str,
    name: &'static str,
    origin: String,
    architecture: String,
    test_accuracy: f32,
    /// `null` for a network without a convolution layer.
    filters: Option<FiltersJson>,
}

#[derive(Serialize)]
struct FiltersJson {
    size: [usize; 2],
    values: Vec<Vec<f32>>,
}

#[derive(Serialize)]
struct PredictResponse {
    network: &'static str,
    label: usize,
    probabilities: Vec<f32>,
    scores: Vec<f32>,
    /// Absent unless asked for; `null` for a network without feature maps.
    #[serde(skip_serializing_if = "Option::is_none")]
    maps: Option<Option<MapsJson>>,
}

impl PredictResponse {
    fn new(network: &'static str, p: Prediction, maps: Option<Option<MapsJson>>) -> Self {
        PredictResponse {
            network,
            label: p.label,
            probabilities: p.probabilities,
            scores: p.scores,
            maps,
        }
    }
}

#[derive(Serialize)]
struct MapsJson {
    conv_size: [usize; 2],
    pooled_size: [usize; 2],
    /// One flat, row-major list per filter: after the convolution and ReLU.
    conv: Vec<Vec<f32>>,
    /// The same after max pooling.
    pooled: Vec<Vec<f32>>,
    /// Mean of each ReLU map: how strongly the filter responds to this input.
    strength: Vec<f32>,
    /// Indices of the [`STRONGEST`] strongest maps, strongest first.
    strongest: Vec<usize>,
}

impl From<FeatureMaps> for MapsJson {
    fn from(maps: FeatureMaps) -> Self {
        let flat = |a: &Array3<f32>| {
            a.axis_iter(Axis(0))
                .map(|m| m.iter().copied().collect())
                .collect()
        };
        let strength: Vec<f32> = maps
            .conv
            .axis_iter(Axis(0))
            .map(|m| m.mean().unwrap_or(0.0))
            .collect();
        let mut order: Vec<usize> = (0..strength.len()).collect();
        order.sort_by(|&a, &b| strength[b].total_cmp(&strength[a]));
        order.truncate(STRONGEST);
        let size = |a: &Array3<f32>| [a.dim().1, a.dim().2];
        MapsJson {
            conv_size: size(&maps.conv),
            pooled_size: size(&maps.pooled),
            conv: flat(&maps.conv),
            pooled: flat(&maps.pooled),
            strength,
            strongest: order,
        }
    }
}

#[derive(Serialize)]
struct ShiftResponse {
    dx: i64,
    dy: i64,
    /// The shifted input.
    pixels: Vec<f32>,
    /// Relative change of the ReLU feature maps, `null` without maps or for a blank input.
    conv_change: Option<f32>,
    /// The same for the pooled maps.
    pooled_change: Option<f32>,
    /// Half the summed absolute change of the ten probabilities (0: same, 1: disjoint).
    probability_change: f32,
    label_changed: bool,
    before: PredictResponse,
    after: PredictResponse,
}

#[derive(Serialize)]
struct TestDigitResponse<'a> {
    index: usize,
    label: u8,
    source: &'a str,
    pixels: Vec<f32>,
}

fn ok(value: &impl Serialize) -> Result<Response, Response> {
    let body = serde_json::to_vec(value)
        .map_err(|e| Response::error(500, &format!("cannot write the answer as JSON: {e}")))?;
    Ok(Response::json(200, body))
}

/// Not JSON at all: 400; JSON of the wrong shape (a missing field, a string for a number,
/// an unknown field): 422.
fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Response> {
    serde_json::from_slice(body).map_err(|e| {
        let status = if e.is_data() { 422 } else { 400 };
        let what = if e.is_data() {
            "unexpected JSON"
        } else {
            "malformed JSON"
        };
        Response::error(status, &format!("{what}: {e}"))
    })
}

fn check_pixels(values: &[f64]) -> Result<Pixels, Response> {
    if values.len() != PIXELS {
        return Err(Response::error(
            422,
            &format!(
                "pixels: expected {PIXELS} numbers ({SIDE}x{SIDE}, row-major), got {}",
                values.len()
            ),
        ));
    }
    let mut pixels = [0.0f32; PIXELS];
    for (i, (&v, p)) in values.iter().zip(&mut pixels).enumerate() {
        if !(0.0..=1.0).contains(&v) {
            return Err(Response::error(
                422,
                &format!(
                    "pixels[{i}] (row {}, column {}) is {v}; every pixel must be in 0..1",
                    i / SIDE,
                    i % SIDE
                ),
            ));
        }
        *p = v as f32;
    }
    Ok(pixels)
}

fn not_allowed(request: &Request, allow: &'static str) -> Response {
    let mut response = Response::error(
        405,
        &format!(
            "{} does not take {}; use {allow}",
            request.path,
            one_line(&request.method)
        ),
    );
    response.allow = Some(allow);
    response
}

/// Client text quoted in an error, kept short (the error is one line anyway: JSON escapes
/// control characters).
fn one_line(text: &str) -> String {
    text.chars().take(80).collect()
}
