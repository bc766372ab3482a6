//! The error a caller gets back for a setting that cannot work: a filter larger than the
//! padded input, a stride of zero, a size that does not divide evenly.

use thiserror::Error;

/// A size, stride or padding chosen by the caller that does not fit the input.
///
/// Each variant carries the numbers, so the message says exactly what was asked for.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SettingError {
    /// A stride of zero never moves the filter.
    #[error("stride must be at least 1, got stride={stride}")]
    ZeroStride { stride: usize },

    /// A filter (or pooling window) with a zero side has nothing to compute.
    #[error("filter/window size must be at least 1x1, got {filter_h}x{filter_w}")]
    EmptyFilter { filter_h: usize, filter_w: usize },

    /// The filter is larger than the padded input, so not even one position fits.
    #[error(
        "filter size {filter} is larger than the padded input: input={input}, pad={pad} \
         gives {padded}, so the output size (input + 2*pad - filter)/stride + 1 is not positive"
    )]
    FilterTooLarge {
        input: usize,
        filter: usize,
        pad: usize,
        padded: usize,
    },

    /// `(input + 2*pad - filter)` is not a multiple of `stride`: the last positions of the
    /// input would be silently skipped.
    #[error(
        "(input + 2*pad - filter) / stride is not a whole number: \
         ({input} + 2*{pad} - {filter}) / {stride} = {numerator}/{stride}; \
         choose a stride that divides {numerator} or change the padding"
    )]
    NotWhole {
        input: usize,
        filter: usize,
        pad: usize,
        stride: usize,
        numerator: usize,
    },

    /// Max pooling with a padding as large as the window: some windows would hold only
    /// padding and have no maximum (PyTorch refuses this too).
    #[error(
        "max pooling: pad={pad} must be smaller than the {pool_h}x{pool_w} window, \
         otherwise some windows hold only padding and have no maximum"
    )]
    PadNotBelowWindow {
        pad: usize,
        pool_h: usize,
        pool_w: usize,
    },

    /// A layer asked to have zero channels, filters, units or classes: there would be
    /// nothing to compute.
    #[error("{what} must be at least 1, got 0")]
    ZeroSize { what: &'static str },
}
