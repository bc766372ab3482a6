//! (module to be written)
