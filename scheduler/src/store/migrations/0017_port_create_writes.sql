-- Fewer pages written by every port create (each is a WAL frame in its commit): ports
-- are found by device and by host only when they have one, so unowned and unbound
-- ports (a network's spare ones) need no entries.
DROP INDEX ports_device;
CREATE INDEX ports_device ON ports(device_id) WHERE device_id != '';
DROP INDEX ports_host;
CREATE INDEX ports_host ON ports(binding_host_id) WHERE binding_host_id != '';
