-- Images (Glance v2).
SELECT 1;
