//! # Tutorial: chapter 7 in nine pages (start here)
//!
//! A third way into the crate, next to the module docs and the notebooks: one page per
//! section of the chapter note, in the order of the book's chapter 7, "Convolutional neural
//! networks" (「７章 畳み込みニューラルネットワーク」). Each page says what the note says
//! (with its Japanese heading and the book's figure and equation numbers), explains the idea
//! in plain words, runs it with the crate, and shows the picture the code makes.
//!
//! | page | note heading | module | notebook |
//! |---|---|---|---|
//! | [1. Why a plain net loses the shape](_01_fc_limits) | これまでのシンプルな NN の限界 / 何が問題か？ | [`fc_limits`](crate::fc_limits) | `notebooks/01_fc_limits.ipynb` |
//! | [2. The convolution layer](_02_convolution) | じゃあどうするか？ / フィルタリングするための畳み込み層 | [`convolution`](crate::convolution) | `notebooks/02_convolution.ipynb` |
//! | [3. Output size, padding, stride](_03_padding_stride) | フィルタリング後の画像サイズ | [`padding_stride`](crate::padding_stride) | `notebooks/03_padding_stride.ipynb` |
//! | [4. Colour images and filter banks](_04_multichannel) | カラー画像のフィルタリング / 同じ画像に色んなフィルタ | [`multichannel`](crate::multichannel) | `notebooks/04_multichannel.ipynb` |
//! | [5. Batches and im2col](_05_batching) | バッチ処理 | [`batching`](crate::batching) | `notebooks/05_batching.ipynb` |
//! | [6. Pooling](_06_pooling) | プーリング層も使う / Convolution と Pooling の比較 | [`pooling`](crate::pooling) | `notebooks/06_pooling.ipynb` |
//! | [7. The whole CNN, trained](_07_full_cnn) | CNN の全体アーキテクチャ / CNN の実装 | [`full_cnn`](crate::full_cnn) | `notebooks/07_full_cnn.ipynb` |
//! | [8. Build your own network](_08_build_your_own) | CNN の全体アーキテクチャ (many variations) | [`Network`](crate::full_cnn::Network), [`Layer`](crate::full_cnn::Layer), [`networks`](crate::full_cnn::networks) | `notebooks/08_build_your_own.ipynb` |
//! | [9. The chapter's claims, measured](_09_experiments) | これまでのシンプルな NN の限界 / プーリング層 (§1, §8) | [`experiments`](crate::experiments) | `notebooks/09_experiments.ipynb` |
//!
//! Every code block on these pages is a doc test: `cargo test --doc` runs them all, so
//! they stay true. They need no download (digits come from the 5,000-digit MNIST sample
//! inside the crate, [`Dataset::sample`](crate::data::Dataset::sample), and the cat from
//! [`viz::chelsea`](crate::viz::chelsea)) and they write their pictures to the system's
//! temporary folder. The pictures shown on the pages are the ones in `docs/images/`, made by
//! `cargo run --release --example chapter7`; the code next to a picture on pages 1 to 6 draws
//! the same picture. They are embedded in this HTML, so the pages read the same offline.
//!
//! The pages hold no code of their own: they are documentation only.

// Each page is src/tutorial/NAME.md as build.rs copies it to $OUT_DIR/tutorial/, with the
// pictures it shows appended as `[fig-PICTURE]: data:image/png;base64,...` definitions.

#[doc = include_str!(concat!(env!("OUT_DIR"), "/tutorial/_01_fc_limits.md"))]
pub mod _01_fc_limits {}

#[doc = include_str!(concat!(env!("OUT_DIR"), "/tutorial/_02_convolution.md"))]
pub mod _02_convolution {}

#[doc = include_str!(concat!(env!("OUT_DIR"), "/tutorial/_03_padding_stride.md"))]
pub mod _03_padding_stride {}

#[doc = include_str!(concat!(env!("OUT_DIR"), "/tutorial/_04_multichannel.md"))]
pub mod _04_multichannel {}

#[doc = include_str!(concat!(env!("OUT_DIR"), "/tutorial/_05_batching.md"))]
pub mod _05_batching {}

#[doc = include_str!(concat!(env!("OUT_DIR"), "/tutorial/_06_pooling.md"))]
pub mod _06_pooling {}

#[doc = include_str!(concat!(env!("OUT_DIR"), "/tutorial/_07_full_cnn.md"))]
pub mod _07_full_cnn {}

#[doc = include_str!(concat!(env!("OUT_DIR"), "/tutorial/_08_build_your_own.md"))]
pub mod _08_build_your_own {}

#[doc = include_str!(concat!(env!("OUT_DIR"), "/tutorial/_09_experiments.md"))]
pub mod _09_experiments {}

#[cfg(test)]
mod tests {
    /// The pages as rustdoc sees them (text plus the definitions build.rs appended).
    const PAGES: [(&str, &str); 9] = [
        (
            "_01_fc_limits",
            include_str!(concat!(env!("OUT_DIR"), "/tutorial/_01_fc_limits.md")),
        ),
        (
            "_02_convolution",
            include_str!(concat!(env!("OUT_DIR"), "/tutorial/_02_convolution.md")),
        ),
        (
            "_03_padding_stride",
            include_str!(concat!(env!("OUT_DIR"), "/tutorial/_03_padding_stride.md")),
        ),
        (
            "_04_multichannel",
            include_str!(concat!(env!("OUT_DIR"), "/tutorial/_04_multichannel.md")),
        ),
        (
            "_05_batching",
            include_str!(concat!(env!("OUT_DIR"), "/tutorial/_05_batching.md")),
        ),
        (
            "_06_pooling",
            include_str!(concat!(env!("OUT_DIR"), "/tutorial/_06_pooling.md")),
        ),
        (
            "_07_full_cnn",
            include_str!(concat!(env!("OUT_DIR"), "/tutorial/_07_full_cnn.md")),
        ),
        (
            "_08_build_your_own",
            include_str!(concat!(env!("OUT_DIR"), "/tutorial/_08_build_your_own.md")),
        ),
        (
            "_09_experiments",
            include_str!(concat!(env!("OUT_DIR"), "/tutorial/_09_experiments.md")),
        ),
    ];

    /// Base64 decoding written independently of build.rs's encoder: look every character
    /// up in the alphabet and collect 6 bits at a time.
    fn decode_base64(text: &str) -> Vec<u8> {
        const ALPHABET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let (mut bits, mut count, mut out) = (0u32, 0, Vec::new());
        for ch in text.trim_end_matches('=').chars() {
            let value = ALPHABET
                .find(ch)
                .unwrap_or_else(|| panic!("{ch:?} is not base64"));
            bits = (bits << 6) | value as u32;
            count += 6;
            if count >= 8 {
                count -= 8;
                out.push((bits >> count) as u8);
                bits &= (1 << count) - 1;
            }
        }
        out
    }

    /// Names of the pictures a page shows with `![caption][fig-NAME]`.
    fn pictures_shown(page: &str) -> Vec<&str> {
        page.match_indices("][fig-")
            .map(|(at, _)| {
                let rest = &page[at + 6..];
                &rest[..rest.find(']').expect("a closing bracket")]
            })
            .collect()
    }

    #[test]
    fn every_picture_is_embedded() {
        let mut shown = 0;
        for (page, text) in PAGES {
            for name in pictures_shown(text) {
                let path = format!("{}/docs/images/{name}.png", env!("CARGO_MANIFEST_DIR"));
                let png = std::fs::read(&path).unwrap_or_else(|e| {
                    panic!("page {page} shows {path}, which cannot be read: {e}")
                });
                let prefix = format!("\n[fig-{name}]: data:image/png;base64,");
                let at = text.find(&prefix).unwrap_or_else(|| {
                    panic!("page {page} shows fig-{name} but has no embedded definition for it")
                });
                let data = text[at + prefix.len()..].lines().next().unwrap_or_default();
                assert!(
                    decode_base64(data) == png,
                    "page {page}: fig-{name} is not {path}"
                );
                shown += 1;
            }
        }
        assert!(shown >= 10, "the pages show only {shown} pictures");
    }

    #[test]
    fn decoder_matches_the_rfc_examples() {
        // RFC 4648, section 10.
        for (plain, encoded) in [
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(decode_base64(encoded), plain.as_bytes());
        }
    }
}
