-- Where IPAM looks first for a free address on a subnet: one past the last address it
-- handed out (decimal, as IPv6 addresses do not fit an INTEGER). A hint only — every
-- candidate is still checked against port_fixed_ips — so port creates probe one or two
-- addresses instead of reading every allocation of the subnet.
ALTER TABLE subnets ADD COLUMN ipam_cursor TEXT;
