//! Every picture function: the PNG decodes, has the size the `Picture` claims, and is not
//! blank; a filter grid puts each filter's bright weight where it belongs.

use cnn_from_scratch::viz::{self, Panel, Picture, PlotError};
use image::RgbImage;
use ndarray::{Array2, Array3, Array4, array};

/// Decodes the PNG bytes independently of the code that wrote them.
fn decode(picture: &Picture) -> RgbImage {
    let image = image::load_from_memory_with_format(picture.png_bytes(), image::ImageFormat::Png)
        .expect("the picture is a valid PNG")
        .to_rgb8();
    assert_eq!(image.dimensions(), (picture.width(), picture.height()));
    image
}

/// Variance of the grey level over all pixels: near 0 for a blank (one-colour) picture.
fn variance(image: &RgbImage) -> f64 {
    let values: Vec<f64> = image
        .pixels()
        .map(|p| (f64::from(p[0]) + f64::from(p[1]) + f64::from(p[2])) / 3.0)
        .collect();
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / values.len() as f64
}

/// Decodes, checks the size lies in `width` x `height` ranges and that it is not blank.
fn check(
    picture: &Picture,
    width: std::ops::RangeInclusive<u32>,
    height: std::ops::RangeInclusive<u32>,
) -> RgbImage {
    let image = decode(picture);
    assert!(
        width.contains(&image.width()),
        "width {} not in {width:?}",
        image.width()
    );
    assert!(
        height.contains(&image.height()),
        "height {} not in {height:?}",
        image.height()
    );
    let v = variance(&image);
    assert!(v > 100.0, "picture looks blank: grey-level variance {v:.1}");
    image
}

/// Counts pixels that are dark on a light background (text, mostly) inside a band of rows.
fn dark_pixels_in_rows(image: &RgbImage, rows: std::ops::Range<u32>) -> usize {
    rows.flat_map(|y| (0..image.width()).map(move |x| (x, y)))
        .filter(|&(x, y)| image.get_pixel(x, y).0.iter().all(|&c| c < 100))
        .count()
}

#[test]
fn image_grid_of_digits_with_captions() {
    let digits = Array4::from_shape_fn((12, 1, 28, 28), |(n, _, i, j)| {
        if (i as i32 - 14).abs() < 3 + (n as i32 % 5) && (j as i32 - 14).abs() < 9 {
            1.0
        } else {
            0.0
        }
    });
    let captions: Vec<String> = (0..12)
        .map(|n| format!("true {} → pred {}", n % 10, (n + 3) % 10))
        .collect();
    let picture = viz::image_grid("Misclassified digits", digits.view(), &captions, 6).unwrap();
    let image = check(&picture, 500..=1300, 200..=800);
    // The title is real text: dark pixels in the top band, which holds nothing else.
    assert!(
        dark_pixels_in_rows(&image, 0..40) > 100,
        "no title text drawn"
    );
}

#[test]
fn image_grid_shows_rgb_colours() {
    // One pure red and one pure blue image.
    let mut images = Array4::<f32>::zeros((2, 3, 10, 10));
    images.slice_mut(ndarray::s![0, 0, .., ..]).fill(1.0);
    images.slice_mut(ndarray::s![1, 2, .., ..]).fill(1.0);
    let image = decode(&viz::image_grid("Red and blue", images.view(), &[], 2).unwrap());
    let count = |want: [u8; 3]| image.pixels().filter(|p| p.0 == want).count();
    assert!(count([255, 0, 0]) > 1000, "red image missing");
    assert!(count([0, 0, 255]) > 1000, "blue image missing");
}

#[test]
fn filter_grid_is_drawn_with_a_colour_bar() {
    let bank = Array4::from_shape_fn((30, 1, 5, 5), |(f, _, i, j)| {
        ((f * 13 + i * 5 + j) % 9) as f32 - 4.0
    });
    let picture = viz::filter_grid("Filters", bank.view()).unwrap();
    check(&picture, 600..=1200, 400..=1000);
    let rgb = Array4::from_shape_fn((4, 3, 3, 3), |(f, c, i, j)| (f + c + i * j) as f32 - 4.0);
    check(
        &viz::filter_grid("RGB filters", rgb.view()).unwrap(),
        400..=1200,
        200..=800,
    );
}

/// Grey frame drawn around each tile, and what zero and the largest weight look like.
const FRAME: [u8; 3] = [150, 150, 150];
const WHITE: [u8; 3] = [255, 255, 255];

fn is_red(p: [u8; 3]) -> bool {
    p[0] > 150 && p[1] < 60 && p[2] < 80
}

fn is_blue(p: [u8; 3]) -> bool {
    p[2] > 150 && p[0] < 60
}

#[test]
fn filter_grid_puts_each_bright_weight_where_it_belongs() {
    // Four 3x3 filters, each zero except a single +1: an "identity-like" bank.
    let spots = [(0, 0), (1, 2), (2, 1), (2, 2)];
    let mut bank = Array4::<f32>::zeros((4, 1, 3, 3));
    for (f, &(i, j)) in spots.iter().enumerate() {
        bank[[f, 0, i, j]] = 1.0;
    }
    let image = decode(&viz::filter_grid("Identity-like filters", bank.view()).unwrap());
    let px = |x: u32, y: u32| image.get_pixel(x, y).0;

    // The colour bar is the only place with blue; ignore every column from there on.
    let bar_x = (0..image.width())
        .find(|&x| (0..image.height()).any(|y| is_blue(px(x, y))))
        .expect("a colour bar with blue at its negative end");

    // Find the red squares left of the bar: the top-left corner of each red region.
    let mut blobs = Vec::new();
    for y in 0..image.height() {
        for x in 0..bar_x {
            let corner = is_red(px(x, y)) && !is_red(px(x - 1, y)) && !is_red(px(x, y - 1));
            if corner {
                let size = (x..bar_x).take_while(|&xx| is_red(px(xx, y))).count() as u32;
                blobs.push((x, y, size));
            }
        }
    }
    assert_eq!(blobs.len(), 4, "one red square per filter, found {blobs:?}");

    // Walk left and up from each square over the white (zero) weights to the tile's grey
    // frame; the distance in squares is the weight's column and row inside its filter.
    let mut found = Vec::new();
    for &(x, y, size) in &blobs {
        assert!(
            size >= 10,
            "a weight should be drawn at least 10 pixels wide, got {size}"
        );
        let walk = |step: &dyn Fn(u32) -> (u32, u32)| {
            let mut d = 1;
            loop {
                let (xx, yy) = step(d);
                let p = px(xx, yy);
                if p == FRAME {
                    return d - 1;
                }
                assert_eq!(p, WHITE, "zero weights are white, at ({xx}, {yy})");
                d += 1;
            }
        };
        let (left, up) = (walk(&|d| (x - d, y)), walk(&|d| (x, y - d)));
        assert!(
            left % size == 0 && up % size == 0,
            "square not on the weight grid"
        );
        let tile_origin = (x - left, y - up);
        found.push((tile_origin, (up / size, left / size)));
    }
    // Filters are laid out in reading order: sort tiles by row, then column.
    found.sort_by_key(|&((x, y), _)| (y, x));
    let positions: Vec<(u32, u32)> = found.iter().map(|&(_, pos)| pos).collect();
    let expected: Vec<(u32, u32)> = spots.iter().map(|&(i, j)| (i as u32, j as u32)).collect();
    assert_eq!(positions, expected);
}

#[test]
fn feature_maps_scale_each_map_on_its_own() {
    // Map 0 has tiny values, map 1 large ones: both must still reach pure white.
    let maps = Array3::from_shape_fn((2, 8, 8), |(k, i, j)| {
        (i + j) as f32 * if k == 0 { 1e-3 } else { 1e3 }
    });
    let picture = viz::feature_maps("Two maps", maps.view()).unwrap();
    let image = check(&picture, 300..=1000, 150..=600);
    // Each 8x8 map contains exactly one maximum pixel (i = j = 7), drawn as a white square
    // touching the grey frame: count white pixels whose right and lower neighbours are frame.
    let corners = image
        .enumerate_pixels()
        .filter(|&(x, y, p)| {
            p.0 == WHITE
                && x + 1 < image.width()
                && y + 1 < image.height()
                && image.get_pixel(x + 1, y).0 == FRAME
                && image.get_pixel(x, y + 1).0 == FRAME
        })
        .count();
    assert_eq!(
        corners, 2,
        "both maps should reach white in their bottom-right corner"
    );
}

#[test]
fn side_by_side_keeps_relative_sizes() {
    let big = Array2::from_shape_fn((28, 28), |(i, j)| ((i * j) % 7) as f32);
    let small = Array2::from_shape_fn((14, 14), |(i, j)| ((i + j) % 3) as f32);
    let picture = viz::side_by_side(
        "Stride 2 halves the output",
        &[
            Panel::grey(big.view(), "input 28x28"),
            Panel::grey(small.view(), "stride 2\n→ 14x14"),
        ],
    )
    .unwrap();
    let image = check(&picture, 300..=1200, 200..=700);
    // Measure each panel's framed width along the row through the small panel's middle.
    let frames: Vec<u32> = (0..image.width())
        .filter(|&x| image.get_pixel(x, 100).0 == FRAME)
        .collect();
    assert_eq!(
        frames.len(),
        4,
        "two frames crossed, left and right edges: {frames:?}"
    );
    let (w_big, w_small) = (frames[1] - frames[0] - 1, frames[3] - frames[2] - 1);
    assert_eq!(w_big, 2 * w_small, "both panels use one scale");
    assert_eq!(w_big % 28, 0);
}

#[test]
fn side_by_side_with_the_cat_in_colour_and_grey() {
    let cat = viz::chelsea();
    let grey = viz::rgb_to_grey(cat.view());
    let picture = viz::side_by_side(
        "Chelsea",
        &[
            Panel::rgb(cat.view(), "colour"),
            Panel::grey(grey.view(), "grey"),
        ],
    )
    .unwrap();
    check(&picture, 400..=1200, 150..=500);
}

#[test]
fn chelsea_is_the_bundled_cat() {
    let cat = viz::chelsea();
    assert_eq!(cat.dim(), (3, 150, 226));
    assert!(cat.iter().all(|&v| (0.0..=1.0).contains(&v)));
    // A ginger cat: on average more red than blue.
    let mean = |c: usize| cat.index_axis(ndarray::Axis(0), c).mean().unwrap();
    assert!(
        mean(0) > mean(2) + 0.05,
        "red {} vs blue {}",
        mean(0),
        mean(2)
    );
}

#[test]
fn rgb_to_grey_uses_bt601_weights() {
    let pixel = Array3::from_shape_vec((3, 1, 1), vec![1.0, 0.5, 0.0]).unwrap();
    let grey = viz::rgb_to_grey(pixel.view());
    assert!((grey[[0, 0]] - (0.299 + 0.5 * 0.587)).abs() < 1e-6);
}

#[test]
fn line_chart_training_curves_and_confusion_matrix() {
    let a = [(0.0, 0.0), (1.0, 0.6), (2.0, 0.9), (3.0, 1.0)];
    let b = [(0.0, 0.0), (1.0, 0.3), (2.0, 0.5), (3.0, 0.8)];
    let chart = viz::line_chart(
        "Shift",
        "shift (pixels)",
        "change",
        &[("conv", &a[..]), ("pool", &b[..])],
    )
    .unwrap();
    check(&chart, 960..=960, 600..=600);

    let losses: Vec<f32> = (0..500).map(|s| 2.3 / (1.0 + s as f32 / 50.0)).collect();
    let curves = viz::training_curves("Training", &losses, &[0.9, 0.95], &[0.89, 0.93]).unwrap();
    check(&curves, 1200..=1200, 520..=520);

    let counts = Array2::from_shape_fn((10, 10), |(i, j)| if i == j { 95 } else { (i + j) % 3 });
    let names: Vec<String> = (0..10).map(|d| d.to_string()).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let matrix = viz::confusion_matrix("Confusion", counts.view(), &names).unwrap();
    let image = check(&matrix, 500..=1000, 500..=1000);
    // The diagonal cells are the darkest colour of the map (share 95/~104 of the row).
    let darkest = image
        .pixels()
        .filter(|p| p[0] < 30 && p[1] < 80 && p[2] > 90)
        .count();
    assert!(
        darkest > 10 * 40 * 40,
        "ten dark diagonal cells expected, {darkest} dark pixels"
    );
}

#[test]
fn empty_input_is_an_error_not_a_panic() {
    let none = Array4::<f32>::zeros((0, 1, 28, 28));
    assert!(matches!(
        viz::image_grid("none", none.view(), &[], 5),
        Err(PlotError::Nothing(_))
    ));
    assert!(matches!(
        viz::training_curves("none", &[], &[], &[]),
        Err(PlotError::Nothing(_))
    ));
    assert!(matches!(
        viz::side_by_side("none", &[]),
        Err(PlotError::Nothing(_))
    ));
}

#[test]
fn save_writes_the_png_and_names_the_path_on_failure() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("viz-test");
    let path = dir.join("nested/filters.png");
    let bank = array![[[[1.0f32, -1.0], [0.5, 0.0]]]];
    let picture = viz::filter_grid("One filter", bank.view()).unwrap();
    picture.save(&path).unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), picture.png_bytes());
    let loaded = viz::load_png_rgb(&path).unwrap();
    assert_eq!(
        loaded.dim(),
        (3, picture.height() as usize, picture.width() as usize)
    );

    // A file where a folder should be: the error message names the path.
    let blocked = path.join("inside-a-file.png");
    let message = picture.save(&blocked).unwrap_err().to_string();
    assert!(message.contains("inside-a-file.png"), "{message}");
    let message = viz::load_png_rgb(dir.join("missing.png"))
        .unwrap_err()
        .to_string();
    assert!(message.contains("missing.png"), "{message}");
}
