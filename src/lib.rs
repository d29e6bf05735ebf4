//! The tc9 sidecar library.
