//! # Output size, padding and stride (フィルタリング後の画像サイズ)
//!
//! (section to be written)

use crate::error::SettingError;

/// Output size of a convolution or pooling along one axis, equation (7.1) of the book:
///
/// ```text
/// OH = (H + 2P - FH) / S + 1
/// ```
///
/// Unlike many implementations, a size that does not divide evenly is an error, not a
/// silently floored number: a floored size would drop the last rows of the image without
/// telling anyone.
///
/// ```
/// use cnn_from_scratch::padding_stride::conv_output_size;
/// // The book's example: a 4x4 input, a 3x3 filter, padding 1, stride 1 keeps the size.
/// assert_eq!(conv_output_size(4, 3, 1, 1).unwrap(), 4);
/// // 7x7 input, 3x3 filter, stride 2: (7 - 3) / 2 + 1 = 3.
/// assert_eq!(conv_output_size(7, 3, 0, 2).unwrap(), 3);
/// // (6 - 3) / 2 is not whole: an error, not 2.
/// assert!(conv_output_size(6, 3, 0, 2).is_err());
/// ```
pub fn conv_output_size(
    input: usize,
    filter: usize,
    pad: usize,
    stride: usize,
) -> Result<usize, SettingError> {
    if stride == 0 {
        return Err(SettingError::ZeroStride { stride });
    }
    if filter == 0 {
        return Err(SettingError::EmptyFilter {
            filter_h: filter,
            filter_w: filter,
        });
    }
    let padded = input + 2 * pad;
    if filter > padded {
        return Err(SettingError::FilterTooLarge {
            input,
            filter,
            pad,
            padded,
        });
    }
    let numerator = padded - filter;
    if numerator % stride != 0 {
        return Err(SettingError::NotWhole {
            input,
            filter,
            pad,
            stride,
            numerator,
        });
    }
    Ok(numerator / stride + 1)
}
