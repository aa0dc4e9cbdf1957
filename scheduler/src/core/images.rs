//! Images, Glance v2 (clause B.2.3).
