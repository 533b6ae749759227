//! The HTTP reverse proxy: forwards every request upstream, with serve's rules applied.
