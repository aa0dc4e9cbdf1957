//! Glance v2 images.
