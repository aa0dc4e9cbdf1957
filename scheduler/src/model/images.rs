//! Images (Glance v2).
