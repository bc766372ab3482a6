//! (the tutorial, to be written)
