//! The TCP proxy: copies bytes both ways, with effects per direction.
